"""Rejected recipients are on record: the message log filtered by Rejected, messages/search and the
dashboard's chart tell the same story, at no quota cost and to their own account only. And a temporary
refusal at delivery is a deferral event."""

import pytest
from django.urls import reverse

from accounts.models import Membership, Usage
from accounts.selectors import daily_sent
from mailing import delivery
from mailing.deliverability import suppression
from mailing.keys import create_api_key
from mailing.models import Message, MessageEvent
from mailing.sending import OutgoingMessage, Recipient, accept_messages
from tests.factories import MembershipFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db


def _message(*addresses, **extra) -> OutgoingMessage:
    return OutgoingMessage(
        from_email="shop@example.test", subject="Your order", html="<p>Secret body</p>", text="Secret body",
        tags=["order"], metadata={"order": "42"}, recipients=[Recipient(email=a) for a in addresses], **extra,
    )  # fmt: skip


@pytest.fixture
def rejected_four():
    """Four rejections: one suppressed address, then three over the monthly limit."""
    sub, owner = subaccount_with_owner(monthly_limit=2)
    suppression.suppress(account=sub, email="gone@example.test", reason="hard-bounce")
    accept_messages(account=sub, message=_message("gone@example.test", "a@example.test"))
    accept_messages(account=sub, message=_message("b@example.test", "c@example.test", "d@example.test"))
    return sub, owner


def test_each_rejected_recipient_is_recorded_without_body_or_quota(rejected_four):
    sub, _ = rejected_four
    rejected = Message.objects.filter(account=sub, status=Message.Status.REJECTED)
    assert sorted(rejected.values_list("to_email", "reject_reason")) == [
        ("b@example.test", "monthly-limit-reached"),
        ("c@example.test", "monthly-limit-reached"),
        ("d@example.test", "monthly-limit-reached"),
        ("gone@example.test", "hard-bounce"),
    ]
    for row in rejected:
        assert (row.subject, row.tags, row.metadata) == ("Your order", ["order"], {"order": "42"})
        assert row.html == row.text == "" and row.attachments == [] and row.next_attempt_at is None
        event = row.events.get()
        assert (event.kind, event.data) == (MessageEvent.Kind.REJECT, {"reason": row.reject_reason})
    month = Usage.objects.get(account=sub, window=Usage.Window.MONTH)
    assert month.sent == 1  # a@ only; no rejection used quota
    assert Usage.objects.get(account=sub, window=Usage.Window.HOUR).rejected == 4


def test_the_log_search_and_chart_agree(client, rejected_four):
    sub, owner = rejected_four
    client.force_login(owner)
    page = client.get(reverse("mailing:message_list"), {"status": "rejected"}).content.decode()
    assert "No messages match" not in page
    assert (
        all(f"{name}@example.test" in page for name in ("gone", "b", "c", "d"))
        and "a@example.test" not in page
    )
    _, key = create_api_key(actor=owner, account=sub, label="t")
    found = client.post(
        "/api/1.0/messages/search.json",
        {"key": key, "query": "state:rejected"},
        content_type="application/json",
    ).json()
    assert len(found) == 4 and {m["state"] for m in found} == {"rejected"}
    assert sum(day["rejected"] for day in daily_sent(sub)) == 4


def test_another_account_cannot_see_the_rejections(client, rejected_four):
    sub, _ = rejected_four
    sibling, sibling_owner = subaccount_with_owner(sub.parent)
    client.force_login(sibling_owner)
    page = client.get(reverse("mailing:message_list"), {"status": "rejected"}).content.decode()
    assert "gone@example.test" not in page and "No messages match" in page
    one = Message.objects.filter(account=sub, status=Message.Status.REJECTED).first()
    assert client.get(reverse("mailing:message_detail", args=[one.public_id])).status_code == 404
    _, key = create_api_key(actor=sibling_owner, account=sibling, label="t")
    info = client.post(
        "/api/1.0/messages/info.json", {"key": key, "id": one.public_id}, content_type="application/json"
    )
    assert info.json()["name"] == "Unknown_Message"
    # the agency sees its subaccount's rejections
    admin = MembershipFactory(account=sub.parent, role=Membership.Role.ADMIN).user
    client.force_login(admin)
    assert (
        "gone@example.test"
        in client.get(reverse("mailing:message_list"), {"status": "rejected"}).content.decode()
    )


def test_a_temporary_refusal_is_a_deferral_event(smtp_sink, django_capture_on_commit_callbacks):
    sub, _ = subaccount_with_owner()
    smtp_sink.refuse_recipients["busy@example.test"] = "451 4.2.0 Try again later"
    with django_capture_on_commit_callbacks(execute=False):  # one delivery run, not the task's retries
        [result] = accept_messages(account=sub, message=_message("busy@example.test"))
    message = Message.objects.get(public_id=result.id)
    assert delivery.deliver([message.pk]).retry == 1
    message.refresh_from_db()
    assert message.status == Message.Status.QUEUED and message.attempts == 1
    [event] = message.events.all()
    assert event.kind == MessageEvent.Kind.DEFERRAL and "451" in event.diagnostic
    assert event.data["attempt"] == 1 and event.data["retry_at"]
    assert Usage.objects.get(account=sub, window=Usage.Window.HOUR).failed == 0


def test_a_permanent_refusal_is_no_deferral(smtp_sink, django_capture_on_commit_callbacks):
    sub, _ = subaccount_with_owner()
    smtp_sink.refuse_recipients["gone@example.test"] = "550 5.1.1 No such user"
    with django_capture_on_commit_callbacks(execute=True):
        [result] = accept_messages(account=sub, message=_message("gone@example.test"))
    kinds = set(MessageEvent.objects.filter(message__public_id=result.id).values_list("kind", flat=True))
    assert kinds == {MessageEvent.Kind.HARD_BOUNCE}


def test_held_mail_that_expires_is_a_counted_rejection():
    from datetime import timedelta

    from django.utils import timezone

    sub, _ = subaccount_with_owner()
    held = Message.objects.create(account=sub, from_email="a@example.test", to_email="b@example.test",
                                  status=Message.Status.HELD)  # fmt: skip
    Message.objects.filter(pk=held.pk).update(created_at=timezone.now() - timedelta(hours=100))
    assert delivery.expire_held() == 1
    held.refresh_from_db()
    assert (held.status, held.reject_reason) == (Message.Status.REJECTED, "hold-expired")
    assert held.events.get().kind == MessageEvent.Kind.REJECT
    assert Usage.objects.get(account=sub, window=Usage.Window.HOUR).rejected == 1


def test_the_accept_path_stays_a_fixed_number_of_queries_for_many_rejections(django_assert_max_num_queries):
    sub, _ = subaccount_with_owner()
    for address in [f"r{n}@example.test" for n in range(30)]:
        suppression.suppress(account=sub, email=address, reason="unsub")
    with django_assert_max_num_queries(12):
        results = accept_messages(account=sub, message=_message(*[f"r{n}@example.test" for n in range(30)]))
    assert {r.status for r in results} == {"rejected"}
