"""Delivery per worker process, with and without DKIM signing, beside the sink's own rate.

`mailing.delivery.deliver` in batches of `DELIVERY_BATCH` (what one Celery task takes) through the relay
backend to an aiosmtpd Sink in its own process, as a relay would be: messages with a text and an HTML part
and the List-Unsubscribe headers every message gets, from one subaccount. The floor is the sink's own
rate measured in the same run: one smtplib connection sending prebuilt messages of the same size, one
after another, no database and no MIME building. Below it, the cost of one DKIM signature three ways:
dkimpy as it is (its RSA in pure Python), the product's signer, and `cryptography`'s RSA-SHA256 over a
digest alone (the signature's own floor). Then the same against a sink that answers MAIL, RCPT and DATA
after 1 ms, as a relay across a network would, with 1, 2 and 4 connections per delivery run, beside
one smtplib connection's own rate against it. The worker's CPU per message (all its threads; not the sink's
or PostgreSQL's) says what one worker process could do with a relay that kept up: on a shared machine
the wall-clock rate also counts the sink's time and everyone else's.
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import subprocess
import sys
import time

from bench import common
from bench.smtp import ROOT, free_port, wait_for_port

MESSAGES = 2_000
FLOOR_MESSAGES = 3_000
DISTANT_MESSAGES = 600
SIGNATURES = 200


class DistantSink:
    """aiosmtpd's Sink answering MAIL, RCPT and DATA after REPLY_DELAY_MS, as a relay across a network
    would (run by `python -m aiosmtpd -c bench.delivery.DistantSink`)."""

    async def _later(self, reply: str) -> str:
        import asyncio

        await asyncio.sleep(int(os.environ.get("REPLY_DELAY_MS", "1")) / 1000)
        return reply

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address
        return await self._later("250 OK")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        return await self._later("250 OK")

    async def handle_DATA(self, server, session, envelope):
        return await self._later("250 OK")


def _sink(handler: str = "aiosmtpd.handlers.Sink"):
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-c", handler, "-l", f"127.0.0.1:{port}"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    wait_for_port(port)
    return sink, port


def _relay_at(port: int) -> None:
    from django.conf import settings

    settings.MAILERS = {**settings.MAILERS, "delivery": {
        "BACKEND": "mailing.relay.RelayEmailBackend", "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 10}}}  # fmt: skip


def _subaccount(public_id: str):
    from accounts.models import Account

    master, _ = common.make_master(f"{public_id} agency", f"{public_id}-agency")
    return Account.objects.create(kind=Account.Kind.SUBACCOUNT, parent=master, public_id=public_id, name=public_id,
                                  contact_email=f"{public_id}@bench.test", monthly_limit=2_000_000_000)  # fmt: skip


def _queued(sub, n: int) -> list[int]:
    from django.utils import timezone

    from mailing import bodies
    from mailing.models import Message

    body = bodies.body(text="Thanks for your order.\n\nThe Shop\n", headers={}, attachments=[],
                       html="<p>Thanks for your <b>order</b>.</p><p>The Shop</p>")  # fmt: skip
    [content_id] = bodies.store(sub.pk, [body], now=timezone.now())
    rows = [
        Message(
            account=sub, from_email="news@shop.example", from_name="The Shop", to_email=f"reader{i}@example.com",
            subject="Your receipt", content_id=content_id, status="queued",
        )
        for i in range(n)
    ]  # fmt: skip
    return [m.pk for m in Message.objects.bulk_create(rows, batch_size=2000)]


def _with_key(sub):
    from django.utils import timezone

    from mailing.deliverability import signing
    from mailing.models import SenderDomain

    domain = SenderDomain.objects.create(
        account=sub, domain="shop.example", token="t", verified_at=timezone.now()
    )
    key = signing.generate_key(domain)
    signing.mark_published(key)
    return key


def deliver_rate(ids: list[int]) -> tuple[float, float]:
    """(messages/s, CPU seconds of this process per message: its own threads, not the sink's or the
    database's)."""
    from mailing import delivery
    from mailing.tasks import DELIVERY_BATCH

    common.analyze()
    cpu = time.process_time()
    with common.Timer() as total:
        sent = sum(
            delivery.deliver(ids[i : i + DELIVERY_BATCH]).sent for i in range(0, len(ids), DELIVERY_BATCH)
        )
    cpu = time.process_time() - cpu
    assert sent == len(ids), (sent, len(ids))
    return sent / total.seconds, cpu / sent


def sample_message(sub) -> bytes:
    """One message as the relay receives it (signed when the account has a key), for the floor."""
    from mailing import delivery
    from mailing.mime import RelayMessage
    from mailing.models import Message

    message = Message.objects.select_related("account").get(pk=_queued(sub, 1)[0])
    signer = delivery.Signers().signer_for(message)
    return RelayMessage(message, signer=signer).mime.as_bytes()


def floor_rate(port: int, data: bytes, messages: int = FLOOR_MESSAGES) -> tuple[float, float]:
    """The sink's rate: one connection, prebuilt bytes, MAIL/RCPT/DATA per message; and the CPU
    seconds per message smtplib alone costs this process."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo()
        cpu = time.process_time()
        with common.Timer() as total:
            for i in range(messages):
                smtp.sendmail("bounces@shop.example", [f"reader{i}@example.com"], data)
        cpu = time.process_time() - cpu
    return messages / total.seconds, cpu / messages


def signing_costs(key, data: bytes) -> list:
    """Microseconds per signature of `data`: dkimpy's own, the product's, and the bare RSA floor."""
    import dkim
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, utils

    from mailing.deliverability import signing

    pem = signing._private_pem(key.private_key)
    unsigned = data.split(b"\r\n", 1)[1] if data.startswith(b"DKIM-Signature") else data
    while unsigned[:1] in (b" ", b"\t"):  # the signature's folded lines
        unsigned = unsigned.split(b"\r\n", 1)[1]

    def per_signature(fn) -> float:
        fn()
        with common.Timer() as total:
            for _ in range(SIGNATURES):
                fn()
        return total.seconds / SIGNATURES * 1e6

    def with_dkimpy():
        dkim.sign(unsigned, key.selector.encode(), b"shop.example", pem, canonicalize=(b"relaxed", b"relaxed"),
                  include_headers=signing.SIGNED_HEADERS)  # fmt: skip

    def with_product():
        signing.sign(unsigned, domain="shop.example", key=key)

    private = serialization.load_pem_private_key(pem, password=None)
    digest = hashlib.sha256(unsigned).digest()

    def rsa_alone():
        private.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))

    floor = per_signature(rsa_alone)
    return [
        ["dkimpy `dkim.sign`", f"{per_signature(with_dkimpy):,.0f}"],
        ["`signing.sign` (the product's)", f"{per_signature(with_product):,.0f}"],
        ["RSA-SHA256 sign of a digest alone (`cryptography`): the floor", f"{floor:,.0f}"],
    ]


def _row(case: str, connections, messages: int, rate: float, floor: float, cpu: float, aim: str = "") -> list:
    return [case, connections, messages, f"{rate:,.0f}", f"{floor:,.0f}", f"{rate / floor:.2f}", f"{cpu * 1000:.2f}",
            f"{1 / cpu:,.0f}", aim]  # fmt: skip


def main() -> None:
    common.progress("delivery: resetting the database")
    common.reset_database()
    from django.conf import settings

    from mailing.tasks import DELIVERY_BATCH

    plain, signed = _subaccount("deliver-plain"), _subaccount("deliver-dkim")
    key = _with_key(signed)
    default_width = settings.DELIVERY_RELAY_CONNECTIONS
    rows = []
    sink, port = _sink()
    try:
        _relay_at(port)
        data = sample_message(signed)
        common.progress("delivery: the sink's own rate")
        floor, floor_cpu = floor_rate(port, data)
        rows.append(
            _row(
                "local sink: its floor (prebuilt bytes, smtplib alone)",
                1,
                FLOOR_MESSAGES,
                floor,
                floor,
                floor_cpu,
            )
        )
        for dkim_on, sub, width in (
            (False, plain, default_width),
            (True, signed, default_width),
            (True, signed, 2 if default_width == 1 else 1),
        ):
            common.progress(f"delivery: DKIM {'on' if dkim_on else 'off'}, {width} connections")
            settings.DELIVERY_RELAY_CONNECTIONS = width
            rate, cpu = deliver_rate(_queued(sub, MESSAGES))
            rows.append(_row(f"local sink, DKIM {'on' if dkim_on else 'off'}", width, MESSAGES, rate, floor, cpu,
                             "≥ 1,000 messages/s" if dkim_on else ""))  # fmt: skip
            if dkim_on:
                common.aim(f"delivery with DKIM, one worker process, {width} relay connection(s)",
                           f"{rate:,.0f} messages/s ({cpu * 1000:.2f} ms CPU each)", "≥ 1,000 messages/s",
                           rate >= 1000, floor=f"{floor:,.0f} messages/s (the sink)")  # fmt: skip
        costs = signing_costs(key, data)
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    delay = os.environ.setdefault("REPLY_DELAY_MS", "1")
    sink, port = _sink("bench.delivery.DistantSink")
    try:
        _relay_at(port)
        common.progress("delivery: a distant relay")
        floor, floor_cpu = floor_rate(port, data, messages=DISTANT_MESSAGES)
        rows.append(
            _row(
                f"relay {delay} ms away: its floor (one connection)",
                1,
                DISTANT_MESSAGES,
                floor,
                floor,
                floor_cpu,
            )
        )
        for width in (1, 2, 4):
            settings.DELIVERY_RELAY_CONNECTIONS = width
            rate, cpu = deliver_rate(_queued(signed, DISTANT_MESSAGES))
            rows.append(_row(f"relay {delay} ms away, DKIM on", width, DISTANT_MESSAGES, rate, floor, cpu))
    finally:
        settings.DELIVERY_RELAY_CONNECTIONS = default_width
        sink.terminate()
        sink.wait(timeout=10)
    print("## Delivery (`bench/delivery.py`)\n")
    print(__doc__.split("\n\n", 1)[1])
    print(f"Batches of {DELIVERY_BATCH}; a message as sent is {len(data):,} bytes; the product's default is "
          f"{default_width} relay connections per delivery run.\n")  # fmt: skip
    print(common.table(["case", "relay connections", "messages", "messages/s", "floor (messages/s)", "ratio",
                        "worker CPU per message (ms)", "messages/s that CPU allows", "aim"], rows))  # fmt: skip
    print(common.table(["one DKIM signature", "µs"], costs))
