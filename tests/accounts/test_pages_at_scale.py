"""The reads the agency's pages lean on at 100,000 subaccounts: the list sorted by this month's usage
(a join to the month's Usage row), the overview's near-limit widget, and the recipient search's
trigram index. Exact, and inside the agency."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts import selectors
from accounts.models import Invitation, Usage
from accounts.quota import month_start
from mailing import selectors as message_selectors
from mailing.models import Message
from tests.conftest import requires_postgres
from tests.factories import MasterFactory, SubaccountFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db


def _month(sub, sent, *, start=None, billed_to=None):
    return Usage.objects.create(
        account=sub, billed_to=billed_to or sub.parent, window=Usage.Window.MONTH,
        start=start or month_start(), sent=sent,
    )  # fmt: skip


def test_sorting_by_this_months_usage_counts_only_this_month_of_this_agency():
    # given
    master = MasterFactory()
    busy, calm, silent = (SubaccountFactory(parent=master, name=name) for name in ("Busy", "Calm", "Silent"))
    _month(busy, 70)
    _month(calm, 30)
    _month(calm, 5000, start=month_start(month_start() - timedelta(days=1)))  # last month's
    _month(silent, 900, billed_to=MasterFactory())  # counted on another bill: not this agency's
    _month(SubaccountFactory(name="Other agency's"), 10_000)
    # when
    by_usage = list(selectors.subaccounts_for_master(master, sort="-usage"))
    # then
    assert [(sub.name, sub.sent_this_month) for sub in by_usage] == [
        ("Busy", 70),
        ("Calm", 30),
        ("Silent", 0),
    ]
    assert [sub.name for sub in selectors.subaccounts_for_master(master, sort="usage")] == [
        "Silent",
        "Calm",
        "Busy",
    ]


def test_the_list_still_tells_accepted_and_pending_invites_apart():
    master = MasterFactory()
    accepted, _ = subaccount_with_owner(master, name="Accepted")
    accepted.memberships.get().user.set_password("a-long-password-123")
    accepted.memberships.get().user.save()
    pending, owner = subaccount_with_owner(master, name="Pending", accepted=False)
    Invitation.objects.create(account=pending, user=owner, email=owner.email, token_hash="0" * 64,
                              expires_at=timezone.now() + timedelta(hours=1))  # fmt: skip
    expired, owner = subaccount_with_owner(master, name="Expired", accepted=False)
    Invitation.objects.create(account=expired, user=owner, email=owner.email, token_hash="1" * 64,
                              expires_at=timezone.now() - timedelta(hours=1))  # fmt: skip
    rows = {
        sub.name: (sub.invite_accepted, sub.invite_pending)
        for sub in selectors.subaccounts_for_master(master)
    }
    assert rows == {"Accepted": (True, False), "Pending": (False, True), "Expired": (False, False)}


def test_the_overview_lists_the_subaccounts_nearest_their_limit_first_and_only_its_own():
    master = MasterFactory()
    near = SubaccountFactory(parent=master, name="Near", monthly_limit=100)
    nearer = SubaccountFactory(parent=master, name="Nearer", monthly_limit=1000)
    far = SubaccountFactory(parent=master, name="Far", monthly_limit=100)
    _month(near, 85)
    _month(nearer, 990)
    _month(far, 10)
    _month(SubaccountFactory(name="Not ours", monthly_limit=10), 10)
    near_limit = selectors.master_overview(master)["near_limit"]
    assert [(row.account.name, row.percent) for row in near_limit] == [("Nearer", 99), ("Near", 85)]


@requires_postgres()
def test_the_recipient_search_can_use_the_trigram_index():
    master = MasterFactory()
    sub = SubaccountFactory(parent=master)
    Message.objects.create(account=sub, from_email="a@shop.example", to_email="someone@example.test")
    found = message_selectors.messages_for(master, message_selectors.MessageFilters(recipient="meone@exa"))
    assert [message.to_email for message in found] == ["someone@example.test"]
    # the filter's own SQL (UPPER(to_email) LIKE …) is what the index is built on
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a table this small is read whole otherwise
        cursor.execute("SET LOCAL enable_indexscan = off")
    plan = Message.objects.filter(to_email__icontains="meone@exa").explain()
    # the index (message_to_email_trgm, or its copy on each month's partition) answers the LIKE itself
    assert "Index Cond: (upper((to_email)::text) ~~ '%MEONE@EXA%'::text)" in plan


@pytest.mark.parametrize("sort", ["-usage", "usage", "name", "-created", "status", "-monthly_limit", "bogus"])
def test_a_page_of_the_list_is_the_same_rows_in_the_same_order_as_the_whole_list_sliced(sort):
    # given
    master = MasterFactory()
    subs = [
        SubaccountFactory(parent=master, name=f"Shop {n % 3}", monthly_limit=100 * (n % 4 + 1))
        for n in range(7)
    ]
    for n, sub in enumerate(subs[:5]):
        _month(sub, (n * 37) % 5)  # ties on purpose: the id breaks them
    _month(SubaccountFactory(name="Other agency's"), 10_000)
    whole = list(selectors.subaccounts_for_master(master, sort=sort))
    # when
    pages = [selectors.subaccounts_page(master, sort=sort, number=n, per_page=3) for n in (1, 2, 3)]
    # then
    assert [sub.pk for page in pages for sub in page.object_list] == [sub.pk for sub in whole]
    assert [sub.sent_this_month for sub in pages[0].object_list] == [sub.sent_this_month for sub in whole[:3]]
    assert pages[0].paginator.count == 7 and pages[2].has_next() is False


def test_a_page_of_the_list_costs_the_same_queries_for_few_and_many(django_assert_num_queries):
    master = MasterFactory()
    SubaccountFactory(parent=master)
    with django_assert_num_queries(3):  # count, the page's ids, its rows
        selectors.subaccounts_page(master, sort="-usage")
    for _ in range(30):
        _month(SubaccountFactory(parent=master), 3)
    with django_assert_num_queries(3):
        selectors.subaccounts_page(master, sort="-usage", number=2)


def test_the_nearest_their_limit_are_found_whatever_the_size_of_their_limits():
    # given: the smallest limit nearly used, a large one further used in emails but less in percent, and
    # one whose emails pass the smallest limit's threshold without being near its own
    master = MasterFactory(alert_thresholds=[80, 95])
    tiny = SubaccountFactory(parent=master, name="Tiny", monthly_limit=10)
    large = SubaccountFactory(parent=master, name="Large", monthly_limit=100_000)
    roomy = SubaccountFactory(parent=master, name="Roomy", monthly_limit=1_000_000)
    below = SubaccountFactory(parent=master, name="Below", monthly_limit=10)
    _month(tiny, 9)
    _month(large, 85_000)
    _month(roomy, 500_000)
    _month(below, 7)
    # when / then: by percent, the threshold (80 %) of each one's own limit deciding
    near_limit = selectors.master_overview(master)["near_limit"]
    assert [(row.account.name, row.percent) for row in near_limit] == [("Tiny", 90), ("Large", 85)]
