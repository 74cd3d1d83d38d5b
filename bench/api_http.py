"""`messages/send` and `messages/send-template` over HTTP: gunicorn (2 gthread workers of 4 threads, the
machine has 2 cores) with PostgreSQL and Redis, loaded from an asyncio client on loopback with keep-alive
connections. send-template uses a published template with an mc:edit region, merged per recipient with
the recipient's own merge vars."""

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
SECONDS = 10


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
            writer.write(request)
            await writer.drain()
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            payload = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not status.startswith(b"HTTP/1.1 200") or b'"queued"' not in payload:
                failures.append(status.decode().strip() + " " + payload[:200].decode(errors="replace"))
                return
    finally:
        writer.close()


async def _load(port: int, call: str, body: bytes) -> tuple[list[float], list[str], float]:
    latencies, failures = [], []
    started = time.perf_counter()
    deadline = started + SECONDS
    await asyncio.gather(
        *(_client(port, call, body, deadline, latencies, failures) for _ in range(CONNECTIONS))
    )
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


def main() -> None:
    from accounts.models import Account
    from mailing import templates
    from mailing.keys import create_api_key

    common.progress("api_http: resetting the database")
    common.reset_database()
    master, owner = common.make_master("API Agency", "api-agency")
    Account.objects.create(kind=Account.Kind.SUBACCOUNT, parent=master, public_id="api-shop", name="API Shop",
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
    port = free_port()
    env = {**os.environ, "DEBUG": "false", "REQUIRE_VERIFIED_SENDING_DOMAIN": "false", "LOG_LEVEL": "WARNING",
           "API_CALLS_PER_MINUTE": "100000000", "CONN_MAX_AGE": "600"}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "reseller.wsgi", "-w", "2", "-k", "gthread", "--threads", "4", "-b", f"127.0.0.1:{port}", "--keep-alive", "30",
         "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    rows = []
    try:
        wait_for_port(port)
        for call, recipients in (("send", 1), ("send", 100), ("send-template", 1), ("send-template", 100)):
            body = _body(key, call, recipients)
            asyncio.run(_load(port, call, body))  # warm-up: connections, imports
            latencies, failures, seconds = asyncio.run(_load(port, call, body))
            requests = len(latencies)
            rows.append([call, recipients, requests, f"{requests / seconds:,.0f}", f"{requests * recipients / seconds:,.0f}",
                         f"{common.percentile(latencies, 50) * 1000:.1f}", f"{common.percentile(latencies, 99) * 1000:.1f}",
                         len(failures)])  # fmt: skip
            common.progress(f"api_http: {call}, {recipients} recipients: {requests / seconds:,.0f} req/s")
            if failures:
                common.progress(f"api_http failures: {failures[:2]}")
    finally:
        server.terminate()
        server.wait(timeout=10)
        common.purge_redis()
    print("## HTTP API (`bench/api_http.py`)\n")
    print(__doc__.split("\n", 1)[1].strip() + f" {CONNECTIONS} connections for {SECONDS} s per case; every "
          "accepted message is stored and its delivery enqueued on Redis before the answer.\n")  # fmt: skip
    print(common.table(["call", "recipients per call", "requests", "requests/s", "messages/s", "p50 (ms)", "p99 (ms)",
                        "failures"], rows))  # fmt: skip
