"""★ Account events: what the agency's webhooks hear about its subaccounts, read from the audit trail."""

import json

import pytest

from accounts import alerts, lifecycle
from accounts.quota import reserve_quota
from mailing import domains
from mailing.models import MessageEvent
from mailing.webhooks import hooks, outbox
from tests.factories import subaccount_with_owner

from .conftest import make_event

pytestmark = pytest.mark.django_db
ALL_ACCOUNT_EVENTS = [
    "account.limit_alert", "account.paused", "account.auto_paused", "account.resumed", "account.closed",
    "account.reopened", "account.renewed", "domain.verification_failed",
]  # fmt: skip


def _events(receiver) -> list[dict]:
    return [event for post in receiver.posts() for event in json.loads(post.form["mandrill_events"])]


def _webhook(master, admin, receiver, events=ALL_ACCOUNT_EVENTS, **options):
    return hooks.add_webhook(actor=admin, account=master, url=receiver.url, events=events, **options)


def test_the_whole_lifecycle_reaches_the_agency_in_order(master_admin, receiver):
    # given
    master, admin = master_admin
    sub, owner = subaccount_with_owner(master, public_id="acme")
    webhook = _webhook(master, admin, receiver)

    # when the agency and the owner act
    lifecycle.pause_subaccount(actor=admin, master=master, subaccount_id=sub.pk)
    lifecycle.resume_subaccount(actor=admin, master=master, subaccount_id=sub.pk)
    lifecycle.pause_automatically(subaccount_id=sub.pk, reason="hard bounces 12 %")
    lifecycle.close_subaccount(actor=admin, master=master, subaccount_id=sub.pk)
    lifecycle.reopen_subaccount(actor=admin, master=master, subaccount_id=sub.pk)
    lifecycle.close_subaccount(actor=admin, master=master, subaccount_id=sub.pk)
    lifecycle.renew_account(actor=owner)
    outbox.deliver(webhook.pk)

    # then
    events = _events(receiver)
    assert [e["event"] for e in events] == [
        "account.paused", "account.resumed", "account.auto_paused", "account.closed", "account.reopened",
        "account.closed", "account.renewed",
    ]  # fmt: skip
    assert events[0]["account"]["id"] == "acme" and events[0]["subaccount"] == "acme"
    assert events[2]["after"]["reason"].startswith("paused automatically") and events[2]["actor"] == "system"
    assert events[-1]["before"]["master"] == master.public_id
    assert len({e["_id"] for e in events}) == len(events) and all(isinstance(e["ts"], int) for e in events)


def test_a_limit_alert_is_an_event_with_its_percentage(master_admin, receiver):
    master, admin = master_admin
    sub, _ = subaccount_with_owner(master, monthly_limit=10)
    webhook = _webhook(master, admin, receiver, events=["account.limit_alert"])
    reserve_quota(account=sub, n=9)

    alerts.check_limit_alerts(account=sub)
    outbox.deliver(webhook.pk)

    events = _events(receiver)
    assert [
        (e["event"], e["after"]["threshold"], e["after"]["usage"], e["after"]["limit"]) for e in events
    ] == [("account.limit_alert", 80, 9, 10)]


def test_a_failed_domain_verification_is_an_event(master_admin, receiver, dns_server):
    master, admin = master_admin
    webhook = _webhook(master, admin, receiver, events=["domain.verification_failed"])
    domain = domains.add_domain(actor=admin, account=master, domain="mail.agency.test")

    domains.verify_domain(actor=admin, account=master, domain_id=domain.pk)
    outbox.deliver(webhook.pk)

    [event] = _events(receiver)
    assert event["event"] == "domain.verification_failed"
    assert event["after"]["domain"] == "mail.agency.test" and "TXT" in event["after"]["error"]


def test_only_the_chosen_account_events_are_sent(master_admin, receiver):
    master, admin = master_admin
    sub, _ = subaccount_with_owner(master)
    webhook = _webhook(master, admin, receiver, events=["account.closed"])
    lifecycle.pause_subaccount(actor=admin, master=master, subaccount_id=sub.pk)
    lifecycle.close_subaccount(actor=admin, master=master, subaccount_id=sub.pk)

    outbox.deliver(webhook.pk)

    assert [e["event"] for e in _events(receiver)] == ["account.closed"]


def test_another_agencys_account_events_never_arrive(master_admin, receiver):
    from tests.factories import MembershipFactory, SubaccountFactory

    master, admin = master_admin
    other_sub = SubaccountFactory()
    other_admin = MembershipFactory(account=other_sub.parent).user
    webhook = _webhook(master, admin, receiver)
    lifecycle.pause_subaccount(actor=other_admin, master=other_sub.parent, subaccount_id=other_sub.pk)

    outbox.deliver(webhook.pk)

    assert receiver.posts() == []


def test_message_and_account_events_share_batches_in_time_order(master_admin, receiver, settings):
    master, admin = master_admin
    settings.WEBHOOK_BATCH_SIZE = 2
    sub, _ = subaccount_with_owner(master)
    webhook = _webhook(master, admin, receiver, events=["send", "account.paused", "account.resumed"],
                       include_subaccounts=True)  # fmt: skip
    make_event(sub, MessageEvent.Kind.SEND, to="one@example.test")
    lifecycle.pause_subaccount(actor=admin, master=master, subaccount_id=sub.pk)
    make_event(sub, MessageEvent.Kind.SEND, to="two@example.test")
    lifecycle.resume_subaccount(actor=admin, master=master, subaccount_id=sub.pk)
    make_event(sub, MessageEvent.Kind.SEND, to="three@example.test")

    outbox.deliver(webhook.pk)

    batches = [[e.get("msg", {}).get("email") or e["event"] for e in json.loads(p.form["mandrill_events"])]
               for p in receiver.posts()]  # fmt: skip
    assert batches == [
        ["one@example.test", "account.paused"],
        ["two@example.test", "account.resumed"],
        ["three@example.test"],
    ]
