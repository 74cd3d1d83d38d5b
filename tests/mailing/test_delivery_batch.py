"""Delivery in batches: a copy built from a batch's shared part is the copy built alone; a batch costs the
same queries for 10 messages as for 50; one message's refusal or fault stays its own; each copy of a
signed batch verifies."""

import base64
import email
import re
from email import policy
from unittest import mock

import dkim
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mailing import delivery, mime
from mailing.deliverability import signing
from mailing.models import Message, SenderDomain
from mailing.relay import RelayEmailBackend
from tests.factories import SubaccountFactory, create_message

pytestmark = pytest.mark.django_db

PDF = base64.b64encode(b"%PDF-1.4 " + bytes(range(256))).decode()
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(64)).decode()


def _messages(account, n: int, **fields) -> list[Message]:
    defaults = {"from_email": "news@shop.example", "from_name": "The Shop", "subject": "Your receipt",
                "text": "Thanks for your order.", "html": "<p>Thanks for your <b>order</b>.</p>"}  # fmt: skip
    return [
        create_message(account=account, **({"to_email": f"reader{i}@example.test"} | defaults | fields))
        for i in range(n)
    ]


VARIANTS = {
    "plain text": {"html": ""},
    "html and text": {},
    "attachments and an inline image": {
        "html": '<p>Hi <img src="cid:logo.png"></p>',
        "attachments": [
            {"name": "invoice.pdf", "type": "application/pdf", "content": PDF},
            {"name": "logo.png", "type": "image/png", "content": PNG, "inline": True},
        ],
    },
    "non-ASCII names and subject": {
        "from_name": "Café Ümlaut",
        "to_name": "Jürgen Müller-Lüdenscheidt",
        "subject": "Grüße aus Köln ✓ " * 5,
    },
    "an internationalised address": {"to_email": "jürgen@příklad.example"},
    "the whole list shown": {
        "shown_to": [{"email": "a@example.test", "name": "A"}, {"email": "b@example.test"}],
        "shown_cc": [{"email": "c@example.test"}],
    },
    "the sender's own headers": {
        "headers": {
            "Reply-To": "help@shop.example",
            "X-Campaign": "spring",
            "List-Unsubscribe": "<mailto:leave@shop.example>",
        },
        "important": True,
    },
    "tracked opens and clicks": {
        "track_opens": True,
        "track_clicks": True,
        "html": '<p><a href="https://shop.example/o">order</a></p>',
        "tracked_links": ["https://shop.example/o"],
    },
}


def _normalised(data: bytes) -> bytes:
    """The Date and the multipart boundaries differ between two builds by design."""
    data = re.sub(rb"Date: [^\r]*\r\n", b"Date: -\r\n", data)
    return re.sub(rb"===============\d+==", b"=boundary=", data)


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_copy_of_a_batch_is_the_copy_built_alone(variant):
    # given three recipients of one message, and a builder that has built other messages already
    sub = SubaccountFactory()
    fields = VARIANTS[variant]
    to_email = fields.get("to_email")
    batch = _messages(sub, 3, **fields)
    if to_email:
        batch[1].to_email = "second@example.test"
    builder = mime.MimeBuilder()
    builder.build(_messages(sub, 1, subject="Something else")[0])
    for message in batch:
        # when built in the batch, then it is what a builder of its own makes
        in_batch = builder.build(message)
        assert _normalised(in_batch) == _normalised(mime.MimeBuilder().build(message))
        # and it is this recipient's copy
        parsed = email.message_from_string(in_batch.decode(), policy=policy.SMTPUTF8)
        assert message.public_id in parsed["Message-ID"] and parsed["X-Message-Id"] == message.public_id
        if not message.shown_to:
            assert parsed["To"].addresses[0].addr_spec == message.to_email
    # the shared part is built once for the batch: again only for a tracked copy (its own links), and
    # for a copy that must travel as UTF-8 (an internationalised address) and one that need not
    shared = {"tracked opens and clicks": 4, "an internationalised address": 3}.get(variant, 2)
    assert len(builder.shared) == shared


@pytest.mark.parametrize(
    "name, value",
    [("To", "reader@example.test"), ("To", '"first..last"@example.test'), ("To", "Jürgen Müller <j@example.test>"),
     ("To", "A Very Long Display Name That Goes On And On For Quite A While <someone@a-long-domain.example>"),
     ("Message-ID", "<4f9c2a7d0b1e4c58a3f6e2d19b7c8a55@mail.example>"), ("X-Message-Id", "4f9c2a7d0b1e4c58"),
     ("Subject", "=?utf-8?q?looks_encoded?="), ("X-Note", "plain words, with spaces")],
)  # fmt: skip
@pytest.mark.parametrize("mime_policy", [policy.SMTP, policy.SMTPUTF8])
def test_a_recipient_header_is_written_as_the_email_package_writes_it(name, value, mime_policy):
    assert mime._header_line(mime_policy, name, value) == mime_policy.fold_binary(
        *mime_policy.header_store_parse(name, value)
    )


def test_list_unsubscribe_keeps_its_url_whole_however_long():
    # the email package would make a long URL RFC 2047 encoded words, which receivers do not read as a URL
    url = "<https://track.example/t/u/" + "a" * 120 + ":signature>"
    assert b"=?utf-8?" in policy.SMTP.fold_binary(*policy.SMTP.header_store_parse("List-Unsubscribe", url))
    line = mime._header_line(policy.SMTP, "List-Unsubscribe", url)
    assert line == b"List-Unsubscribe: " + url.encode() + b"\r\n"
    assert email.message_from_bytes(line + b"\r\n", policy=policy.SMTP)["List-Unsubscribe"] == url
    # a value that is not a plain ASCII line still goes through the email package
    assert b"=?utf-8?" in mime._header_line(
        policy.SMTP, "List-Unsubscribe", "<https://ü.example/" + "a" * 80 + ">"
    )


def test_a_batch_costs_the_same_queries_for_10_messages_as_for_50(smtp_sink):
    sub = SubaccountFactory()
    delivery.deliver([_messages(sub, 1)[0].pk])  # the hour's Usage row made, as it is after the first send
    counts = []
    for n in (10, 50):
        batch = _messages(sub, n)
        with CaptureQueriesContext(connection) as queries:
            report = delivery.deliver([m.pk for m in batch])
        assert report.sent == n
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1], counts
    assert sorted(e.rcpt_tos[0] for e in smtp_sink.received[11:]) == sorted(
        f"reader{i}@example.test" for i in range(50)
    )
    assert Message.objects.filter(status=Message.Status.SENT).count() == 61


def test_a_refused_recipient_fails_alone_and_the_rest_of_the_batch_is_sent(smtp_sink):
    sub = SubaccountFactory()
    batch = _messages(sub, 5)
    smtp_sink.refuse_recipients = {"reader2@example.test": "550 5.1.1 no such user"}
    report = delivery.deliver([m.pk for m in batch])
    assert (report.sent, report.retry, report.failed) == (4, 0, 1)
    statuses = dict(Message.objects.values_list("to_email", "status"))
    assert statuses.pop("reader2@example.test") == Message.Status.BOUNCED
    assert set(statuses.values()) == {Message.Status.SENT}
    assert sorted(e.rcpt_tos[0] for e in smtp_sink.received) == [
        f"reader{i}@example.test" for i in (0, 1, 3, 4)
    ]


def test_a_message_that_cannot_be_built_fails_alone(smtp_sink):
    sub = SubaccountFactory()
    batch = _messages(sub, 3)
    parts = mime.MimeBuilder.parts

    def broken_for_the_second(builder, message):
        if message.pk == batch[1].pk:
            raise ValueError("an attachment that is not base64")
        return parts(builder, message)

    with mock.patch.object(mime.MimeBuilder, "parts", broken_for_the_second):
        report = delivery.deliver([m.pk for m in batch])
    assert (report.sent, report.failed) == (2, 1)
    failed = Message.objects.get(pk=batch[1].pk)
    assert failed.status == Message.Status.FAILED and "not base64" in failed.last_error
    assert len(smtp_sink.received) == 2


def test_every_copy_of_a_signed_batch_verifies(smtp_sink):
    sub = SubaccountFactory()
    domain = SenderDomain.objects.create(
        account=sub, domain="shop.example", token="t", verified_at=timezone.now()
    )
    key = signing.generate_key(domain)
    signing.mark_published(key)
    batch = _messages(
        sub, 4, subject="Grüße ✓", attachments=VARIANTS["attachments and an inline image"]["attachments"]
    )

    def dnsfunc(name, timeout=5):
        assert name.decode() == f"{key.record_name}."
        return key.record_value.encode()

    assert delivery.deliver([m.pk for m in batch]).sent == 4
    received = [e.original_content or e.content for e in smtp_sink.received]
    assert len(received) == 4
    assert all(
        data.startswith(b"DKIM-Signature:") and dkim.verify(data, dnsfunc=dnsfunc) for data in received
    )
    assert len({data.split(b" b=")[1][:40] for data in received}) == 4  # each copy its own signature
    # a copy changed on the way no longer verifies
    tampered = received[0].replace(b"\r\nTo: reader", b"\r\nTo: leader")
    assert tampered != received[0] and not dkim.verify(tampered, dnsfunc=dnsfunc)


@pytest.mark.parametrize("connections", [1, 3])
def test_over_several_relay_connections_each_message_is_sent_once(smtp_sink, settings, connections):
    settings.DELIVERY_RELAY_CONNECTIONS = connections
    sub = SubaccountFactory()
    batch = _messages(sub, 20)
    smtp_sink.refuse_recipients = {"reader7@example.test": "550 5.1.1 no such user"}
    report = delivery.deliver([m.pk for m in batch])
    assert (report.sent, report.failed) == (19, 1)
    received = sorted(e.rcpt_tos[0] for e in smtp_sink.received)
    assert received == sorted(f"reader{i}@example.test" for i in range(20) if i != 7)
    assert Message.objects.filter(status=Message.Status.SENT).count() == 19


def test_a_further_relay_connection_that_does_not_open_is_done_without(smtp_sink, settings):
    settings.DELIVERY_RELAY_CONNECTIONS = 3
    sub = SubaccountFactory()
    batch = _messages(sub, 6)
    opened = []
    real_open = RelayEmailBackend.open

    def open_twice_then_refuse(backend):
        if backend.connection is None:  # (send_messages opens too, a no-op on an open connection)
            if len(opened) == 2:
                raise ConnectionRefusedError("no more connections from you")
            opened.append(backend)
        return real_open(backend)

    with mock.patch.object(RelayEmailBackend, "open", open_twice_then_refuse):
        report = delivery.deliver([m.pk for m in batch])
    assert report.sent == 6 and len(opened) == 2 and len(smtp_sink.received) == 6


def test_when_the_relay_is_unreachable_every_claimed_message_waits_for_a_retry(smtp_sink):
    sub = SubaccountFactory()
    batch = _messages(sub, 3)
    with mock.patch.object(RelayEmailBackend, "open", side_effect=ConnectionRefusedError("down")):
        report = delivery.deliver([m.pk for m in batch])
    assert (report.sent, report.retry) == (0, 3)
    assert set(Message.objects.values_list("status", flat=True)) == {Message.Status.QUEUED}


@pytest.mark.parametrize("token", ["0a1b2c3d:sig_-nature", "0a1b2c3d.4:sig", "odd token?with#chars", "ü:sig"])
def test_a_tracking_link_is_what_reverse_makes_of_its_token(token, settings):
    from django.urls import reverse

    from mailing.tracking import tokens

    for name in ("tracking:open", "tracking:click", "tracking:unsubscribe"):
        assert tokens._absolute(name, token) == settings.TRACKING_BASE_URL + reverse(
            name, kwargs={"token": token}
        )


# --- a small batch takes the waiting mail along -------------------------------------------------------


def test_a_one_message_task_takes_the_other_waiting_mail_along_in_one_batch(smtp_sink, settings):
    from datetime import timedelta

    from mailing import tasks

    # given a stream of one-recipient calls whose tasks have not run yet, and mail that must not go
    shop, other = SubaccountFactory(), SubaccountFactory()
    due = timezone.now()  # as the accept path stores them
    waiting = _messages(shop, 3, next_attempt_at=due) + _messages(other, 2, next_attempt_at=due)
    later = _messages(shop, 1, next_attempt_at=timezone.now() + timedelta(minutes=5))  # a retry not due
    held = _messages(shop, 1, status=Message.Status.HELD, next_attempt_at=due)
    # when the first call's task runs
    report = tasks.deliver_messages([waiting[0].pk])
    # then the due mail went out with it, in one batch, and nothing else
    assert report["sent"] == 5 and len(smtp_sink.received) == 5
    assert set(Message.objects.filter(pk__in=[m.pk for m in waiting]).values_list("status", flat=True)) == {
        "sent"
    }
    assert Message.objects.get(pk=later[0].pk).status == "queued"
    assert Message.objects.get(pk=held[0].pk).status == "held"
    # and the other calls' tasks find their mail gone: nothing is sent twice
    for message in waiting[1:]:
        assert tasks.deliver_messages([message.pk])["sent"] == 0
    assert len(smtp_sink.received) == 5


def test_without_filling_a_task_sends_only_its_own(smtp_sink, settings):
    from mailing import tasks

    settings.DELIVERY_FILL_BATCHES = False
    messages = _messages(SubaccountFactory(), 3, next_attempt_at=timezone.now())
    assert tasks.deliver_messages([messages[0].pk])["sent"] == 1
    assert Message.objects.filter(status="queued").count() == 2


def test_every_copy_of_a_signed_tracked_batch_verifies_with_its_own_body(smtp_sink):
    # tracked links and the open pixel make each copy's body its own: none may carry another's body hash
    sub = SubaccountFactory()
    domain = SenderDomain.objects.create(
        account=sub, domain="shop.example", token="t", verified_at=timezone.now()
    )
    key = signing.generate_key(domain)
    signing.mark_published(key)
    batch = _messages(sub, 3, **VARIANTS["tracked opens and clicks"])

    def dnsfunc(name, timeout=5):
        return key.record_value.encode()

    assert delivery.deliver([m.pk for m in batch]).sent == 3
    received = [e.original_content or e.content for e in smtp_sink.received]
    assert all(dkim.verify(data, dnsfunc=dnsfunc) for data in received)
    assert len({re.search(rb"bh=([^;]+);", data.replace(b"\r\n ", b"")).group(1) for data in received}) == 3
