"""The auto-pause settings page (the master's limits and window, a subaccount's override), the banner on
both sides when a subaccount was paused automatically, and reputation in the master's list."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import lifecycle, reputation
from accounts.models import Account, AuditEvent, Membership, Usage
from accounts.quota import hour_start
from tests.factories import MasterFactory, MembershipFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db


@pytest.fixture
def agency():
    master = MasterFactory(name="Northwind")
    admin = MembershipFactory(account=master, role=Membership.Role.ADMIN).user
    viewer = MembershipFactory(account=master, role=Membership.Role.VIEWER).user
    shop, owner = subaccount_with_owner(master, name="Acme Shop")
    return {"master": master, "admin": admin, "viewer": viewer, "shop": shop, "owner": owner}


def _usage(sub, *, delivered=0, hard=0, complained=0, days_ago=0):
    Usage.objects.create(
        account=sub, billed_to=sub.parent, window=Usage.Window.HOUR,
        start=hour_start(timezone.now() - timedelta(days=days_ago, hours=1)),
        delivered=delivered, hard_bounced=hard, complained=complained,
    )  # fmt: skip


def test_the_master_sets_its_limits_and_window_for_all_subaccounts(client, agency):
    client.force_login(agency["admin"])
    response = client.post(
        reverse("accounts:auto_pause"),
        {"hard_bounce": "3", "complaint": "0,05", "window_days": "7"},
        follow=True,
    )
    assert "Auto-pause limits saved." in response.content.decode()
    agency["master"].refresh_from_db()
    assert agency["master"].auto_pause_rates == {"hard_bounce": 3.0, "complaint": 0.05, "window_days": 7}
    assert reputation.limits_for(agency["shop"]) == {"hard_bounce": 3.0, "complaint": 0.05, "window_days": 7}
    event = AuditEvent.objects.get(action="auto_pause.rates_changed")
    assert event.actor == agency["admin"] and event.before == {"auto_pause_rates": None}
    assert "hard bounces 3%, complaints 0.05%, over 7 days" in client.get("/activity/").content.decode()


def test_a_subaccount_override_of_one_limit_keeps_the_agencys_others(client, agency):
    agency["master"].auto_pause_rates = {"hard_bounce": 3.0, "complaint": 0.05}
    agency["master"].save()
    client.force_login(agency["admin"])
    url = reverse("accounts:subaccount_auto_pause", args=[agency["shop"].pk])
    page = client.get(url).content.decode()
    assert "Auto-pause of Acme Shop" in page and 'placeholder="3"' in page
    client.post(url, {"hard_bounce": "8", "complaint": "", "window_days": ""})
    agency["shop"].refresh_from_db()
    assert agency["shop"].auto_pause_rates == {"hard_bounce": 8.0}
    assert reputation.limits_for(agency["shop"]) == {"hard_bounce": 8.0, "complaint": 0.05, "window_days": 30}
    # all empty: back to the agency's
    client.post(url, {"hard_bounce": "", "complaint": "", "window_days": ""})
    agency["shop"].refresh_from_db()
    assert agency["shop"].auto_pause_rates is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("hard_bounce", "0"), ("hard_bounce", "abc"), ("complaint", "101"), ("window_days", "91"),
     ("window_days", "2.5"), ("hard_bounce", "nan")],
)  # fmt: skip
def test_a_limit_out_of_bounds_is_refused_beside_its_field(client, agency, field, value):
    client.force_login(agency["admin"])
    response = client.post(reverse("accounts:auto_pause"), {field: value})
    assert response.status_code == 200
    assert f'id="id_{field}_error"' in response.content.decode()
    agency["master"].refresh_from_db()
    assert agency["master"].auto_pause_rates is None
    assert not AuditEvent.objects.filter(action="auto_pause.rates_changed").exists()


def test_a_viewer_reads_the_limits_but_cannot_change_them(client, agency):
    client.force_login(agency["viewer"])
    page = client.get(reverse("accounts:auto_pause")).content.decode()
    assert "5%" in page and "Save limits" not in page
    response = client.post(reverse("accounts:auto_pause"), {"hard_bounce": "50"}, follow=True)
    assert "Only an owner or admin" in response.content.decode()
    agency["master"].refresh_from_db()
    assert agency["master"].auto_pause_rates is None


def test_another_agencys_subaccount_and_a_subaccount_owner_get_404(client, agency):
    other, _ = subaccount_with_owner(MasterFactory())
    client.force_login(agency["admin"])
    assert client.get(reverse("accounts:subaccount_auto_pause", args=[other.pk])).status_code == 404
    assert (
        client.post(
            reverse("accounts:subaccount_auto_pause", args=[other.pk]), {"hard_bounce": "50"}
        ).status_code
        == 404
    )
    client.force_login(agency["owner"])
    assert client.get(reverse("accounts:auto_pause")).status_code == 404
    other.refresh_from_db()
    assert other.auto_pause_rates is None


def test_the_window_decides_which_bounces_count():
    master = MasterFactory(auto_pause_rates={"window_days": 7})
    shop, _ = subaccount_with_owner(master)
    _usage(shop, delivered=100, hard=50, days_ago=10)  # outside the 7 days
    _usage(shop, delivered=200, hard=0)
    assert reputation.check_auto_pause(shop) is False
    master.auto_pause_rates = {"window_days": 30}
    master.save()
    shop.refresh_from_db()
    assert reputation.check_auto_pause(shop) is True


def test_an_automatic_pause_shows_why_on_both_sides_until_the_agency_resumes(client, agency):
    shop = agency["shop"]
    _usage(shop, delivered=464, hard=36)
    assert reputation.check_auto_pause(shop)
    shop.refresh_from_db()
    assert shop.pause_reason.startswith("paused automatically: hard-bounce rate 7.2% over the last 500 sends")
    # the agency's list: a banner, the reason on the row, and the reputation
    client.force_login(agency["admin"])
    listing = client.get(reverse("accounts:subaccount_list")).content.decode()
    assert "was paused automatically: hard-bounce rate 7.2% over the last 500 sends" in listing
    assert "Reputation" in listing and '<span class="badge badge-expired">28</span>' in listing
    detail = client.get(reverse("accounts:subaccount_detail", args=[shop.pk])).content.decode()
    assert "Sending was paused automatically: hard-bounce rate 7.2%" in detail
    # the customer's own dashboard
    client.force_login(agency["owner"])
    dashboard = client.get(reverse("accounts:dashboard")).content.decode()
    assert "Sending was paused automatically: hard-bounce rate 7.2% over the last 500 sends" in dashboard
    assert "Northwind must resume it" in dashboard
    # the agency resumes: the banners go
    lifecycle.resume_subaccount(actor=agency["admin"], master=agency["master"], subaccount_id=shop.pk)
    shop.refresh_from_db()
    assert shop.status == Account.Status.ACTIVE and shop.pause_reason == ""
    assert "paused automatically" not in client.get(reverse("accounts:dashboard")).content.decode()
    client.force_login(agency["admin"])
    assert "paused automatically" not in client.get(reverse("accounts:subaccount_list")).content.decode()


def test_a_person_pausing_shows_no_automatic_reason(client, agency):
    lifecycle.pause_subaccount(
        actor=agency["admin"], master=agency["master"], subaccount_id=agency["shop"].pk
    )
    client.force_login(agency["owner"])
    page = client.get(reverse("accounts:dashboard")).content.decode()
    assert "Sending is paused." in page and "automatically" not in page
