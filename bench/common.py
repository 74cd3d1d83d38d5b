"""Shared set-up: Django against the benchmark database, a clean schema, timing helpers."""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reseller.settings")
os.environ.pop("DJANGO_ENV", None)
os.environ.setdefault("DEBUG", "false")  # production-like rendering; query capture still works
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("API_CALLS_PER_MINUTE", "100000000")

_ready = False


def setup() -> None:
    global _ready
    if not _ready:
        import django

        django.setup()
        _ready = True


def progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def memory_gib() -> float:
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1]) / 1024 / 1024
    except OSError:
        return 0.0


def server_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0]


def reset_database() -> None:
    """Drop every table and migrate from scratch; empty the benchmark's Redis db."""
    from django.core.management import call_command
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    call_command("migrate", verbosity=0, interactive=False)
    prepare_past_partitions()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    purge_redis()


def prepare_past_partitions(months: int = 12) -> None:
    """The monthly partitions a year-old system has (mailing/partitions.py), so rows seeded in the past
    land in their month's partition rather than in the default one."""
    from datetime import timedelta

    from django.utils import timezone

    from mailing import partitions

    partitions.ensure_partitions(now=timezone.now() - timedelta(days=31 * months), months_ahead=months + 3)


def purge_redis() -> None:
    url = os.environ.get("REDIS_URL")
    if url:
        import redis

        redis.Redis.from_url(url).flushdb()


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def make_master(name: str = "Bench Agency", public_id: str = "bench-agency"):
    """A master account and its owner (a real, usable password)."""
    from accounts.models import Account, Membership, User

    master = Account.objects.create(
        kind=Account.Kind.MASTER,
        name=name,
        public_id=public_id,
        contact_email=f"{public_id}@bench.test",
        monthly_limit=2_000_000_000,
        alert_thresholds=[80, 95],
    )
    owner = User.objects.create_user(f"owner-{public_id}@bench.test", "bench-password-123")
    Membership.objects.create(user=owner, account=master, role=Membership.Role.OWNER)
    return master, owner


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


# Every aim the issues set, as each benchmark measured it: `python -m bench` prints them together at the end.
AIMS: list[list[str]] = []


def aim(what: str, measured: str, target: str, met: bool, floor: str = "—") -> None:
    """Record one aim beside what was measured (and its floor, measured in the same run, where it has one)."""
    AIMS.append([what, measured, floor, target, "met" if met else "**not met**"])


def aims_table() -> str:
    return table(["aim", "measured", "floor (same run)", "target", "verdict"], AIMS)


async def exchange(reader, writer, request: bytes) -> tuple[bytes, bytes]:
    """Send one HTTP/1.1 request on a keep-alive connection and read its answer: the status line and the
    body (by Content-Length). The benchmarks' asyncio clients share it."""
    writer.write(request)
    await writer.drain()
    status = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return status, await reader.readexactly(length)
