"""The tracking endpoints a recipient's mail client calls: the open pixel (`/t/o/…`) and a tracked link
(`/t/c/…`), under gunicorn (`reseller/gunicorn.py`'s settings: 2 gthread workers of 4 threads) with
PostgreSQL, loaded from an asyncio client on loopback with keep-alive connections. Each request checks the
signed token, records an event, bumps the message's and the account's counters and answers (the GIF, or a
302 to the message's own link); the requests spread over many messages, so most are a message's first
open or click (the costlier path: a unique counted as well)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import common
from bench.smtp import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 8
SECONDS = 10
MESSAGES = 5000
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


async def _client(
    port: int, paths: list[str], expect: bytes, deadline: float, latencies: list[float], failures: list[str]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    try:
        while time.perf_counter() < deadline:
            path = paths[n % len(paths)]
            n += 1
            request = (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {BROWSER}\r\nConnection: keep-alive\r\n\r\n"
            ).encode()
            started = time.perf_counter()
            status, _ = await common.exchange(reader, writer, request)
            latencies.append(time.perf_counter() - started)
            if not status.startswith(expect):
                failures.append(status.decode().strip())
                return
    finally:
        writer.close()


async def _load(port: int, paths: list[str], expect: bytes) -> tuple[list[float], list[str], float]:
    latencies, failures = [], []
    started = time.perf_counter()
    deadline = started + SECONDS
    share = len(paths) // CONNECTIONS
    await asyncio.gather(
        *(
            _client(port, paths[i * share : (i + 1) * share], expect, deadline, latencies, failures)
            for i in range(CONNECTIONS)
        )
    )
    return latencies, failures, time.perf_counter() - started


def _messages(account) -> list[str]:
    from mailing.models import Message

    rows = Message.objects.bulk_create(
        Message(
            account=account,
            from_email="news@shop.example",
            to_email=f"reader{i}@example.test",
            subject="News",
            status=Message.Status.SENT,
            track_opens=True,
            track_clicks=True,
            tracked_links=["https://shop.example/offer?id=1", "https://shop.example/faq"],
        )
        for i in range(MESSAGES)
    )
    return [row.public_id for row in rows]


def main() -> None:
    from urllib.parse import urlsplit

    from accounts.models import Account
    from mailing.tracking import tokens

    common.progress("tracking: resetting the database")
    common.reset_database()
    master, _ = common.make_master("Tracking Agency", "tracking-agency")
    shop = Account.objects.create(kind=Account.Kind.SUBACCOUNT, parent=master, public_id="tracking-shop",
                                  name="Tracking Shop", contact_email="t@bench.test", monthly_limit=2_000_000_000)  # fmt: skip
    ids = _messages(shop)
    common.analyze()
    cases = [
        ("open pixel", [urlsplit(tokens.open_url(i)).path for i in ids], b"HTTP/1.1 200"),
        ("click", [urlsplit(tokens.click_url(i, 0)).path for i in ids], b"HTTP/1.1 302"),
    ]
    port = free_port()
    env = {**os.environ, "DEBUG": "false", "LOG_LEVEL": "WARNING", "CONN_MAX_AGE": "600",
           "GUNICORN_BIND": f"127.0.0.1:{port}"}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:reseller.gunicorn", "reseller.wsgi", "--log-level", "warning",
         "--access-logfile", "/dev/null"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    rows = []
    try:
        wait_for_port(port)
        for name, paths, expect in cases:
            asyncio.run(_load(port, paths[:200], expect))  # warm-up: connections, imports
            latencies, failures, seconds = asyncio.run(_load(port, paths, expect))
            requests = len(latencies)
            rows.append([name, requests, f"{requests / seconds:,.0f}", f"{common.percentile(latencies, 50) * 1000:.1f}",
                         f"{common.percentile(latencies, 99) * 1000:.1f}", len(failures)])  # fmt: skip
            common.progress(f"tracking: {name}: {requests / seconds:,.0f} req/s")
            if failures:
                common.progress(f"tracking failures: {failures[:2]}")
    finally:
        server.terminate()
        server.wait(timeout=10)
        common.purge_redis()
    print("## Tracking endpoints (`bench/tracking.py`)\n")
    print(
        __doc__.strip()
        + f" {CONNECTIONS} connections for {SECONDS} s per case, over {MESSAGES:,} messages.\n"
    )
    print(common.table(["request", "requests", "requests/s", "p50 (ms)", "p99 (ms)", "failures"], rows))
