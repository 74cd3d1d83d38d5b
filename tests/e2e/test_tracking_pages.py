"""What a recipient sees when unsubscribing, and what a customer sees of what recipients did."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from mailing.models import Message, MessageEvent, Suppression
from mailing.tracking import tokens
from tests.e2e.conftest import DEMO_PASSWORD, PEOPLE, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def test_a_recipient_unsubscribes_from_the_page(page, live_server, demo, shot, settings):
    settings.TRACKING_BASE_URL = live_server.url
    message = Message.objects.filter(account=demo["acme"], status=Message.Status.SENT).first()
    page.goto(tokens.unsubscribe_url(message.public_id))
    expect(page.get_by_role("heading", name="Unsubscribe")).to_be_visible()
    shot(page, "unsubscribe-ask-1280")
    page.set_viewport_size(PHONE)
    shot(page, "unsubscribe-ask-390")
    assert not Suppression.objects.filter(email=message.to_email.lower(), reason="unsub").exists()
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    shot(page, "unsubscribe-done-390")
    assert Suppression.objects.get(account=demo["acme"], email=message.to_email.lower()).reason == "unsub"


def test_the_message_page_shows_what_happened_in_order(page, live_server, demo, shot):
    message = Message.objects.filter(account=demo["acme"], status=Message.Status.SENT).first()
    Message.objects.filter(pk=message.pk).update(track_opens=True, track_clicks=True, opens=1, clicks=1)
    now = timezone.now()
    for minutes, kind, data in [
        (0, "deferral", {"attempt": 1}),
        (1, "send", {}),
        (30, "open", {"bot": True, "user_agent": "GoogleImageProxy"}),
        (31, "open", {"bot": False}),
        (32, "click", {"bot": False, "url": "https://acme-shop.example/orders/42"}),
    ]:
        MessageEvent.objects.create(
            message=message, account=message.account, kind=kind, data=data,
            created_at=now + timezone.timedelta(minutes=minutes),
            diagnostic="451 4.2.0 Try again later" if kind == "deferral" else "",
        )  # fmt: skip
    log_in(page, live_server.url, PEOPLE["customer"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/messages/{message.public_id}/")
    timeline = page.locator("ol.timeline li")
    expect(timeline).to_have_count(message.events.count() + 1)  # and the line for its acceptance
    expect(page.locator("ol.timeline")).to_contain_text("Followed https://acme-shop.example/orders/42")
    expect(page.locator("ol.timeline")).to_contain_text("By a mail proxy or link scanner, not counted")
    shot(page, "message-timeline-1280")
    page.set_viewport_size(PHONE)
    shot(page, "message-timeline-390")
