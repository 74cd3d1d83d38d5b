from datetime import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import alerts
from accounts.alerts import thresholds_for
from accounts.errors import PermissionDenied, ValidationError
from accounts.models import AuditEvent, Membership, Usage
from accounts.quota import month_start
from tests.factories import MasterFactory, MembershipFactory, SubaccountFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db


def _month_usage(sub, sent, start=None):
    return Usage.objects.create(
        account=sub, billed_to=sub.parent, account_label=str(sub), window=Usage.Window.MONTH,
        start=start or month_start(), sent=sent,
    )  # fmt: skip


def _master_client(client, master, role=Membership.Role.ADMIN):
    client.force_login(MembershipFactory(account=master, role=role).user)
    return client


@pytest.mark.parametrize(
    "name", ["accounts:overview", "accounts:billing", "accounts:billing_csv", "accounts:alert_settings"]
)
def test_subaccounts_never_see_master_pages_or_billing(client, name):
    _sub, owner = subaccount_with_owner()
    client.force_login(owner)
    assert client.get(reverse(name)).status_code == 404


def test_the_overview_shows_totals_top_and_near_limit_in_fixed_queries(client):
    master = MasterFactory()
    _master_client(client, master)
    for n in range(3):
        _month_usage(SubaccountFactory(parent=master, monthly_limit=100), 10 + n)
    hot = SubaccountFactory(parent=master, name="Hot Shop", monthly_limit=100)
    _month_usage(hot, 90)
    _month_usage(SubaccountFactory(name="Someone Else's"), 99)
    with CaptureQueriesContext(connection) as few:
        page = client.get(reverse("accounts:overview")).content.decode()
    assert "123" in page  # 10 + 11 + 12 + 90
    assert "Hot Shop" in page and "Someone Else" not in page
    for n in range(10):
        _month_usage(SubaccountFactory(parent=master, monthly_limit=100), n + 1)
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("accounts:overview"))
    assert len(many) == len(few)


def test_the_billing_page_and_csv_show_the_selected_month(client):
    master = MasterFactory()
    _master_client(client, master)
    sub = SubaccountFactory(parent=master, public_id="shop", name="Shop")
    _month_usage(sub, 42, start=datetime(2026, 10, 1, tzinfo=timezone.UTC))
    _month_usage(SubaccountFactory(public_id="foreign"), 7, start=datetime(2026, 10, 1, tzinfo=timezone.UTC))
    page = client.get(reverse("accounts:billing"), {"month": "2026-10"}).content.decode()
    assert "October 2026" in page and "42" in page and "foreign" not in page
    response = client.get(reverse("accounts:billing_csv"), {"month": "2026-10"})
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="' in response["Content-Disposition"]
    assert response.content.decode().splitlines()[1] == "2026-10,shop,Shop,active,42"


def test_a_viewer_may_read_billing_but_not_change_thresholds(client):
    master = MasterFactory()
    viewer = MembershipFactory(account=master, role=Membership.Role.VIEWER).user
    client.force_login(viewer)
    assert client.get(reverse("accounts:billing")).status_code == 200
    with pytest.raises(PermissionDenied):
        alerts.set_alert_thresholds(actor=viewer, master=master, thresholds="50")


def test_thresholds_default_override_and_validation(client):
    master = MasterFactory(alert_thresholds=[80, 95])
    admin = MembershipFactory(account=master, role=Membership.Role.ADMIN).user
    sub = SubaccountFactory(parent=master)
    # the master's defaults apply until a subaccount overrides them
    assert thresholds_for(sub) == [80, 95]
    alerts.set_alert_thresholds(actor=admin, master=master, subaccount_id=sub.pk, thresholds="50, 75%, 50")
    sub.refresh_from_db()
    assert thresholds_for(sub) == [50, 75]
    alerts.set_alert_thresholds(actor=admin, master=master, subaccount_id=sub.pk, thresholds="")
    sub.refresh_from_db()
    assert thresholds_for(sub) == [80, 95]
    assert AuditEvent.objects.filter(account=sub, action="alerts.thresholds_changed").count() == 2
    for bad in ["", "0", "101", "eighty", "1,2,3,4,5,6"]:
        with pytest.raises(ValidationError):
            alerts.set_alert_thresholds(actor=admin, master=master, thresholds=bad)
    # another master's subaccount is not reachable
    with pytest.raises(sub.__class__.DoesNotExist):
        alerts.set_alert_thresholds(
            actor=admin, master=master, subaccount_id=SubaccountFactory().pk, thresholds="50"
        )


def test_the_thresholds_page_saves_and_shows_errors(client):
    master = MasterFactory()
    _master_client(client, master)
    bad = client.post(reverse("accounts:alert_settings"), {"thresholds": "150"})
    assert "between 1 and 100" in bad.content.decode()
    good = client.post(reverse("accounts:alert_settings"), {"thresholds": "70, 90"})
    assert good.status_code == 302
    master.refresh_from_db()
    assert master.alert_thresholds == [70, 90]


def test_the_owners_dashboard_charts_30_days_from_hourly_usage(client):
    from accounts.quota import hour_start
    from accounts.selectors import daily_sent

    sub, owner = subaccount_with_owner()
    now = timezone.now()
    for hours_ago, sent in [(0, 5), (1, 3), (24 * 3, 7), (24 * 40, 100)]:
        Usage.objects.create(
            account=sub, billed_to=sub.parent, window=Usage.Window.HOUR,
            start=hour_start(now) - timezone.timedelta(hours=hours_ago), sent=sent,
        )  # fmt: skip
    days = daily_sent(sub, now=now)
    assert len(days) == 30
    assert sum(day["sent"] for day in days) == 15  # 40 days ago is outside the chart
    client.force_login(owner)
    page = client.get(reverse("accounts:dashboard")).content.decode()
    assert 'id="daily-data"' in page and 'id="daily-chart"' in page
