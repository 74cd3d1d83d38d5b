"""Messages say what happened in words; the raw codes stay for those who open the details."""

import pytest
from playwright.sync_api import expect

from mailing.models import Message
from tests.e2e.conftest import DEMO_PASSWORD, PEOPLE, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_held_and_failed_messages_read_as_words(page, live_server, demo):
    log_in(page, live_server.url, PEOPLE["agency owner"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/messages/?status=held")
    row = page.locator("tbody tr").first
    expect(row).to_contain_text("Held")
    expect(row).to_contain_text("sending is paused")
    assert "sending-paused" not in row.inner_text()
    assert "Held (sending paused)" not in row.inner_text()

    page.goto(f"{live_server.url}/messages/?status=failed")
    expect(page.locator("tbody tr").first).to_contain_text("Bounced: mailbox does not exist")
    failed = Message.objects.filter(status=Message.Status.FAILED).first()
    page.goto(f"{live_server.url}/messages/{failed.public_id}/")
    expect(page.get_by_text("Bounced: mailbox does not exist").first).to_be_visible()
    delivery = page.locator("section", has=page.get_by_role("heading", name="Delivery"))
    raw = delivery.get_by_text("SMTPRecipientsRefused: 550 5.1.1")
    expect(raw).to_be_hidden()
    delivery.get_by_text("Technical details").click()
    expect(raw).to_be_visible()
    # the timeline tells the bounce in words, its codes beside them
    timeline = page.locator("section", has=page.get_by_role("heading", name="Timeline"))
    expect(timeline.get_by_text("Mailbox does not exist (550 5.1.1)")).to_be_visible()


def test_a_rejected_message_says_why(page, live_server, demo):
    acme = demo["acme"]
    Message.objects.create(account=acme, from_email="a@acme-shop.example", to_email="x@example.test",
                           status=Message.Status.REJECTED, reject_reason="hold-expired")  # fmt: skip
    log_in(page, live_server.url, PEOPLE["customer"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/messages/?status=rejected")
    row = page.locator("tbody tr").first
    expect(row).to_contain_text("Rejected")
    expect(row).to_contain_text("held too long while sending was paused")
    assert "hold-expired" not in row.inner_text()
