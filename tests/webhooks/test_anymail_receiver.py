"""Proof with a real receiver: django-anymail's Mandrill webhook view, on a live server, validates our
signature (with and without user:pass@ in the URL) and reports each of our events as Mandrill's."""

from urllib.parse import urlsplit, urlunsplit

import pytest
from anymail.signals import tracking

from accounts.models import Membership
from mailing.models import MessageEvent, Webhook
from mailing.webhooks import hooks, outbox
from tests.factories import MasterFactory, MembershipFactory, SubaccountFactory

from .conftest import make_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.webhooks.anymail_urls")]
Kind = MessageEvent.Kind

ANYMAIL_TYPE = {
    Kind.SEND: "sent", Kind.DEFERRAL: "deferred", Kind.HARD_BOUNCE: "bounced", Kind.SOFT_BOUNCE: "bounced",
    Kind.REJECT: "rejected", Kind.SPAM: "complained", Kind.OPEN: "opened", Kind.CLICK: "clicked",
    Kind.UNSUB: "unsubscribed",
}  # fmt: skip


@pytest.fixture
def tracked():
    seen = []

    def handler(sender, event, esp_name, **kwargs):
        seen.append(event)

    tracking.connect(handler, weak=False, dispatch_uid="test-webhooks-tracking")
    yield seen
    tracking.disconnect(dispatch_uid="test-webhooks-tracking")


def _agency():
    master = MasterFactory()
    admin = MembershipFactory(account=master, role=Membership.Role.ADMIN).user
    return master, admin


def _configure(settings, webhook: Webhook, *, key=None, url=None):
    settings.ANYMAIL = {
        "MANDRILL_WEBHOOK_KEY": key or webhook.auth_key,
        "MANDRILL_WEBHOOK_URL": url or webhook.url,
    }


def test_anymail_validates_our_signature_and_reads_every_kind_of_event(live_server, settings, tracked):
    # given a webhook on anymail's view, added through the HEAD check
    master, admin = _agency()
    sub = SubaccountFactory(parent=master, public_id="shop")
    url = f"{live_server.url}/anymail/mandrill/"
    webhook = hooks.add_webhook(actor=admin, account=master, url=url, events=list(ANYMAIL_TYPE),
                                include_subaccounts=True)  # fmt: skip
    _configure(settings, webhook)
    made = {}
    for kind in ANYMAIL_TYPE:
        data = {"url": "https://shop.test/p", "user_agent": "Mozilla/5.0", "ip": "203.0.113.9"}
        made[kind] = make_event(
            sub, kind, to=f"{kind}@example.test", tags=["welcome", kind], metadata={"order": "42"},
            data=data if kind in (Kind.OPEN, Kind.CLICK) else None,
            diagnostic="smtp;550 5.1.1 unknown" if kind == Kind.HARD_BOUNCE else "",
        )  # fmt: skip

    # when
    report = outbox.deliver(webhook.pk)

    # then anymail took the batch and told its application about each event
    assert report.delivered == len(ANYMAIL_TYPE) and report.retry_in is None
    by_recipient = {event.recipient: event for event in tracked}
    assert len(by_recipient) == len(ANYMAIL_TYPE)
    for kind, expected in ANYMAIL_TYPE.items():
        event = by_recipient[f"{kind}@example.test"]
        assert event.event_type == expected
        assert event.message_id == made[kind].message.public_id
        assert event.tags == ["welcome", kind]
        assert event.metadata == {"order": "42"}
        assert event.timestamp is not None
        assert event.esp_event["msg"]["subaccount"] == "shop"
    assert by_recipient["click@example.test"].click_url == "https://shop.test/p"
    assert by_recipient["open@example.test"].user_agent == "Mozilla/5.0"
    assert by_recipient["hard_bounce@example.test"].mta_response == "smtp;550 5.1.1 unknown"
    webhook.refresh_from_db()
    assert webhook.batches_sent == 1 and webhook.events_sent == len(ANYMAIL_TYPE) and webhook.last_sent_at


def test_anymail_refuses_a_wrong_key_so_the_signature_is_really_checked(live_server, settings, tracked):
    master, admin = _agency()
    webhook = hooks.add_webhook(actor=admin, account=master, url=f"{live_server.url}/anymail/mandrill/")
    cursor = webhook.message_cursor
    _configure(settings, webhook, key="not-the-key-at-all-xyz")
    make_event(master, Kind.SEND)

    report = outbox.deliver(webhook.pk)

    assert report.delivered == 0 and report.retry_in
    assert tracked == []
    webhook.refresh_from_db()
    assert webhook.last_error == "Answered 400"
    assert webhook.message_cursor == cursor and webhook.events_sent == 0  # the batch is kept for a retry


def test_anymail_with_basic_auth_in_the_url(live_server, settings, tracked):
    # given a URL with user:pass@, which anymail checks as Basic auth and signs over, credentials included
    master, admin = _agency()
    parts = urlsplit(f"{live_server.url}/anymail/mandrill/")
    url = urlunsplit(parts._replace(netloc=f"hook:s3cret@{parts.netloc}"))
    webhook = hooks.add_webhook(actor=admin, account=master, url=url)
    _configure(settings, webhook)
    settings.ANYMAIL |= {"WEBHOOK_SECRET": "hook:s3cret"}
    make_event(master, Kind.SEND, to="basic@example.test")

    report = outbox.deliver(webhook.pk)

    assert report.delivered == 1
    assert [event.recipient for event in tracked] == ["basic@example.test"]


def test_anymail_refuses_a_post_without_the_right_basic_auth(live_server, settings, tracked):
    master, admin = _agency()
    parts = urlsplit(f"{live_server.url}/anymail/mandrill/")
    url = urlunsplit(parts._replace(netloc=f"hook:wrong@{parts.netloc}"))
    webhook = hooks.add_webhook(actor=admin, account=master, url=url)
    _configure(settings, webhook)
    settings.ANYMAIL |= {"WEBHOOK_SECRET": "hook:s3cret"}
    make_event(master, Kind.SEND)

    assert outbox.deliver(webhook.pk).delivered == 0
    assert tracked == []


def test_a_batch_mixing_account_events_still_validates_in_anymail(live_server, settings, tracked):
    # given a master's webhook on message and account events
    from accounts import lifecycle

    master, admin = _agency()
    sub = SubaccountFactory(parent=master)
    webhook = hooks.add_webhook(
        actor=admin, account=master, url=f"{live_server.url}/anymail/mandrill/",
        events=["send", "account.paused"], include_subaccounts=True,
    )  # fmt: skip
    _configure(settings, webhook)
    make_event(sub, Kind.SEND, to="mixed@example.test")
    lifecycle.pause_subaccount(actor=admin, master=master, subaccount_id=sub.pk)

    report = outbox.deliver(webhook.pk)

    assert report.delivered == 2
    kinds = sorted(str(event.event_type) for event in tracked)
    assert kinds == ["sent", "unknown"]
    paused = next(e for e in tracked if e.event_type == "unknown").esp_event
    assert paused["event"] == "account.paused" and paused["subaccount"] == sub.public_id
