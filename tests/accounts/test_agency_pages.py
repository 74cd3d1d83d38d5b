"""The master's page for one subaccount (the drill-down) and the overview's sending over a chosen range,
with its CSV exports: tenant-isolated, the same queries at any size, read from Usage only."""

import csv
import io
from datetime import date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import reports
from accounts.audit import record
from accounts.errors import ValidationError
from accounts.models import Membership, Usage
from accounts.quota import hour_start
from tests.factories import MasterFactory, MembershipFactory, SubaccountFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db


def _hour(sub, *, hours_ago=0, billed_to=None, **counts):
    return Usage.objects.create(
        account=sub, billed_to=billed_to or sub.parent or sub, window=Usage.Window.HOUR,
        start=hour_start() - timedelta(hours=hours_ago), **counts,
    )  # fmt: skip


def _staff(client, master, role=Membership.Role.ADMIN):
    client.force_login(MembershipFactory(account=master, role=role).user)
    return client


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


# --- the drill-down ---------------------------------------------------------------------------------


def test_the_drill_down_shows_usage_figures_reputation_settings_and_activity(client):
    # given
    master = MasterFactory(auto_pause_rates={"hard_bounce": 3})
    sub, _ = subaccount_with_owner(master, name="Acme Shop", alert_thresholds=[50, 90])
    _hour(sub, sent=120, delivered=100, hard_bounced=4, soft_bounced=1, complained=2, rejected=7)
    _hour(sub, hours_ago=24 * 45, sent=4321)  # outside the 30 days
    _hour(SubaccountFactory(parent=master), sent=8642)  # a sibling's
    record(actor=None, account=sub, action="subaccount.paused", before={}, after={})
    # when
    page = _staff(client, master).get(reverse("accounts:subaccount_detail", args=[sub.pk])).content.decode()
    # then
    figures = page[page.index('class="figures"') :]
    for label, value in [("Sent", "120"), ("Delivered", "100"), ("Bounced", "5"), ("Complained", "2"),
                         ("Rejected", "7")]:  # fmt: skip
        assert f"<dt>{label}</dt><dd>{value}</dd>" in figures
    assert "4,321" not in page and "8,642" not in page and "4321" not in figures and "8642" not in figures
    assert 'id="daily-data"' in page and 'id="daily-chart"' in page
    assert 'badge-expired">0</span>' in page  # reputation: 4 % hard bounces and 2 % complaints of 104
    assert "50%, 90%, 100% of the monthly limit" in page
    assert "3% hard bounces or 0.1% complaints" in page
    assert "Sending paused" in page
    assert reverse("mailing:subaccount_sending", args=[sub.pk]) in page
    assert reverse("accounts:subaccount_activity", args=[sub.pk]) in page


def test_a_subaccount_that_sent_nothing_gets_a_sentence_not_an_empty_chart(client):
    master = MasterFactory()
    sub = SubaccountFactory(parent=master, name="Quiet Shop")
    page = _staff(client, master).get(reverse("accounts:subaccount_detail", args=[sub.pk])).content.decode()
    assert "Quiet Shop has sent nothing in these 30 days." in page and 'id="daily-chart"' not in page
    overview = client.get(reverse("accounts:overview")).content.decode()
    assert "Nothing was sent in this period." in overview and 'id="daily-chart"' not in overview


def test_the_list_row_links_to_the_drill_down(client):
    master = MasterFactory()
    sub = SubaccountFactory(parent=master, name="Linked Shop")
    page = _staff(client, master).get(reverse("accounts:subaccount_list")).content.decode()
    assert f'href="{reverse("accounts:subaccount_detail", args=[sub.pk])}"><strong>Linked Shop' in page


def test_another_masters_subaccount_is_a_404(client):
    theirs = SubaccountFactory()
    _staff(client, MasterFactory())
    assert client.get(reverse("accounts:subaccount_detail", args=[theirs.pk])).status_code == 404


def test_a_subaccount_owner_cannot_open_the_drill_down(client):
    sub, owner = subaccount_with_owner()
    client.force_login(owner)
    assert client.get(reverse("accounts:subaccount_detail", args=[sub.pk])).status_code == 404


def test_a_viewer_sees_the_drill_down_without_buttons_that_change_anything(client):
    master = MasterFactory()
    sub, _ = subaccount_with_owner(master)
    page = _staff(client, master, Membership.Role.VIEWER).get(
        reverse("accounts:subaccount_detail", args=[sub.pk])
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "Change alert thresholds" not in html and "Edit details" not in html
    assert reverse("accounts:subaccount_alerts", args=[sub.pk]) in html


def test_the_drill_down_costs_the_same_queries_for_a_quiet_and_a_busy_subaccount(client):
    master = MasterFactory()
    quiet, _ = subaccount_with_owner(master)
    busy, _ = subaccount_with_owner(master)
    for n in range(40):
        _hour(busy, hours_ago=n * 13, sent=10, delivered=9)
        record(
            actor=None, account=busy, action="subaccount.updated", before={"name": "a"}, after={"name": "b"}
        )
        SubaccountFactory(parent=master)
    _staff(client, master)

    def queries(sub) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("accounts:subaccount_detail", args=[sub.pk])).status_code == 200
        return len(captured)

    assert queries(quiet) == queries(busy)


def test_the_drill_downs_queries_are_fixed(client, django_assert_num_queries):
    master = MasterFactory()
    sub, _ = subaccount_with_owner(master)
    _staff(client, master)
    client.get(reverse("accounts:subaccount_detail", args=[sub.pk]))  # the session's first reads
    # session, user, membership with its account; the subaccount, its days, its health, this month's
    # outcomes, its trail
    with django_assert_num_queries(8):
        client.get(reverse("accounts:subaccount_detail", args=[sub.pk]))


# --- the range --------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.UTC)


@pytest.mark.parametrize("preset, first", [("7", date(2026, 11, 18)), ("30", date(2026, 10, 26)),
                                           ("90", date(2026, 8, 27)), ("", date(2026, 10, 26))])  # fmt: skip
def test_a_preset_is_the_last_days_up_to_today(preset, first):
    span = reports.date_range(preset=preset, now=NOW)
    assert (span.first, span.last) == (first, date(2026, 11, 24))


@pytest.mark.parametrize(
    "date_from, date_to, field",
    [
        (None, date(2026, 11, 1), "date_from"),
        (date(2026, 11, 1), None, "date_to"),
        (date(2026, 11, 10), date(2026, 11, 1), "date_from"),  # backwards
        (date(2026, 11, 1), date(2026, 11, 25), "date_to"),  # tomorrow
        (date(2025, 1, 1), date(2026, 11, 1), "date_to"),  # more than a year
        (date(1999, 12, 31), date(2000, 1, 2), "date_from"),
    ],
)
def test_a_custom_range_that_cannot_be_used_is_refused_on_its_field(date_from, date_to, field):
    with pytest.raises(ValidationError) as refused:
        reports.date_range(preset="custom", date_from=date_from, date_to=date_to, now=NOW)
    assert refused.value.field == field


def test_a_custom_range_of_one_day_and_of_a_year_are_fine():
    assert reports.date_range(preset="custom", date_from=date(2026, 11, 24), date_to=date(2026, 11, 24),
                              now=NOW).days == 1  # fmt: skip
    assert reports.date_range(preset="custom", date_from=date(2025, 11, 24), date_to=date(2026, 11, 24),
                              now=NOW).days == 366  # fmt: skip


# --- the overview -----------------------------------------------------------------------------------


def test_the_overview_charts_the_agencys_days_and_its_top_subaccounts_for_the_range(client):
    master = MasterFactory()
    hot = SubaccountFactory(parent=master, name="Hot Shop")
    calm = SubaccountFactory(parent=master, name="Calm Shop")
    old = SubaccountFactory(parent=master, name="Old Shop")
    _hour(hot, sent=70, delivered=60)
    _hour(calm, hours_ago=24 * 5, sent=30)
    _hour(old, hours_ago=24 * 20, sent=500)  # in 30 days, not in 7
    _hour(SubaccountFactory(name="Someone Else's"), sent=10_000)
    _staff(client, master)

    week = client.get(reverse("accounts:overview"), {"range": "7"})
    html = week.content.decode()
    assert "Hot Shop" in html and "Calm Shop" in html and "Old Shop" not in html
    assert "Someone Else" not in html and "10,000" not in html
    assert html.index("Hot Shop") < html.index("Calm Shop")
    assert "<dt>Sent</dt><dd>100</dd>" in html
    assert len(week.context["daily"]) == 7 and sum(day["sent"] for day in week.context["daily"]) == 100

    month = client.get(reverse("accounts:overview")).content.decode()  # 30 days by default
    assert "<dt>Sent</dt><dd>600</dd>" in month and month.index("Old Shop") < month.index("Hot Shop")


def test_a_bad_range_is_explained_beside_its_field_and_the_default_is_shown(client):
    master = MasterFactory()
    _staff(client, master)
    response = client.get(
        reverse("accounts:overview"), {"range": "custom", "date_from": "2026-05-02", "date_to": "2026-05-01"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "The first day must come before the last." in html and 'aria-invalid="true"' in html
    assert response.context["span"].days == 30
    garbage = client.get(reverse("accounts:overview"), {"range": "custom", "date_from": "yesterday"})
    assert garbage.status_code == 200 and "Enter a valid date." in garbage.content.decode()
    assert client.get(reverse("accounts:overview"), {"range": "9999"}).status_code == 200


def test_the_overview_costs_the_same_queries_for_few_and_many_subaccounts(client):
    master = MasterFactory()
    _staff(client, master)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            client.get(reverse("accounts:overview"), {"range": "90"})
        return len(captured)

    _hour(SubaccountFactory(parent=master), sent=1)
    few = queries()
    for n in range(30):
        _hour(SubaccountFactory(parent=master), hours_ago=n * 50, sent=n + 1)
    assert queries() == few


def test_the_days_csv_adds_up_usage_of_the_range(client):
    master = MasterFactory()
    sub = SubaccountFactory(parent=master)
    _hour(sub, sent=5, delivered=4, hard_bounced=1, complained=1, rejected=2, failed=1)
    _hour(sub, hours_ago=72, sent=1)
    _hour(sub, hours_ago=24 * 8, sent=1000)  # before the 7 days
    _staff(client, master)
    response = client.get(reverse("accounts:overview_csv_days"), {"range": "7"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith(
        f'attachment; filename="{master.public_id}-sending-by-day-'
    )
    rows = _csv(response)
    assert rows[0] == ["day", "sent", "delivered", "bounced", "complained", "rejected", "failed", "opened", "clicked",
                       "unsubscribed"]  # fmt: skip
    assert len(rows) == 8
    assert sum(int(row[1]) for row in rows[1:]) == 6
    today = next(row for row in rows if row[0] == hour_start().date().isoformat())
    assert today[1:] == ["5", "4", "1", "1", "2", "1", "0", "0", "0"]


def test_the_subaccounts_csv_lists_every_sender_and_neutralises_formulas(client):
    master = MasterFactory()
    _hour(SubaccountFactory(parent=master, name='=HYPERLINK("http://evil")', public_id="evil"), sent=3)
    _hour(SubaccountFactory(parent=master, name="+1 Shop", public_id="plus"), sent=2)
    _hour(SubaccountFactory(parent=master, name="@home", public_id="at"), sent=1)
    _hour(SubaccountFactory(parent=master, name="-minus", public_id="minus"), sent=4)
    _hour(SubaccountFactory(name="Not ours"), sent=50)
    _staff(client, master, Membership.Role.VIEWER)
    rows = _csv(client.get(reverse("accounts:overview_csv_subaccounts"), {"range": "30"}))
    assert rows[0][:4] == ["first_day", "last_day", "subaccount_id", "name"]
    names = {row[2]: row[3] for row in rows[1:]}
    assert names == {
        "evil": '\'=HYPERLINK("http://evil")',
        "plus": "'+1 Shop",
        "at": "'@home",
        "minus": "'-minus",
    }
    assert [row[2] for row in rows[1:]] == ["minus", "evil", "plus", "at"]  # biggest sender first


def test_a_csv_export_with_a_bad_range_goes_back_to_the_overview(client):
    _staff(client, MasterFactory())
    response = client.get(
        reverse("accounts:overview_csv_days"), {"range": "custom", "date_from": "2026-01-02"}
    )
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:overview"))


@pytest.mark.parametrize("name", ["accounts:overview_csv_days", "accounts:overview_csv_subaccounts"])
def test_a_subaccount_cannot_export_the_agencys_figures(client, name):
    _sub, owner = subaccount_with_owner()
    client.force_login(owner)
    assert client.get(reverse(name)).status_code == 404


def test_deleted_subaccounts_stay_in_the_agencys_figures_under_their_kept_name(client):
    master = MasterFactory()
    Usage.objects.create(
        account=None, billed_to=master, account_label="Gone Shop (gone)", window=Usage.Window.HOUR,
        start=hour_start(), sent=9,
    )  # fmt: skip
    _staff(client, master)
    html = client.get(reverse("accounts:overview")).content.decode()
    assert "Gone Shop (gone)" in html and "badge-deleted" in html


def test_two_deleted_subaccounts_stay_two_lines_in_the_csv(client):
    master = MasterFactory()
    for label, sent in [("Gone One (one)", 3), ("Gone Two (two)", 5)]:
        Usage.objects.create(
            account=None, billed_to=master, account_label=label, window=Usage.Window.HOUR, start=hour_start(),
            sent=sent,
        )  # fmt: skip
    _staff(client, master)
    rows = _csv(client.get(reverse("accounts:overview_csv_subaccounts")))
    assert [(row[3], row[4]) for row in rows[1:]] == [("Gone Two (two)", "5"), ("Gone One (one)", "3")]


def test_the_overview_shows_each_top_subaccounts_reputation(client):
    master = MasterFactory()
    clean = SubaccountFactory(parent=master, name="Clean Shop")
    bouncy = SubaccountFactory(parent=master, name="Bouncy Shop")
    _hour(clean, sent=200, delivered=200)
    _hour(bouncy, sent=200, delivered=180, hard_bounced=20)  # 10 % hard bounces: twice the limit
    _staff(client, master)
    rows = {row["name"]: row for row in client.get(reverse("accounts:overview")).context["top"]}
    assert rows["Clean Shop"]["health"].reputation == 100
    assert rows["Bouncy Shop"]["health"].reputation < 50
    assert "Reputation" in client.get(reverse("accounts:overview")).content.decode()
