"""The Webhooks page in Chromium, at a desktop and a phone width: add a webhook (the URL is checked), send
a test batch and reset the key (htmx rows), and see the last deliveries."""

import pytest
from playwright.sync_api import expect

from accounts.models import Membership
from mailing.models import Webhook
from tests.e2e.conftest import log_in
from tests.factories import PASSWORD, MasterFactory, MembershipFactory
from tests.webhooks.receiver import Receiver, start

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    got = Receiver()
    server = start(got)
    yield got
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("width", [1280, 390])
def test_an_agency_adds_tests_and_rekeys_a_webhook(page, live_server, shot, width, receiver):
    master = MasterFactory(name="Northwind Digital")
    MembershipFactory(account=master, role=Membership.Role.OWNER, user__email="owner@northwind.test")
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server.url, "owner@northwind.test", PASSWORD)
    page.goto(f"{live_server.url}/webhooks/")
    expect(page.get_by_role("heading", name="No webhooks yet")).to_be_visible()

    page.get_by_text("Add a webhook").click()
    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Description").fill("Order system")
    page.get_by_label("account.paused").check()
    shot(page, f"webhooks-add-{width}")
    page.get_by_role("button", name="Add webhook").click()
    expect(page.get_by_text("Webhook added.")).to_be_visible()
    webhook = Webhook.objects.get()
    expect(page.get_by_text(webhook.auth_key)).to_be_visible()

    page.get_by_role("button", name="Send a test batch").click()
    expect(page.get_by_text("Test batch accepted (200).")).to_be_visible()
    assert len(receiver.posts()) == 1
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Reset key").click()
    expect(page.get_by_text("New key made.")).to_be_visible()
    webhook.refresh_from_db()
    expect(page.get_by_text(webhook.auth_key)).to_be_visible()
    page.get_by_text("Last deliveries").click()
    expect(page.get_by_text("test · 9 events")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    shot(page, f"webhooks-{width}")


def test_a_refused_url_is_explained_beside_the_field(page, live_server, receiver):
    master = MasterFactory(name="Northwind Digital")
    MembershipFactory(account=master, role=Membership.Role.OWNER, user__email="owner@northwind.test")
    receiver.head_status = 404
    receiver.replies = [404]
    log_in(page, live_server.url, "owner@northwind.test", PASSWORD)
    page.goto(f"{live_server.url}/webhooks/")
    page.get_by_text("Add a webhook").click()
    page.get_by_label("URL").fill(receiver.url)
    page.get_by_role("button", name="Add webhook").click()
    expect(page.get_by_text("did not accept the check")).to_be_visible()
    assert not Webhook.objects.exists()
