"""Deliverability: how fast bounce reports are recorded, what the suppression check costs a send, and
deliveries per second per worker process with DKIM signing on, to a local SMTP sink."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench import common
from bench.smtp import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "mailing" / "fixtures" / "bounces" / "postfix_user_unknown.eml"
BOUNCE_DOMAIN = "bounce.bench.test"
REPORTS = 1_000
SUPPRESSED = 100_000
DELIVERIES = 2_000


def _subaccount(public_id: str):
    from accounts.models import Account

    master, owner = common.make_master(f"{public_id} agency", f"{public_id}-agency")
    sub = Account.objects.create(kind=Account.Kind.SUBACCOUNT, parent=master, public_id=public_id,
                                 name=public_id, contact_email=f"{public_id}@bench.test", monthly_limit=2_000_000_000)  # fmt: skip
    return master, owner, sub


def _messages(sub, n: int, *, from_email: str = "news@shop.example", status: str = "sent") -> list:
    from mailing.models import Message

    rows = [
        Message(
            account=sub,
            from_email=from_email,
            to_email=f"reader{i}@example.com",
            subject="Your receipt",
            status=status,
        )
        for i in range(n)
    ]
    return Message.objects.bulk_create(rows, batch_size=2000)


def bench_reports() -> list:
    """process_report on REPORTS distinct DSNs (a hard bounce each: event, counter, suppression, the
    auto-pause check), one after another in one thread: what one listener worker thread does."""
    from django.conf import settings

    from mailing.deliverability.bounces import Result, process_report, verp_token

    settings.BOUNCE_DOMAIN = BOUNCE_DOMAIN
    _, _, sub = _subaccount("dsn-shop")
    sub.auto_pause_rates = {"hard_bounce": 100.0}  # keep sending; the check itself still runs
    sub.save(update_fields=["auto_pause_rates"])
    template = FIXTURE.read_bytes().replace(b"bounce.example.net", BOUNCE_DOMAIN.encode())
    reports = []
    for message in _messages(sub, REPORTS):
        token = verp_token(message.public_id)
        data = template.replace(b"pf_7Gk2mQx9LrT4", token.encode()).replace(
            b"jane.doe@example.com", message.to_email.encode()
        )
        reports.append((data, f"bounces+{token}@{BOUNCE_DOMAIN}"))
    common.analyze()
    samples, results = [], []
    with common.Timer() as total:
        for data, rcpt in reports:
            started = time.perf_counter()
            results.append(process_report(data, envelope_recipient=rcpt))
            samples.append(time.perf_counter() - started)
    recorded = sum(1 for result in results if result == Result.RECORDED)
    # dropped reports (a forged token) cost only the parse: the database is not touched
    forged = [
        (data.replace(b"bounces+", b"bounces+x"), rcpt.replace("bounces+", "bounces+x"))
        for data, rcpt in reports[:300]
    ]
    with common.Timer() as dropped:
        for data, rcpt in forged:
            process_report(data, envelope_recipient=rcpt)
    return [
        ["hard bounce recorded", recorded, f"{REPORTS / total.seconds:,.0f}", f"{common.median_ms(samples):.1f}",
         f"{common.percentile(samples, 99) * 1000:.1f}"],
        ["forged token, dropped", len(forged), f"{len(forged) / dropped.seconds:,.0f}", "", ""],
    ]  # fmt: skip


def bench_suppression_check() -> list:
    """suppressed_among for one send's recipients, against an account with SUPPRESSED addresses listed
    (and an allowlist): the queries per call and the time."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from mailing.deliverability.suppression import suppressed_among
    from mailing.models import AllowlistEntry, Suppression

    _, _, sub = _subaccount("suppressed-shop")
    Suppression.objects.bulk_create(
        (
            Suppression(account=sub, email=f"gone{i}@example.com", reason="hard-bounce")
            for i in range(SUPPRESSED)
        ),
        batch_size=5000,
    )
    AllowlistEntry.objects.bulk_create(
        AllowlistEntry(account=sub, email=f"vip{i}@example.com") for i in range(100)
    )
    common.analyze()
    rows = []
    for size in (1, 50, 1000):
        emails = [f"{'gone' if i % 2 else 'new'}{i * 97 % SUPPRESSED}@example.com" for i in range(size)]
        suppressed_among(sub, emails)  # warm
        samples = []
        for _ in range(200 if size < 1000 else 50):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                suppressed_among(sub, emails)
                samples.append(time.perf_counter() - started)
        rows.append([size, len(queries.captured_queries), f"{common.median_ms(samples):.2f}",
                     f"{common.percentile(samples, 99) * 1000:.2f}"])  # fmt: skip
    return rows


def bench_delivery() -> list:
    """delivery.deliver over DELIVERIES messages in batches of 100 (what one worker task takes), through
    the SMTP relay backend to an aiosmtpd Sink in its own process, with and without a DKIM key."""
    from django.conf import settings
    from django.utils import timezone

    from mailing import delivery
    from mailing.deliverability import signing
    from mailing.models import SenderDomain

    port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    rows = []
    try:
        wait_for_port(port)
        settings.MAILERS = {**settings.MAILERS, "delivery": {
            "BACKEND": "mailing.relay.RelayEmailBackend", "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 10}}}  # fmt: skip
        for dkim in (False, True):
            _, _, sub = _subaccount(f"deliver-{'dkim' if dkim else 'plain'}")
            if dkim:
                domain = SenderDomain.objects.create(
                    account=sub, domain="shop.example", token="t", verified_at=timezone.now()
                )
                signing.mark_published(signing.generate_key(domain))
            ids = [m.pk for m in _messages(sub, DELIVERIES, status="queued")]
            common.analyze()
            with common.Timer() as total:
                sent = sum(delivery.deliver(ids[i : i + 100]).sent for i in range(0, len(ids), 100))
            rows.append(
                ["on" if dkim else "off", sent, f"{total.seconds:.1f}", f"{sent / total.seconds:,.0f}"]
            )
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    return rows


def main() -> None:
    common.progress("deliverability: resetting the database")
    common.reset_database()
    os.environ.setdefault("BOUNCE_DOMAIN", BOUNCE_DOMAIN)
    print("## Deliverability (`bench/deliverability.py`)\n")
    print(__doc__.split("\n", 1)[0] + "\n")
    common.progress("deliverability: bounce reports")
    print("**Bounce reports** (`process_report`, one thread, one report after another):\n")
    print(common.table(["report", "count", "reports/s", "p50 ms", "p99 ms"], bench_reports()))
    common.progress("deliverability: the suppression check")
    print(
        f"**The suppression check on the accept path** (`suppressed_among`, {SUPPRESSED:,} addresses listed):\n"
    )
    print(
        common.table(
            ["recipients per call", "queries per call", "p50 ms", "p99 ms"], bench_suppression_check()
        )
    )
    common.progress("deliverability: delivery with DKIM")
    print(
        "**Delivery per worker process** (`delivery.deliver`, batches of 100, relay backend to a local sink):\n"
    )
    print(common.table(["DKIM", "messages", "seconds", "messages/s"], bench_delivery()))
