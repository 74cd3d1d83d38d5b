"""The activity page reads as sentences about what people did, and filters by action, person and date."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts import alerts, lifecycle
from accounts.impersonation import record_visit_ended, record_visit_started
from accounts.models import Membership
from tests.e2e.conftest import log_in
from tests.factories import PASSWORD, MasterFactory, MembershipFactory, subaccount_with_owner

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def history():
    master = MasterFactory(name="Northwind Digital")
    owner = MembershipFactory(
        account=master, role=Membership.Role.OWNER, user__email="owner@northwind.test"
    ).user
    admin = MembershipFactory(
        account=master, role=Membership.Role.ADMIN, user__email="admin@northwind.test"
    ).user
    sub, sub_owner = subaccount_with_owner(master, name="Acme Shop", contact_email="owner@acme.test")
    lifecycle.set_archiving(actor=admin, master=master, subaccount_id=sub.pk, enabled=True)
    lifecycle.set_archiving(actor=admin, master=master, subaccount_id=sub.pk, enabled=False)
    lifecycle.pause_subaccount(actor=owner, master=master, subaccount_id=sub.pk)
    lifecycle.update_subaccount(
        actor=owner, master=master, subaccount_id=sub.pk, changes={"monthly_limit": 8000}
    )
    alerts.set_alert_thresholds(actor=owner, master=master, thresholds="70, 90")
    record_visit_started(hijacker=owner, hijacked=sub_owner)
    record_visit_ended(hijacker=owner, hijacked=sub_owner)
    return {"master": master, "owner": owner, "admin": admin, "sub": sub, "sub_owner": sub_owner}


def test_the_agency_reads_sentences_and_filters(page, live_server, history):
    log_in(page, live_server.url, "owner@northwind.test", PASSWORD)
    page.goto(f"{live_server.url}/activity/")
    table = page.locator("table")
    for sentence in ("Archiving turned on", "Archiving turned off", "Sending paused",
                     "Logged in as the owner", "Alert thresholds changed"):  # fmt: skip
        expect(table.get_by_text(sentence).first).to_be_visible()
    expect(table.get_by_text("Monthly limit: 1,000 → 8,000")).to_be_visible()
    text = table.inner_text()
    for raw in ("impersonation.started", "subaccount.paused", "archiving_enabled", "True", "False", "by:"):
        assert raw not in text, f"{raw!r} shown on the activity page"

    page.get_by_label("Action").select_option(label="Archiving turned off")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("admin@northwind.test")
    page.get_by_label("Action").select_option(label="Any action")
    page.get_by_label("Person").select_option(label="admin@northwind.test")
    expect(table.locator("tbody tr")).to_have_count(2)
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    page.get_by_label("From", exact=True).fill(tomorrow)
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("heading", name="Nothing matches these filters")).to_be_visible()


def test_the_customer_sees_the_agencys_visits_in_words(page, live_server, history):
    log_in(page, live_server.url, "owner@acme.test", PASSWORD)
    page.goto(f"{live_server.url}/activity/")
    table = page.locator("table")
    expect(table.get_by_text("Logged in as the owner")).to_be_visible()
    expect(table.get_by_text("Went back to their own account")).to_be_visible()
    expect(table.get_by_text("owner@northwind.test").first).to_be_visible()
    assert "impersonation" not in table.inner_text()
