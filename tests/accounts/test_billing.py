from datetime import date, datetime

import pytest
from django.utils import timezone

from accounts import billing, lifecycle
from accounts.models import Account, Membership, Usage
from tests.factories import MasterFactory, MembershipFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db

OCT = datetime(2026, 10, 1, tzinfo=timezone.UTC)
NOV = datetime(2026, 11, 1, tzinfo=timezone.UTC)


def _usage(account: Account, start: datetime, sent: int, *, billed_to: Account | None = None) -> Usage:
    return Usage.objects.create(
        account=account,
        billed_to=billed_to or (account.parent or account),
        account_label=str(account),
        window=Usage.Window.MONTH,
        start=start,
        sent=sent,
    )


def test_the_bill_sums_subaccounts_per_month_including_deleted_and_renewed_ones():
    # given a master whose subaccounts sent in October and November
    master = MasterFactory()
    admin = MembershipFactory(account=master, role=Membership.Role.ADMIN).user
    kept, _ = subaccount_with_owner(master, name="Kept")
    deleted, _ = subaccount_with_owner(master, name="Gone")
    renewed, renewed_owner = subaccount_with_owner(master, name="Left")
    _usage(master, OCT, 5)
    _usage(kept, OCT, 100)
    _usage(deleted, OCT, 40)
    _usage(renewed, OCT, 7)
    _usage(kept, NOV, 3)
    # when one is deleted and another renews, sending afterwards on its own bill
    lifecycle.delete_subaccount(actor=admin, master=master, subaccount_id=deleted.pk)
    Account.objects.filter(pk=renewed.pk).update(status=Account.Status.CLOSED)
    lifecycle.renew_account(actor=renewed_owner)
    renewed.refresh_from_db()
    _usage(renewed, NOV, 999, billed_to=renewed)
    # then October still bills all four, and November only what was the master's
    october = billing.bill_for_month(master, date(2026, 10, 1))
    assert october.total == 152
    assert {(line.name, line.state, line.sent) for line in october.lines} == {
        (master.name, "own sending", 5),
        ("Kept", "active", 100),
        (f"Gone ({deleted.public_id})", "deleted", 40),
        ("Left", "renewed", 7),
    }
    november = billing.bill_for_month(master, date(2026, 11, 1))
    assert november.total == 3
    assert [summary.sent for summary in billing.months_billed(master)] == [3, 152]


def test_another_masters_usage_never_appears():
    master = MasterFactory()
    sub, _ = subaccount_with_owner(master)
    other, _ = subaccount_with_owner(MasterFactory())
    _usage(sub, NOV, 10)
    _usage(other, NOV, 99)
    assert billing.bill_for_month(master, date(2026, 11, 1)).total == 10


def test_the_month_boundary_is_utc():
    master = MasterFactory()
    sub, _ = subaccount_with_owner(master)
    _usage(sub, OCT, 1)
    _usage(sub, NOV, 2)
    assert billing.bill_for_month(master, date(2026, 10, 1)).total == 1
    assert billing.bill_for_month(master, date(2026, 11, 1)).total == 2


def test_csv_has_one_row_per_account_and_a_total_and_defuses_formulas():
    master = MasterFactory()
    sub, _ = subaccount_with_owner(master, name="=HYPERLINK(evil)")
    _usage(sub, NOV, 12)
    text = billing.bill_csv(master, date(2026, 11, 1))
    rows = [line.split(",") for line in text.strip().splitlines()]
    assert rows[0] == ["month", "subaccount_id", "name", "state", "emails_sent"]
    assert rows[1] == ["2026-11", sub.public_id, "'=HYPERLINK(evil)", "active", "12"]
    assert rows[2] == ["2026-11", "", "Total", "", "12"]


@pytest.mark.parametrize(
    "value, expected", [("2026-02", date(2026, 2, 1)), ("2026-13", None), ("garbage", None), (None, None)]
)
def test_parse_month(value, expected):
    current = timezone.now().date().replace(day=1)
    assert billing.parse_month(value) == (expected or current)


def test_a_big_bill_is_shown_a_page_at_a_time_with_the_whole_total():
    master = MasterFactory()
    for n in range(5):
        _usage(subaccount_with_owner(master)[0], NOV, n + 1)
    first = billing.bill_for_month(master, date(2026, 11, 1), per_page=2)
    assert [line.sent for line in first.lines] == [5, 4] and first.has_next
    assert (first.total, first.accounts) == (15, 5)
    last = billing.bill_for_month(master, date(2026, 11, 1), page=3, per_page=2)
    assert [line.sent for line in last.lines] == [1] and not last.has_next
