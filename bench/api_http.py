"""`messages/send` and `messages/send-template` over HTTP: gunicorn (2 gthread workers of 4 threads, the
machine has 2 cores) with PostgreSQL (psycopg's pool, as in production) and Redis, loaded from an
asyncio client on loopback with keep-alive connections. send-template uses a published template with an
mc:edit region, merged per recipient with the recipient's own merge vars. The sending-domain rule is on,
as in production (the From is on the agency's verified domain, shared with its subaccounts). The floor
is bench/accept.py's raw SQL (the reservation and the insert, one transaction a call) for the same
subaccount, the same recipients per call and as many threads as clients, measured in this run just
before the HTTP load."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import common
from bench.smtp import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 8
SECONDS = 5
WARM_UP_SECONDS = 2
# (call, recipients per call, clients); the aims of issue 18 are on `send`
CASES = [
    ("send", 1, 1),
    ("send", 1, 8),
    ("send", 100, 1),
    ("send", 100, 8),
    ("send-template", 1, 8),
    ("send-template", 100, 8),
]
AIM_SHARE_OF_FLOOR = 0.30  # 1 recipient, 8 clients: requests/s at least 30 % of the floor's transactions/s
AIM_P99_MS = 50
AIM_BATCH_RECIPIENTS = 10_000  # 100 recipients a call, 8 clients: recipients/s


async def _client(
    port: int, call: str, body: bytes, deadline: float, latencies: list[float], failures: list[str]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (
        f"POST /api/1.0/messages/{call}.json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    ).encode() + body
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status, payload = await common.exchange(reader, writer, request)
            latencies.append(time.perf_counter() - started)
            if not status.startswith(b"HTTP/1.1 200") or b'"queued"' not in payload:
                failures.append(status.decode().strip() + " " + payload[:200].decode(errors="replace"))
                return
    finally:
        writer.close()


async def _load(
    port: int, call: str, body: bytes, clients: int, seconds: float
) -> tuple[list[float], list[str], float]:
    latencies, failures = [], []
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_client(port, call, body, deadline, latencies, failures) for _ in range(clients)))
    return latencies, failures, time.perf_counter() - started


def _body(key: str, call: str, recipients: int) -> bytes:
    to = [{"email": f"customer{i}@example.test"} for i in range(recipients)]
    if call == "send":
        return json.dumps({"key": key, "message": {
            "from_email": "news@shop.example", "subject": "Your receipt", "text": "Thanks for your order.",
            "subaccount": "api-shop", "to": to,
        }}).encode()  # fmt: skip
    merge_vars = [{"rcpt": r["email"], "vars": [{"name": "FNAME", "content": f"Name {i}"}, {"name": "ORDER", "content": str(i)}]}
                  for i, r in enumerate(to)]  # fmt: skip
    return json.dumps({"key": key, "template_name": "receipt", "template_content": [{"name": "title", "content": "Thanks"}],
                       "message": {"subaccount": "api-shop", "to": to, "merge_vars": merge_vars}}).encode()  # fmt: skip


def _floors(sub) -> dict[tuple[int, int], float]:
    """bench/accept.py's raw-SQL floor, in transactions (calls) per second, for each (recipients, clients)
    of the `send` cases, on the same subaccount."""
    from bench.accept import raw_rate

    floors = {}
    for call, recipients, clients in CASES:
        if call == "send" and (recipients, clients) not in floors:
            calls = max(10, (300 if recipients == 1 else 80) // clients)  # a few seconds each
            floors[(recipients, clients)] = raw_rate([sub], recipients, clients, calls, False) / recipients
            common.progress(
                f"api_http: floor {recipients} rcpt x {clients}: {floors[(recipients, clients)]:,.0f} tx/s"
            )
    return floors


def _recorded(aims: list[list]) -> list[list]:
    """The aims, also kept for the table every benchmark's aims end in (`python -m bench`)."""
    for what, measured, floor, _ratio, met in aims:
        common.aim(f"HTTP {what}", measured, what.rsplit(": ", 1)[-1], met == "yes", floor=floor)
    return aims


def _aims(results: dict, floors: dict) -> list[list]:
    """Each aim of issue 18 beside what this run measured and its floor."""
    one = results[("send", 1, 8)]
    floor = floors[(1, 8)]
    batch_1, batch_8 = results[("send", 100, 1)], results[("send", 100, 8)]
    return [
        ["send, 1 recipient, 8 clients: requests/s ≥ 30 % of the floor", f"{one['rps']:,.0f} req/s",
         f"{floor:,.0f} tx/s (aim {AIM_SHARE_OF_FLOOR * floor:,.0f})", f"{one['rps'] / floor:.2f}",
         "yes" if one["rps"] >= AIM_SHARE_OF_FLOOR * floor else "**no**"],
        ["send, 1 recipient, 8 clients: p99 < 50 ms", f"{one['p99']:.1f} ms", "—", "—",
         "yes" if one["p99"] < AIM_P99_MS else "**no**"],
        ["send, 100 recipients, 8 clients: ≥ 10,000 recipients/s", f"{batch_8['mps']:,.0f} recipients/s",
         f"{floors[(100, 8)] * 100:,.0f} recipients/s", f"{batch_8['mps'] / (floors[(100, 8)] * 100):.2f}",
         "yes" if batch_8["mps"] >= AIM_BATCH_RECIPIENTS else "**no**"],
        ["send, 100 recipients: 8 clients never slower than 1", f"{batch_8['mps']:,.0f} vs {batch_1['mps']:,.0f} recipients/s",
         f"{floors[(100, 8)] * 100:,.0f} vs {floors[(100, 1)] * 100:,.0f} recipients/s", "—",
         "yes" if batch_8["mps"] >= batch_1["mps"] else "**no**"],
    ]  # fmt: skip


def main() -> None:
    from django.utils import timezone

    from accounts.models import Account
    from mailing import templates
    from mailing.keys import create_api_key
    from mailing.models import SenderDomain

    common.progress("api_http: resetting the database")
    common.reset_database()
    master, owner = common.make_master("API Agency", "api-agency")
    shop = Account.objects.create(kind=Account.Kind.SUBACCOUNT, parent=master, public_id="api-shop", name="API Shop",
                                  contact_email="api@bench.test", monthly_limit=2_000_000_000)  # fmt: skip
    _, key = create_api_key(actor=owner, account=master, label="bench")
    templates.add_template(  # the agency's one template, shared with every customer
        actor=owner, account=master, name="Receipt", from_email="news@shop.example", subject="Receipt *|ORDER|*",
        code='<h1 mc:edit="title">Receipt</h1><p>Hello *|FNAME|*, order *|ORDER|*.</p>' + "<p>A line.</p>" * 40,
        publish=True,
    )  # fmt: skip
    templates.share_template(
        actor=owner, master=master, name="receipt", subaccount_ids=[], all_subaccounts=True
    )
    # The sending-domain rule on, as in production: the agency's verified domain, shared with everyone.
    SenderDomain.objects.create(account=master, domain="shop.example", token="bench", verified_at=timezone.now(),
                                share_with_all_subaccounts=True)  # fmt: skip
    common.analyze()
    floors = _floors(shop)
    port = free_port()
    env = {**os.environ, "DEBUG": "false", "REQUIRE_VERIFIED_SENDING_DOMAIN": "true", "LOG_LEVEL": "WARNING",
           "API_CALLS_PER_MINUTE": "100000000", "DATABASE_POOL": "true"}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "reseller.wsgi", "-w", "2", "-k", "gthread", "--threads", "4", "-b", f"127.0.0.1:{port}", "--keep-alive", "30",
         "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    rows, results = [], {}
    try:
        wait_for_port(port)
        for call, recipients, clients in CASES:
            body = _body(key, call, recipients)
            asyncio.run(_load(port, call, body, clients, WARM_UP_SECONDS))  # warm-up: connections, imports
            latencies, failures, seconds = asyncio.run(_load(port, call, body, clients, SECONDS))
            requests = len(latencies)
            result = {"rps": requests / seconds, "mps": requests * recipients / seconds,
                      "p50": common.percentile(latencies, 50) * 1000, "p99": common.percentile(latencies, 99) * 1000}  # fmt: skip
            results[(call, recipients, clients)] = result
            floor = floors.get((recipients, clients)) if call == "send" else None
            rows.append([call, recipients, clients, requests, f"{result['rps']:,.0f}", f"{result['mps']:,.0f}",
                         f"{result['p50']:.1f}", f"{result['p99']:.1f}", len(failures),
                         f"{floor:,.0f}" if floor else "—", f"{result['rps'] / floor:.2f}" if floor else "—"])  # fmt: skip
            common.progress(
                f"api_http: {call}, {recipients} recipients, {clients} clients: {result['rps']:,.0f} req/s"
            )
            if failures:
                common.progress(f"api_http failures: {failures[:2]}")
    finally:
        server.terminate()
        server.wait(timeout=10)
        common.purge_redis()
    print("## HTTP API (`bench/api_http.py`)\n")
    print(__doc__.strip() + f" {SECONDS} s per case after {WARM_UP_SECONDS} s of warm-up; every "
          "accepted message is stored and its delivery enqueued on Redis before the answer.\n")  # fmt: skip
    print(common.table(["call", "recipients per call", "clients", "requests", "requests/s", "messages/s", "p50 (ms)",
                        "p99 (ms)", "failures", "raw SQL floor (tx/s)", "ratio"], rows))  # fmt: skip
    print(
        common.table(
            ["aim (issue 18)", "measured", "floor, same run", "ratio", "met"],
            _recorded(_aims(results, floors)),
        )
    )
