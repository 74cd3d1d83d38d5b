"""Delivery as Mandrill does it: signed form POSTs in batches, in order; kept and retried on failure with
backoff, disabled after a day; the URL check on add; and nothing sent where it must not go."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from accounts.errors import PermissionDenied, ValidationError
from accounts.models import Membership
from mailing.deliverability import outcomes
from mailing.models import Message, MessageEvent, Webhook, WebhookAttempt
from mailing.webhooks import hooks, outbox, signing, transport
from mailing.webhooks.tasks import deliver_webhook
from tests.factories import MembershipFactory, SubaccountFactory

from .conftest import make_event

pytestmark = pytest.mark.django_db
Kind = MessageEvent.Kind


def _add(account, admin, url, **options):
    return hooks.add_webhook(actor=admin, account=account, url=url, **options)


def _events_of(post) -> list[dict]:
    return json.loads(post.form["mandrill_events"])


def test_batches_are_form_posts_signed_as_mandrill_signs_them_in_event_order(
    master_admin, receiver, settings
):
    # given
    master, admin = master_admin
    settings.WEBHOOK_BATCH_SIZE = 3
    webhook = _add(master, admin, receiver.url)
    made = [make_event(master, Kind.SEND, to=f"r{i}@example.test") for i in range(7)]

    # when
    report = outbox.deliver(webhook.pk)

    # then three POSTs of 3, 3 and 1, oldest first
    posts = receiver.posts()
    assert report.delivered == 7 and [len(_events_of(p)) for p in posts] == [3, 3, 1]
    delivered = [event["msg"]["email"] for post in posts for event in _events_of(post)]
    assert delivered == [event.message.to_email for event in made]
    for post in posts:
        assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert list(post.form) == ["mandrill_events"]
        expected = signing.signature(key=webhook.auth_key, url=receiver.url, fields=post.form)
        assert post.headers["X-Mandrill-Signature"] == expected
        assert all(
            isinstance(event["ts"], int) and isinstance(event["msg"]["ts"], int) for event in _events_of(post)
        )
    webhook.refresh_from_db()
    assert (webhook.batches_sent, webhook.events_sent, webhook.message_cursor) == (3, 7, made[-1].pk)


def test_a_message_event_has_mandrills_shape(master_admin, receiver):
    master, admin = master_admin
    webhook = _add(master, admin, receiver.url)
    event = make_event(
        master, Kind.HARD_BOUNCE, diagnostic="smtp;550 5.1.1 user unknown", tags=["a"], template="welcome"
    )

    outbox.deliver(webhook.pk)

    [sent] = _events_of(receiver.posts()[0])
    assert sent["event"] == "hard_bounce" and sent["_id"] == event.message.public_id == sent["msg"]["_id"]
    assert set(sent["msg"]) >= {
        "_id", "ts", "subject", "email", "sender", "tags", "metadata", "subaccount", "state", "diag",
        "bounce_description", "opens", "clicks", "template", "smtp_events", "resends", "_version",
    }  # fmt: skip
    assert (
        sent["msg"]["state"] == "bounced"
        and sent["msg"]["metadata"] == {}
        and sent["msg"]["template"] == "welcome"
    )
    assert (
        sent["msg"]["diag"] == "smtp;550 5.1.1 user unknown"
        and sent["msg"]["bounce_description"] == "bad_mailbox"
    )


def test_open_and_click_events_carry_what_tracking_recorded(master_admin, receiver):
    master, admin = master_admin
    webhook = _add(master, admin, receiver.url, events=["open", "click"])
    seen = {"url": "https://shop.test/x", "ip": "203.0.113.5", "user_agent": "UA", "location": {"country": "France"},
            "user_agent_parsed": {"ua_family": "Firefox"}}  # fmt: skip
    make_event(master, Kind.CLICK, data=seen)
    make_event(master, Kind.SEND)  # not chosen: not sent

    outbox.deliver(webhook.pk)

    [click] = _events_of(receiver.posts()[0])
    assert click["event"] == "click"
    assert {key: click[key] for key in seen} == seen
    assert click["msg"]["clicks"] == [{"ts": click["ts"], "url": "https://shop.test/x"}]


def test_a_500_keeps_the_batch_and_retries_it_with_backoff(master_admin, receiver):
    # given a receiver that fails once
    master, admin = master_admin
    webhook = _add(master, admin, receiver.url)
    event = make_event(master, Kind.SEND)
    receiver.replies = [500]

    with time_machine.travel(timezone.now(), tick=False) as clock:
        # when
        report = outbox.deliver(webhook.pk)
        # then it is kept and comes back in 30 s, not before
        assert report.retry_in == 30
        webhook.refresh_from_db()
        assert (
            webhook.last_error == "Answered 500"
            and webhook.attempts == 1
            and webhook.message_cursor < event.pk
        )
        assert outbox.deliver(webhook.pk).delivered == 0 and len(receiver.posts()) == 1
        clock.shift(31)
        assert outbox.deliver(webhook.pk).delivered == 1

    assert [_events_of(p)[0]["_id"] for p in receiver.posts()] == [event.message.public_id] * 2
    webhook.refresh_from_db()
    assert webhook.attempts == 0 and webhook.last_error == "" and webhook.failing_since is None


def test_backoff_doubles_up_to_an_hour():
    assert [outbox.backoff_seconds(n) for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]


def test_a_timeout_is_a_failure_retried_later(master_admin, receiver, settings):
    master, admin = master_admin
    webhook = _add(master, admin, receiver.url)
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    make_event(master, Kind.SEND)
    receiver.replies = [("sleep", 1.0)]

    report = outbox.deliver(webhook.pk)

    assert report.retry_in == 30
    webhook.refresh_from_db()
    assert webhook.last_error.startswith("Timed out")


def test_a_webhook_failing_for_a_day_is_disabled_and_its_admins_are_emailed_once(
    master_admin, receiver, django_capture_on_commit_callbacks
):
    # given a receiver that always fails
    master, admin = master_admin
    webhook = _add(master, admin, receiver.url)
    make_event(master, Kind.SEND)
    receiver.replies = [500] * 100
    start = timezone.now()

    with time_machine.travel(start, tick=False) as clock, django_capture_on_commit_callbacks(execute=True):
        outbox.deliver(webhook.pk)
        clock.shift(timedelta(hours=23))
        assert outbox.deliver(webhook.pk).retry_in  # still retried
        clock.shift(timedelta(hours=1, minutes=1))
        # when the day is over
        assert outbox.deliver(webhook.pk).retry_in is None
        clock.shift(timedelta(hours=2))
        outbox.deliver(webhook.pk)  # disabled: nothing is posted

    # then
    webhook.refresh_from_db()
    assert webhook.disabled_at is not None and len(receiver.posts()) == 3
    notices = [m for m in mail.outbox if "turned off" in m.subject]
    assert len(notices) == 1 and admin.email in notices[0].to
    assert webhook.pk not in outbox.due_webhooks()


def test_saving_a_disabled_webhook_turns_it_back_on(master_admin, receiver):
    master, admin = master_admin
    webhook = _add(master, admin, receiver.url)
    Webhook.objects.filter(pk=webhook.pk).update(
        disabled_at=timezone.now(), attempts=40, failing_since=timezone.now()
    )

    hooks.update_webhook(actor=admin, account=master, webhook_id=webhook.pk, url=receiver.url)

    webhook.refresh_from_db()
    assert webhook.disabled_at is None and webhook.attempts == 0


def test_redirects_are_not_followed(master_admin, receiver):
    master, admin = master_admin
    webhook = _add(master, admin, receiver.url)
    make_event(master, Kind.SEND)
    receiver.replies = [("redirect", receiver.url + "/elsewhere")]

    report = outbox.deliver(webhook.pk)

    assert report.retry_in and len(receiver.requests) == 2  # the HEAD check and one POST, no follow-up
    webhook.refresh_from_db()
    assert "redirect" in webhook.last_error


def test_a_huge_answer_is_not_read_to_its_end(receiver, settings):
    settings.WEBHOOK_MAX_RESPONSE_BYTES = 1024
    receiver.replies = [("big", 50_000_000)]

    outcome = transport.send("POST", receiver.url, body=b"mandrill_events=%5B%5D")

    assert outcome.ok and outcome.duration_ms < 5000


def test_the_head_check_is_made_when_a_webhook_is_added(master_admin, receiver):
    master, admin = master_admin
    _add(master, admin, receiver.url)
    assert [r.method for r in receiver.requests] == ["HEAD"]


def test_without_a_head_the_check_posts_an_empty_batch_signed_with_test_webhook(master_admin, receiver):
    master, admin = master_admin
    receiver.head_status = 405

    _add(master, admin, receiver.url)

    head, post = receiver.requests
    assert (head.method, post.method) == ("HEAD", "POST")
    assert post.form == {"mandrill_events": "[]"}
    assert post.headers["X-Mandrill-Signature"] == signing.signature(
        key="test-webhook", url=receiver.url, fields={"mandrill_events": "[]"}
    )


def test_a_url_that_fails_both_checks_is_refused_with_a_clear_error(master_admin, receiver):
    master, admin = master_admin
    receiver.head_status = 404
    receiver.replies = [500]

    with pytest.raises(ValidationError, match=r"did not accept the check.*Answered 404.*Answered 500"):
        _add(master, admin, receiver.url)
    assert not Webhook.objects.exists()


def test_changing_the_url_checks_the_new_one(master_admin, receiver):
    master, admin = master_admin
    webhook = _add(master, admin, receiver.url)
    with pytest.raises(ValidationError):
        hooks.update_webhook(
            actor=admin, account=master, webhook_id=webhook.pk, url="http://127.0.0.1:1/nothing"
        )
    webhook.refresh_from_db()
    assert webhook.url == receiver.url


@pytest.mark.parametrize(
    "url",
    ["http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data", "http://[fd00::1]/hook",
     "http://[::ffff:10.0.0.1]/hook", "http://0.0.0.0/hook", "http://224.0.0.1/hook"],
)  # fmt: skip
def test_private_link_local_and_reserved_addresses_are_refused(master_admin, url):
    master, admin = master_admin
    with pytest.raises(ValidationError, match="webhooks can only be sent to public addresses"):
        _add(master, admin, url)


def test_loopback_is_refused_when_the_setting_is_off(master_admin, receiver, settings):
    master, admin = master_admin
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(ValidationError, match="loopback"):
        _add(master, admin, receiver.url)
    with pytest.raises(ValidationError, match="loopback"):
        _add(master, admin, "http://[::1]:8080/hook")
    assert receiver.requests == []


def test_a_name_that_resolves_to_a_private_address_is_refused(master_admin, dns_server):
    master, admin = master_admin
    dns_server.addresses["hooks.example.test"] = ["93.184.216.34", "10.9.8.7"]
    with pytest.raises(ValidationError, match=r"hooks.example.test resolves to 10.9.8.7, a private address"):
        _add(master, admin, "https://hooks.example.test/in")


def test_an_added_url_that_now_resolves_to_a_private_address_is_not_posted_to(
    master_admin, receiver, dns_server
):
    # given a webhook whose host resolved to loopback (allowed in tests) when it was added
    master, admin = master_admin
    port = receiver.url.split(":")[2].split("/")[0]
    dns_server.addresses["rebind.example.test"] = ["127.0.0.1"]
    webhook = _add(master, admin, f"http://rebind.example.test:{port}/hook")
    make_event(master, Kind.SEND)
    # when the name is pointed at the metadata service
    dns_server.addresses["rebind.example.test"] = ["169.254.169.254"]

    report = outbox.deliver(webhook.pk)

    assert report.retry_in and receiver.posts() == []
    webhook.refresh_from_db()
    assert "link-local" in webhook.last_error


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(master_admin, receiver, dns_server):
    master, admin = master_admin
    port = receiver.url.split(":")[2].split("/")[0]
    dns_server.addresses["hooks.example.test"] = ["127.0.0.1"]
    _add(master, admin, f"http://hooks.example.test:{port}/hook")
    assert receiver.requests[0].headers["Host"] == f"hooks.example.test:{port}"


def test_bad_urls_and_events_are_refused(master_admin):
    master, admin = master_admin
    for url in ["", "ftp://example.com/x", "not a url", "http:///path", "https://example.com/#frag"]:
        with pytest.raises(ValidationError):
            _add(master, admin, url)
    with pytest.raises(ValidationError, match="Unknown webhook event"):
        _add(master, admin, "https://example.com/x", events=["send", "exploded"])


def test_account_events_are_for_masters_only(master_admin, receiver):
    master, _ = master_admin
    sub = SubaccountFactory(parent=master)
    owner = MembershipFactory(account=sub, role=Membership.Role.OWNER).user
    with pytest.raises(ValidationError, match="master"):
        _add(sub, owner, receiver.url, events=["account.paused"])


def test_a_viewer_cannot_add_change_or_delete(master_admin, receiver):
    master, admin = master_admin
    viewer = MembershipFactory(account=master, role=Membership.Role.VIEWER).user
    webhook = _add(master, admin, receiver.url)
    with pytest.raises(PermissionDenied):
        _add(master, viewer, receiver.url)
    with pytest.raises(PermissionDenied):
        hooks.update_webhook(actor=viewer, account=master, webhook_id=webhook.pk, url=receiver.url)
    with pytest.raises(PermissionDenied):
        hooks.delete_webhook(actor=viewer, account=master, webhook_id=webhook.pk)
    with pytest.raises(PermissionDenied):
        hooks.reset_webhook_key(actor=viewer, account=master, webhook_id=webhook.pk)


def test_another_accounts_webhook_does_not_exist_for_you(master_admin, receiver):
    master, admin = master_admin
    other_master, other_admin = SubaccountFactory().parent, None
    other_admin = MembershipFactory(account=other_master, role=Membership.Role.ADMIN).user
    theirs = _add(other_master, other_admin, receiver.url)
    with pytest.raises(Webhook.DoesNotExist):
        hooks.update_webhook(actor=admin, account=master, webhook_id=theirs.pk, url=receiver.url)
    with pytest.raises(Webhook.DoesNotExist):
        hooks.delete_webhook(actor=admin, account=master, webhook_id=theirs.pk)
    with pytest.raises(Webhook.DoesNotExist):
        outbox.send_test_batch(actor=admin, account=master, webhook_id=theirs.pk)


def test_a_subaccounts_webhook_never_receives_a_siblings_events(master_admin, receiver):
    # given two subaccounts of one master, and the master's webhook without subaccounts
    master, admin = master_admin
    mine, sibling = SubaccountFactory(parent=master), SubaccountFactory(parent=master)
    owner = MembershipFactory(account=mine, role=Membership.Role.OWNER).user
    my_hook = _add(mine, owner, receiver.url)
    master_only = _add(master, admin, receiver.url + "?master")
    everything = _add(master, admin, receiver.url + "?all", include_subaccounts=True)
    own = make_event(mine, Kind.SEND, to="mine@example.test")
    make_event(sibling, Kind.SEND, to="sibling@example.test")
    make_event(master, Kind.SEND, to="master@example.test")

    for webhook in (my_hook, master_only, everything):
        outbox.deliver(webhook.pk)

    got = {p.path: sorted(e["msg"]["email"] for e in _events_of(p)) for p in receiver.posts()}
    assert got == {
        "/hook": ["mine@example.test"],
        "/hook?master": ["master@example.test"],
        "/hook?all": ["master@example.test", "mine@example.test", "sibling@example.test"],
    }
    subaccounts = {e["msg"]["email"]: e["msg"]["subaccount"] for p in receiver.posts() for e in _events_of(p)}
    assert (
        subaccounts["mine@example.test"] == own.account.public_id
        and subaccounts["master@example.test"] is None
    )


def test_recorded_outcomes_enqueue_delivery_after_commit(
    master_admin, receiver, django_capture_on_commit_callbacks
):
    # given a webhook and a delivered message (the producer calls events_recorded)
    master, admin = master_admin
    webhook = _add(master, admin, receiver.url)
    message = Message.objects.create(account=master, from_email="a@shop.test", to_email="b@example.test")

    with django_capture_on_commit_callbacks(execute=True):
        outcomes.record_delivered([message], at=timezone.now())

    # then the eager task ran after commit
    assert [_events_of(p)[0]["event"] for p in receiver.posts()] == ["send"]
    webhook.refresh_from_db()
    assert webhook.events_sent == 1


def test_the_task_reschedules_a_failed_batch(master_admin, receiver, monkeypatch):
    master, admin = master_admin
    webhook = _add(master, admin, receiver.url)
    make_event(master, Kind.SEND)
    receiver.replies = [503]
    rescheduled = []
    monkeypatch.setattr(
        "mailing.webhooks.tasks._enqueue", lambda wid, countdown=0: rescheduled.append(countdown)
    )

    result = deliver_webhook.apply(args=[webhook.pk]).get()

    assert result["retry_in"] == 30 and rescheduled == [30]


def test_a_key_reset_signs_the_next_batch_with_the_new_key(master_admin, receiver):
    master, admin = master_admin
    webhook = _add(master, admin, receiver.url)
    old_key = webhook.auth_key
    new_key = hooks.reset_webhook_key(actor=admin, account=master, webhook_id=webhook.pk).auth_key
    make_event(master, Kind.SEND)

    outbox.deliver(webhook.pk)

    assert new_key != old_key and len(new_key) == 22
    [post] = receiver.posts()
    assert post.headers["X-Mandrill-Signature"] == signing.signature(
        key=new_key, url=receiver.url, fields=post.form
    )


def test_a_test_batch_is_posted_and_recorded_without_moving_the_cursor(master_admin, receiver):
    master, admin = master_admin
    webhook = _add(master, admin, receiver.url, events=["send", "click"])

    outcome = outbox.send_test_batch(actor=admin, account=master, webhook_id=webhook.pk)

    assert outcome.ok
    assert [e["event"] for e in _events_of(receiver.posts()[0])] == ["send", "click"]
    attempt = WebhookAttempt.objects.get()
    assert attempt.kind == "test" and attempt.events == 2
    webhook.refresh_from_db()
    assert webhook.events_sent == 0


def test_old_attempts_are_purged(master_admin, receiver):
    master, admin = master_admin
    webhook = _add(master, admin, receiver.url)
    WebhookAttempt.objects.create(webhook=webhook, created_at=timezone.now() - timedelta(days=30))
    recent = WebhookAttempt.objects.create(webhook=webhook)

    assert outbox.purge_attempts() == 1
    assert list(WebhookAttempt.objects.all()) == [recent]


def test_account_events_reach_a_masters_webhook(master_admin, receiver):
    from accounts import lifecycle

    master, admin = master_admin
    sub = SubaccountFactory(parent=master)
    webhook = _add(
        master, admin, receiver.url, events=["account.paused", "account.resumed", "account.closed"]
    )
    lifecycle.pause_subaccount(actor=admin, master=master, subaccount_id=sub.pk)
    lifecycle.resume_subaccount(actor=admin, master=master, subaccount_id=sub.pk)
    lifecycle.close_subaccount(actor=admin, master=master, subaccount_id=sub.pk)

    outbox.deliver(webhook.pk)

    events = [e for p in receiver.posts() for e in _events_of(p)]
    assert [e["event"] for e in events] == ["account.paused", "account.resumed", "account.closed"]
    assert all(e["subaccount"] == sub.public_id and isinstance(e["ts"], int) for e in events)


def test_a_webhook_held_by_another_run_is_left_alone(master_admin, receiver):
    master, admin = master_admin
    webhook = _add(master, admin, receiver.url)
    make_event(master, Kind.SEND)
    Webhook.objects.filter(pk=webhook.pk).update(claimed_until=timezone.now() + timedelta(minutes=1))

    assert outbox.deliver(webhook.pk).delivered == 0 and receiver.posts() == []
    assert webhook.pk not in outbox.due_webhooks()


def test_a_run_hands_over_after_its_batches(master_admin, receiver, settings, monkeypatch):
    master, admin = master_admin
    settings.WEBHOOK_BATCH_SIZE, settings.WEBHOOK_BATCHES_PER_RUN = 2, 2
    webhook = _add(master, admin, receiver.url)
    for i in range(5):
        make_event(master, Kind.SEND, to=f"r{i}@example.test")

    report = outbox.deliver(webhook.pk)
    assert (report.delivered, report.more) == (4, True)
    report = outbox.deliver(webhook.pk)
    assert (report.delivered, report.more) == (1, False)


def test_the_sweep_runs_due_webhooks_and_skips_waiting_ones(master_admin, receiver):
    from mailing.webhooks.tasks import sweep_webhooks

    master, admin = master_admin
    due = _add(master, admin, receiver.url)
    waiting = _add(master, admin, receiver.url + "?later")
    Webhook.objects.filter(pk=waiting.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    make_event(master, Kind.SEND)

    assert sweep_webhooks.apply().get() == 1

    assert [p.path for p in receiver.posts()] == ["/hook"]
    due.refresh_from_db()
    assert due.events_sent == 1


def test_events_settle_before_they_are_sent(master_admin, receiver, settings):
    master, admin = master_admin
    settings.WEBHOOK_SETTLE_SECONDS = 60
    webhook = _add(master, admin, receiver.url)
    make_event(master, Kind.SEND)
    assert outbox.deliver(webhook.pk).delivered == 0
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert outbox.deliver(webhook.pk).delivered == 1


def test_a_new_url_is_tried_at_once_not_after_the_old_backoff(master_admin, receiver):
    master, admin = master_admin
    webhook = _add(master, admin, receiver.url)
    Webhook.objects.filter(pk=webhook.pk).update(
        next_attempt_at=timezone.now() + timedelta(hours=1), attempts=7, failing_since=timezone.now()
    )
    make_event(master, Kind.SEND)

    hooks.update_webhook(actor=admin, account=master, webhook_id=webhook.pk, url=receiver.url + "?fixed")

    assert outbox.deliver(webhook.pk).delivered == 1
    assert receiver.posts()[0].path == "/hook?fixed"


def test_the_admin_shows_a_webhooks_attempts(client, master_admin, receiver):
    from tests.factories import UserFactory

    master, admin = master_admin
    webhook = _add(master, admin, receiver.url)
    outbox.send_test_batch(actor=admin, account=master, webhook_id=webhook.pk)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    page = client.get(f"/admin/mailing/webhook/{webhook.pk}/change/")

    assert page.status_code == 200 and "test" in page.content.decode()


def test_an_agency_visiting_as_the_owner_cannot_reset_a_webhook_key(master_admin, receiver):
    master, admin = master_admin
    sub = SubaccountFactory(parent=master)
    owner = MembershipFactory(account=sub, role=Membership.Role.OWNER).user
    webhook = _add(sub, owner, receiver.url)
    with pytest.raises(PermissionDenied, match="logged in as someone else"):
        hooks.reset_webhook_key(actor=owner, account=sub, webhook_id=webhook.pk, real_actor=admin)


def test_a_password_in_the_url_stays_out_of_the_trail_and_the_email(
    master_admin, receiver, django_capture_on_commit_callbacks
):
    from accounts.models import AuditEvent

    master, admin = master_admin
    url = receiver.url.replace("http://", "http://hook:s3cret@")
    webhook = _add(master, admin, url)
    make_event(master, Kind.SEND)
    receiver.replies = [500] * 5
    with (
        time_machine.travel(timezone.now(), tick=False) as clock,
        django_capture_on_commit_callbacks(execute=True),
    ):
        outbox.deliver(webhook.pk)
        clock.shift(timedelta(hours=25))
        outbox.deliver(webhook.pk)

    assert receiver.posts()[0].headers["Authorization"].startswith("Basic ")
    trail = list(AuditEvent.objects.filter(action__startswith="webhook.").values_list("after", flat=True))
    assert trail and all("s3cret" not in str(after) and "***" in after["url"] for after in trail)
    [notice] = [m for m in mail.outbox if "turned off" in m.subject]
    assert "s3cret" not in notice.body and "hook:***@" in notice.body
