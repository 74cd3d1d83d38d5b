"""The relay backend's envelope for plain addresses (`relay.send_plain`) answers exactly as smtplib's
sendmail does, refusal for refusal, against a relay with and without PIPELINING; with it, a message costs
two writes (the envelope and DATA at once, then the content) instead of four."""

import smtplib
from contextlib import contextmanager
from unittest import mock

import pytest
from aiosmtpd.controller import Controller
from django.core.mail import EmailMessage, mailers

from mailing import delivery, relay
from mailing.models import Message
from mailing.sending import OutgoingMessage, Recipient, accept_messages
from tests.conftest import free_port
from tests.factories import SubaccountFactory

SENDER = "bounces@shop.example"
RECIPIENTS = ["a@example.test", "b@example.test"]
# A line that starts with a dot travels doubled and arrives as it was.
DATA = b"From: news@shop.example\r\nSubject: Hi\r\n\r\nFirst line\r\n.a line that starts with a dot\r\n"


class ScriptedRelay:
    """A relay's handler: offers PIPELINING or not, refuses what it is told to, records what it takes."""

    def __init__(self, *, pipelining: bool) -> None:
        self.pipelining = pipelining
        self.received: list[tuple[str, list[str], bytes]] = []
        self.script()

    def script(self, mail_reply: str = "", rcpt_replies: dict | None = None, data_reply: str = "") -> None:
        self.mail_reply, self.rcpt_replies, self.data_reply = mail_reply, rcpt_replies or {}, data_reply

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if self.pipelining else responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


@contextmanager
def scripted_relay(*, pipelining: bool):
    handler = ScriptedRelay(pipelining=pipelining)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


SCENARIOS = {
    "delivered": {},
    "the sender refused": {"mail_reply": "550 5.7.1 not from you"},
    "one recipient refused": {"rcpt_replies": {"b@example.test": "550 5.1.1 no such user"}},
    "every recipient refused": {
        "rcpt_replies": {"a@example.test": "550 5.1.1 no such user", "b@example.test": "452 4.2.2 full"}
    },
    "the content refused": {"data_reply": "554 5.7.1 looks like spam"},
    "a 421 on a recipient": {"rcpt_replies": {"a@example.test": "421 4.3.2 going down"}},
}


def _smtplib(smtp, sender, recipients, data):
    return smtp.sendmail(sender, recipients, data)


def _outcome(send, scenario: str, pipelining: bool):
    """What `send` returned or raised, whether the connection stayed open, and what the relay took,
    including a next message sent on the same connection once the relay takes mail again."""
    with scripted_relay(pipelining=pipelining) as (handler, port), smtplib.SMTP("127.0.0.1", port) as smtp:
        handler.script(**SCENARIOS[scenario])
        try:
            result = ("returned", send(smtp, SENDER, RECIPIENTS, DATA))
        except smtplib.SMTPException as exc:
            result = (type(exc).__name__, exc.args)
        still_open = smtp.sock is not None
        if still_open:
            handler.script()
            smtp.sendmail(SENDER, ["next@example.test"], b"Subject: next\r\n\r\nnext\r\n")
        return result, still_open, [(sender, tos) for sender, tos, _ in handler.received], handler.received


@pytest.mark.parametrize("pipelining", [False, True], ids=["one command at a time", "pipelining"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_it_answers_as_smtplib_sendmail_does(scenario, pipelining):
    ours = _outcome(relay.send_plain, scenario, pipelining)
    theirs = _outcome(_smtplib, scenario, pipelining)
    assert ours[:3] == theirs[:3]
    # the content arrives as it was sent (dot lines undoubled), to the recipients the relay took
    assert [data for *_, data in ours[3]] == [data for *_, data in theirs[3]]
    if scenario in ("delivered", "one recipient refused"):
        assert ours[3][0][2] == DATA
    # a 421 closes the connection; any other refusal resets it and the next message goes through
    assert ours[1] == (scenario != "a 421 on a recipient")


@pytest.mark.parametrize("pipelining, writes", [(False, 4), (True, 2)])
def test_with_pipelining_the_envelope_and_data_go_in_one_write(pipelining, writes):
    with scripted_relay(pipelining=pipelining) as (handler, port), smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.ehlo()
        with mock.patch.object(smtp, "send", wraps=smtp.send) as send:
            relay.send_plain(smtp, SENDER, RECIPIENTS[:1], DATA)
        assert send.call_count == writes
        assert handler.received == [(SENDER, RECIPIENTS[:1], DATA)]


def _deliver_through(settings, port: int) -> None:
    settings.MAILERS = {**settings.MAILERS, "delivery": {
        "BACKEND": "mailing.relay.RelayEmailBackend", "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 5}}}  # fmt: skip


def test_the_backend_delivers_through_a_pipelining_relay(settings):
    with scripted_relay(pipelining=True) as (handler, port):
        _deliver_through(settings, port)
        messages = [EmailMessage("Hi", f"Body {i}", SENDER, [f"r{i}@example.test"]) for i in range(3)]
        with mailers["delivery"] as backend:
            assert backend.send_messages(messages) == 3
    assert [(sender, tos) for sender, tos, _ in handler.received] == [
        (SENDER, [f"r{i}@example.test"]) for i in range(3)
    ]
    assert all(f"Body {i}".encode() in data for i, (*_, data) in enumerate(handler.received))


@pytest.mark.django_db
def test_a_batch_delivered_through_a_pipelining_relay_keeps_each_refusal_its_own(settings):
    sub = SubaccountFactory()
    accepted = accept_messages(
        account=sub,
        message=OutgoingMessage(
            from_email="news@shop.example",
            text="Thanks.",
            recipients=[Recipient(f"r{i}@example.test") for i in range(4)],
        ),
    )
    with scripted_relay(pipelining=True) as (handler, port):
        _deliver_through(settings, port)
        handler.script(rcpt_replies={"r2@example.test": "550 5.1.1 no such user"})
        ids = Message.objects.filter(public_id__in=[r.id for r in accepted]).values_list("pk", flat=True)
        report = delivery.deliver(list(ids))
    assert (report.sent, report.failed) == (3, 1)
    assert sorted(tos[0] for _, tos, _ in handler.received) == [
        "r0@example.test",
        "r1@example.test",
        "r3@example.test",
    ]
    statuses = dict(Message.objects.values_list("to_email", "status"))
    assert statuses.pop("r2@example.test") == Message.Status.BOUNCED
    assert set(statuses.values()) == {Message.Status.SENT}


@pytest.mark.parametrize(
    "data",
    [
        DATA,
        b".a leading dot\r\nand more\r\n",
        b"a\r\n.\r\n..two\r\n.",
        b"bare\n.lf\n",
        b"no end of line",
        b"",
    ],
)
def test_the_content_is_dot_stuffed_as_smtplib_stuffs_it(data):
    stuffed = smtplib._quote_periods(data)
    stuffed += b"" if stuffed.endswith(b"\r\n") else b"\r\n"
    assert relay._data_lines(data) == stuffed + b".\r\n"
