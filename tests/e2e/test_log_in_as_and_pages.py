import csv
import io
from datetime import datetime
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Membership, Usage
from accounts.quota import hour_start, month_start
from mailing.models import Message
from tests.e2e.conftest import log_in
from tests.factories import (
    PASSWORD,
    MasterFactory,
    MembershipFactory,
    create_archived,
    create_message,
    subaccount_with_owner,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def agency():
    master = MasterFactory(name="Northwind Digital")
    owner = MembershipFactory(
        account=master, role=Membership.Role.OWNER, user__email="owner@northwind.test"
    ).user
    sub, sub_owner = subaccount_with_owner(master, name="Acme Shop", public_id="acme-shop", monthly_limit=1000,
                                           archiving_enabled=True)  # fmt: skip
    now = timezone.now()
    for window, start, sent in (
        (Usage.Window.MONTH, month_start(now), 870),
        (Usage.Window.HOUR, hour_start(now), 40),
    ):
        Usage.objects.create(account=sub, billed_to=master, account_label=str(sub), window=window, start=start,
                             sent=sent, rejected=5 if window == Usage.Window.HOUR else 0)  # fmt: skip
    for n in range(3):
        message = create_message(account=sub, from_email="hello@acme-shop.example", to_email=f"c{n}@example.test",
                                 subject=f"Order #{n}", html="<p>Thanks</p>", status=Message.Status.SENT,
                                 sent_at=now)  # fmt: skip
        create_archived(account=sub, message=message, from_email=message.from_email, to_email=message.to_email,
                        subject=message.subject, html=message.html, sent_at=now)  # fmt: skip
    return {"master": master, "owner": owner, "sub": sub, "sub_owner": sub_owner}


def test_log_in_as_a_subaccount_and_back(page, live_server, agency, shot):
    log_in(page, live_server.url, agency["owner"].email, PASSWORD)
    page.locator("tr", has_text="Acme Shop").get_by_role("button", name="Log in as").click()
    banner = page.get_by_role("region", name="Logged in as a subaccount")
    expect(banner).to_contain_text("You are viewing Acme Shop as owner@northwind.test")
    expect(page.get_by_role("heading", name="Acme Shop")).to_be_visible()
    shot(page, "log-in-as-banner")
    # the banner stays on every page, and the owner's credentials stay out of reach
    page.goto(f"{live_server.url}/accounts/password/change/")
    expect(page.get_by_text("not allowed while you are logged in as them")).to_be_visible()
    expect(banner).to_be_visible()
    page.get_by_role("button", name="Back to my account").click()
    expect(page).to_have_url(f"{live_server.url}/subaccounts/#sub-{agency['sub'].pk}")
    expect(page.get_by_role("heading", name="Subaccounts")).to_be_visible()
    expect(page.get_by_role("region", name="Logged in as a subaccount")).to_have_count(0)


def test_the_owners_dashboard_messages_and_archive(page, live_server, agency, shot):
    log_in(page, live_server.url, agency["sub_owner"].email, PASSWORD)
    expect(page.get_by_text("870 / 1,000")).to_be_visible()
    expect(page.get_by_text("Order #2")).to_be_visible()  # the latest messages, loaded by htmx
    size = page.evaluate(
        "() => { const c = document.getElementById('daily-chart'); return [!!window.Chart, c.width, c.height]; }"
    )
    assert size[0] and size[1] > 0 and size[2] > 0
    expect(page.get_by_text("Billing")).to_have_count(0)  # no billing anywhere for a subaccount
    shot(page, "subaccount-dashboard")
    page.get_by_role("link", name="Messages", exact=True).click()
    expect(page.get_by_role("cell", name="c1@example.test")).to_be_visible()
    shot(page, "messages")
    page.get_by_role("link", name="Archive", exact=True).click()
    page.get_by_label("Search subject, sender, recipient").fill("Order #1")
    expect(page.get_by_role("cell", name="c0@example.test")).to_have_count(0)
    page.get_by_role("cell", name="c1@example.test").locator("xpath=..").get_by_role("link").click()
    frame = page.frame_locator("iframe.archive-frame")
    expect(frame.get_by_text("Thanks")).to_be_visible()
    shot(page, "archive-message")
    page.get_by_role("link", name="Activity", exact=True).click()
    expect(page.get_by_role("heading", name="Activity")).to_be_visible()
    shot(page, "activity")


def test_overview_billing_csv_domains_and_api_keys(page, live_server, agency, shot):
    log_in(page, live_server.url, agency["owner"].email, PASSWORD)
    page.get_by_role("link", name="Overview", exact=True).click()
    expect(page.get_by_text("Near their limit")).to_be_visible()
    expect(
        page.locator("section", has_text="Near their limit").get_by_role("link", name="Acme Shop")
    ).to_be_visible()
    shot(page, "overview")
    page.get_by_role("link", name="Billing", exact=True).click()
    expect(page.locator("tbody").get_by_role("cell", name="870")).to_be_visible()
    shot(page, "billing")
    with page.expect_download() as download:
        page.get_by_role("button", name=f"Download CSV for {datetime.now(tz=timezone.UTC):%B %Y}").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0] == ["month", "subaccount_id", "name", "state", "emails_sent"]
    assert rows[1][1:] == ["acme-shop", "Acme Shop", "active", "870"]
    page.get_by_role("link", name="Domains", exact=True).click()
    page.get_by_label("Add a domain").fill("northwind.example")
    page.get_by_role("button", name="Add domain").click()
    expect(page.get_by_text("_reseller-verify.northwind.example")).to_be_visible()
    shot(page, "domains")
    page.get_by_role("link", name="API keys", exact=True).click()
    page.get_by_label("Label").fill("Agency CRM")
    page.get_by_role("button", name="Create API key").click()
    secret = page.get_by_label("New API key").input_value()
    assert secret.startswith("md-")
    shot(page, "api-keys")
    page.reload()
    expect(page.get_by_label("New API key")).to_have_count(0)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator(".badge", has_text="Revoked")).to_be_visible()
    page.goto(f"{live_server.url}/subaccounts/{agency['sub'].pk}/delete/")
    shot(page, "delete-confirm")
