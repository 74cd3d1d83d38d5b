"""The soak: the whole product under steady load for BENCH_SOAK_SECONDS (600 by default). gunicorn (2 gthread
workers of 4 threads) takes `messages/send` (1 recipient) from 8 keep-alive connections, a Celery worker
delivers every message to a local aiosmtpd sink, all against PostgreSQL and Redis on this machine. First
the peak is measured (8 connections as fast as they go, 15 s); then the load is held at 80 % of it, paced
(each request has its time; latency counts from that time, so a stall shows as latency rather than as
fewer requests). Every 10 s the RSS of the web processes and of the worker is sampled. The verdicts: no
errors, memory flat (last minute within 10 % of the second), p99 stable (last minute within 1.5x of the
second), and delivery keeping up (the queue at the end no longer than a minute's worth)."""

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
SOAK_SECONDS = int(os.environ.get("BENCH_SOAK_SECONDS", "600"))
PEAK_SECONDS = 15
CONNECTIONS = 8
LOAD_SHARE = 0.8
SAMPLE_EVERY = 10.0


def _descendants(pid: int) -> list[int]:
    """`pid` and every process under it (gunicorn's and Celery's workers), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += parents.get(current, [])
    return found


def rss_mib(pid: int) -> float:
    total_kib = 0
    for each in _descendants(pid):
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


class Load:
    """8 keep-alive connections sending one prepared request each; `rate` None means as fast as they go."""

    def __init__(self, port: int, body: bytes):
        self.port = port
        self.request = (
            "POST /api/1.0/messages/send.json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
        ).encode() + body
        self.samples: list[tuple[float, float]] = []  # (when answered, latency)
        self.errors: list[tuple[float, str]] = []

    async def _connection(self, index: int, started: float, seconds: float, rate: float | None) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        interval = CONNECTIONS / rate if rate else 0.0
        due = started + index * interval / CONNECTIONS
        try:
            while due < started + seconds:
                if rate:
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                sent_at = due if rate else time.perf_counter()
                try:
                    status, payload = await common.exchange(reader, writer, self.request)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    self.errors.append((time.perf_counter(), repr(exc)))
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    continue
                now = time.perf_counter()
                self.samples.append((now, now - sent_at))
                if not status.startswith(b"HTTP/1.1 200") or b'"queued"' not in payload:
                    self.errors.append(
                        (now, status.decode().strip() + " " + payload[:120].decode(errors="replace"))
                    )
                due = due + interval if rate else now
        finally:
            writer.close()

    async def run(self, seconds: float, rate: float | None = None, on_tick=None) -> float:
        started = time.perf_counter()
        ticker = asyncio.create_task(self._tick(on_tick, started, seconds)) if on_tick else None
        await asyncio.gather(*(self._connection(i, started, seconds, rate) for i in range(CONNECTIONS)))
        if ticker:
            ticker.cancel()
        return started

    @staticmethod
    async def _tick(on_tick, started: float, seconds: float) -> None:
        while time.perf_counter() < started + seconds:
            await asyncio.sleep(SAMPLE_EVERY)
            on_tick(time.perf_counter() - started)


def _setup():
    from accounts.models import Account
    from mailing.keys import create_api_key

    common.reset_database()
    master, owner = common.make_master("Soak Agency", "soak-agency")
    Account.objects.create(kind=Account.Kind.SUBACCOUNT, parent=master, public_id="soak-shop", name="Soak Shop",
                           contact_email="soak@bench.test", monthly_limit=2_000_000_000)  # fmt: skip
    _, key = create_api_key(actor=owner, account=master, label="soak")
    return json.dumps({"key": key, "message": {
        "from_email": "news@shop.example", "subject": "Your receipt", "text": "Thanks for your order.",
        "html": "<p>Thanks for your order.</p>" + "<p>A line of the receipt.</p>" * 20,
        "subaccount": "soak-shop", "to": [{"email": "customer@example.test"}],
    }}).encode()  # fmt: skip


def _message_counts() -> dict[str, int]:
    from django.db import connection
    from django.db.models import Count

    from mailing.models import Message

    connection.close()  # a fresh read, not a transaction's snapshot
    return dict(Message.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))


def _processes(smtp_port: int, web_port: int) -> dict[str, subprocess.Popen]:
    env = {
        **os.environ,
        "DEBUG": "false",
        "REQUIRE_VERIFIED_SENDING_DOMAIN": "false",
        "LOG_LEVEL": "WARNING",
        "API_CALLS_PER_MINUTE": "100000000",
        "CONN_MAX_AGE": "600",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "SMTP_RELAY_URL": f"smtp://127.0.0.1:{smtp_port}",
    }
    quiet = {"cwd": ROOT, "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    sink = ["-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{smtp_port}"]
    web = ["-m", "gunicorn", "reseller.wsgi", "-w", "2", "-k", "gthread", "--threads", "4", "--keep-alive", "30",
           "--log-level", "warning", "-b"]  # fmt: skip
    worker = "-m celery -A reseller worker -c 2 --loglevel warning --without-heartbeat --without-mingle"
    return {
        "sink": subprocess.Popen([sys.executable, *sink], **quiet),
        "web": subprocess.Popen([sys.executable, *web, f"127.0.0.1:{web_port}"], **quiet),
        "worker": subprocess.Popen([sys.executable, *worker.split(), "--without-gossip"], **quiet),
    }


def _windows(load: Load, started: float, rss: list[tuple[float, float, float]]) -> list[list]:
    """One row a minute: requests, errors, p50, p99, web and worker RSS at its end."""
    rows = []
    for minute in range(max(1, int(SOAK_SECONDS // 60))):
        low, high = started + minute * 60, started + (minute + 1) * 60
        latencies = [latency for when, latency in load.samples if low <= when < high]
        errors = sum(1 for when, _ in load.errors if low <= when < high)
        memory = [sample for sample in rss if minute * 60 <= sample[0] < (minute + 1) * 60] or rss[-1:]
        rows.append([
            minute + 1, len(latencies), errors,
            f"{common.percentile(latencies, 50) * 1000:.1f}" if latencies else "—",
            f"{common.percentile(latencies, 99) * 1000:.1f}" if latencies else "—",
            f"{memory[-1][1]:.0f}" if memory else "—", f"{memory[-1][2]:.0f}" if memory else "—",
        ])  # fmt: skip
    return rows


def main() -> None:
    common.progress("soak: resetting the database")
    body = _setup()
    smtp_port, web_port = free_port(), free_port()
    procs = _processes(smtp_port, web_port)
    try:
        wait_for_port(smtp_port)
        wait_for_port(web_port)
        asyncio.run(Load(web_port, body).run(5))  # warm-up: connections, imports
        peak = Load(web_port, body)
        asyncio.run(peak.run(PEAK_SECONDS))
        peak_rate = len(peak.samples) / PEAK_SECONDS
        rate = LOAD_SHARE * peak_rate
        common.progress(f"soak: peak {peak_rate:.0f} req/s; holding {rate:.0f} req/s for {SOAK_SECONDS} s")
        time.sleep(20)  # let delivery drain the peak's backlog before the clock starts
        sent_before = _message_counts().get("sent", 0)
        rss: list[tuple[float, float, float]] = []

        def sample(elapsed: float) -> None:
            rss.append((elapsed, rss_mib(procs["web"].pid), rss_mib(procs["worker"].pid)))

        soak = Load(web_port, body)
        started = asyncio.run(soak.run(SOAK_SECONDS, rate=rate, on_tick=sample))
        counts = _message_counts()
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(timeout=20)
        common.purge_redis()
    rows = _windows(soak, started, rss)
    _report(peak_rate, rate, soak, rows, counts, sent_before)


def _report(peak_rate, rate, soak: Load, rows: list[list], counts: dict[str, int], sent_before: int) -> None:
    achieved = len(soak.samples) / SOAK_SECONDS
    second, last = rows[min(1, len(rows) - 1)], rows[-1]
    web_growth = float(last[5]) / float(second[5]) - 1 if second[5] != "—" else 0.0
    worker_growth = float(last[6]) / float(second[6]) - 1 if second[6] != "—" else 0.0
    p99_ratio = float(last[4]) / float(second[4]) if second[4] != "—" else 0.0
    delivered = counts.get("sent", 0) - sent_before
    backlog = counts.get("queued", 0)
    print("## Soak (`bench/soak.py`)\n")
    print(__doc__.strip() + "\n")
    print(
        common.table(
            ["minute", "requests", "errors", "p50 (ms)", "p99 (ms)", "web RSS (MiB)", "worker RSS (MiB)"],
            rows,
        )
    )
    print(common.table(["figure", "measured", "aim"], [
        ["peak (8 connections, closed loop)", f"{peak_rate:,.0f} req/s", "—"],
        ["held load", f"{achieved:,.1f} req/s", f"{rate:,.1f} req/s (80 % of peak)"],
        ["errors", len(soak.errors), "0"],
        ["web RSS, last minute against the second", f"{web_growth:+.1%}", "within ±10 %"],
        ["worker RSS, last minute against the second", f"{worker_growth:+.1%}", "within ±10 %"],
        ["p99, last minute against the second", f"{p99_ratio:.2f}x", "≤ 1.5x"],
        ["delivered during the soak", f"{delivered:,}", f"≈ {achieved * SOAK_SECONDS:,.0f} accepted"],
        ["still queued at the end", f"{backlog:,}", f"≤ {rate * 60:,.0f} (a minute's worth)"],
    ]))  # fmt: skip
    common.aim("soak: errors in 10 minutes at 80 % of peak", str(len(soak.errors)), "0", not soak.errors)
    common.aim("soak: memory flat (web, worker)", f"{web_growth:+.1%}, {worker_growth:+.1%}", "within ±10 %",
               abs(web_growth) <= 0.1 and abs(worker_growth) <= 0.1)  # fmt: skip
    common.aim("soak: p99 stable", f"{p99_ratio:.2f}x", "≤ 1.5x", p99_ratio <= 1.5)
    if soak.errors:
        print(f"First errors: {[error for _, error in soak.errors[:3]]}\n")
