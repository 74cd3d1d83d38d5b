"""The agency's pages at scale: the subaccount drill-down and the overview over 90 days at 100,000
subaccounts and 1,000,000 messages (queries per page, median server time), the agency's message list
filtered and sorted, and the CSV export of many messages streamed in constant memory (peak RSS).

BENCH_PAGES_SCALE (default 1) scales the agency down for a quick run: 0.01 gives 1,000 subaccounts and
10,000 messages. Server time is the wall time of Django's test Client.get(), as in bench/list_page.py.
"""

from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
import time

from bench import common

SCALE = float(os.environ.get("BENCH_PAGES_SCALE", "1"))
SUBACCOUNTS = max(10, int(100_000 * SCALE))
MESSAGES = max(1_000, int(1_000_000 * SCALE))
DAYS = 90
# BENCH_PAGES_REUSE=1: measure the agency a previous run built (same scale) instead of building it again.
REUSE = os.environ.get("BENCH_PAGES_REUSE") == "1"
SENDERS_PER_HOUR = max(5, SUBACCOUNTS // 100)  # one subaccount in a hundred sends in any given hour


def add_hourly_usage(master) -> int:
    """90 days of hourly Usage rows: each hour, SENDERS_PER_HOUR of the subaccounts (a different spread
    every hour), with sends, deliveries, bounces, complaints and rejections. Generated in SQL."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM accounts_account WHERE parent_id = %s", [master.pk])
        low, high = cursor.fetchone()
        cursor.execute(
            """
            INSERT INTO accounts_usage (account_id, billed_to_id, account_label, "window", start, sent, rejected,
              failed, delivered, hard_bounced, soft_bounced, complained, opens, unique_opens, clicks, unique_clicks,
              unsubs)
            SELECT %(low)s + ((h * 7919 + k * 104729) %% (%(high)s - %(low)s + 1)), %(master)s, '', 'hour',
              date_trunc('hour', now()) - h * interval '1 hour', 20 + (h + k) %% 80, (h * k) %% 3, k %% 2,
              18 + (h + k) %% 70, (h + k) %% 2, k %% 3, (h * k) %% 5 / 4,
              9 + (h + k) %% 30, 6 + (h + k) %% 20, 2 + k %% 7, 1 + k %% 5, (h * k) %% 7 / 6
            FROM generate_series(0, %(hours)s - 1) AS h, generate_series(1, %(per_hour)s) AS k
            ON CONFLICT DO NOTHING
            """,
            {"low": low, "high": high, "master": master.pk, "hours": DAYS * 24, "per_hour": SENDERS_PER_HOUR},
        )
        return cursor.rowcount


def _built_agency():
    """(master, owner) of the agency a previous run built, or None."""
    from accounts.models import Membership

    owner = (
        Membership.objects.filter(account__public_id="bench-agency", role=Membership.Role.OWNER)
        .select_related("account", "user")
        .first()
    )
    return (owner.account, owner.user) if owner else None


def _busiest_subaccount(master) -> int:
    from django.db.models import Count

    from accounts.models import Usage

    return (
        Usage.objects.filter(billed_to=master, window=Usage.Window.HOUR)
        .values("account_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()["account_id"]
    )


def _export_peak(query: str) -> tuple[int, float, float]:
    """Run one CSV export in a fresh process: (rows, seconds, peak RSS in MiB)."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.pages", "export", query],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"PYTHONPATH": os.getcwd()},
    )
    rows, seconds, baseline, peak = result.stdout.split()
    return int(rows), float(seconds), float(peak), float(baseline)


def export_in_this_process(query: str) -> None:
    """`python -m bench.pages export <query>`: log in as the bench master's owner, stream
    /messages/export.csv?<query> to nowhere, print rows, seconds, RSS before and peak RSS (MiB)."""
    common.setup()
    from django.test import Client

    from accounts.models import Membership

    owner = Membership.objects.get(account__public_id="bench-agency", role=Membership.Role.OWNER).user
    client = Client()
    client.force_login(owner)
    client.get("/messages/?page=1")  # everything imported and warmed before the baseline
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    response = client.get(f"/messages/export.csv?{query}")
    rows = sum(chunk.count(b"\n") for chunk in response.streaming_content) - 1
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(rows, f"{seconds:.2f}", f"{baseline:.0f}", f"{peak:.0f}")


def main() -> None:
    from django.test import Client

    from bench import list_page

    if REUSE and _built_agency():
        # Compare two versions of the code on the same rows (seeding 1M messages takes minutes).
        master, owner = _built_agency()
        hourly = master.billed_usage.filter(window="hour").count()
        common.progress(f"pages: reusing the agency already built ({hourly:,} hourly Usage rows)")
    else:
        common.progress(f"pages: resetting the database ({SUBACCOUNTS:,} subaccounts, {MESSAGES:,} messages)")
        common.reset_database()
        master, owner = common.make_master()
        with common.Timer() as t:
            list_page.grow(master, 0, SUBACCOUNTS, random.Random(7))
            hourly = add_hourly_usage(master)
            list_page.add_messages(master, MESSAGES)
            common.analyze()
        common.progress(f"pages: built in {t.seconds:.0f} s ({hourly:,} hourly Usage rows)")
    client = Client()
    client.force_login(owner)
    busy = _busiest_subaccount(master)
    from accounts.models import Account

    busy_id = Account.objects.get(pk=busy).public_id
    cases = [
        ("drill-down", f"/subaccounts/{busy}/"),
        ("drill-down: its messages, keys, domains (htmx)", f"/subaccounts/{busy}/sending/"),
        ("overview, last 90 days", "/overview/?range=90"),
        ("overview, last 7 days", "/overview/?range=7"),
        ("messages, one subaccount", f"/messages/?subaccount={busy_id}"),
        ("messages, failed, sorted by recipient", "/messages/?status=failed&sort=recipient"),
        ("messages, agency-wide (total: about …)", "/messages/"),
    ]
    rows, slow = [], []
    for label, url in cases:
        count, ms, captured = list_page.measure(client, url)
        rows.append([label, count, f"{ms:.1f}"])
        if ms > list_page.SLOW_MS:
            slow.append((label, ms, max(captured, key=lambda q: float(q["time"]))))
    # the CSV of the overview's range, every subaccount that sent in 90 days, streamed
    with common.Timer() as t:
        response = client.get("/overview/subaccounts.csv?range=90")
        csv_rows = sum(chunk.count(b"\n") for chunk in response.streaming_content) - 1
    rows.append(
        [f"overview CSV by subaccount, 90 days ({csv_rows:,} rows, streamed)", "—", f"{t.seconds * 1000:.0f}"]
    )

    exports = []
    for label, query in [
        ("one subaccount", f"subaccount={busy_id}"),
        ("failed only", "status=failed"),
        ("everything", ""),
    ]:
        count, seconds, peak, baseline = _export_peak(query)
        exports.append([label, f"{count:,}", f"{seconds:.1f}", f"{baseline:.0f}", f"{peak:.0f}"])

    print("## The agency's pages (`bench/pages.py`)\n")
    print(
        f"{SUBACCOUNTS:,} subaccounts (as in `bench/list_page.py`), {hourly:,} hourly Usage rows over "
        f"{DAYS} days ({SENDERS_PER_HOUR:,} subaccounts sending in any hour), {MESSAGES:,} messages over 30 days. "
        f"Django test `Client` as the master's owner, DEBUG off, median of {list_page.REQUESTS} requests after "
        "a warm-up; the drill-down is of the subaccount with the most hourly rows.\n"
    )
    print(common.table(["page", "SQL queries", "median server time (ms)"], rows))
    print(
        "CSV export of the agency's messages (`/messages/export.csv`), each in a fresh process: streamed "
        "from a server-side cursor in chunks of 2,000, so the peak memory should not grow with the rows.\n"
    )
    print(common.table(["export", "rows", "seconds", "RSS before (MiB)", "peak RSS (MiB)"], exports))
    for label, ms, query in slow:
        print(f"### Slow: {label} ({ms:.0f} ms median)\n")
        print(f"The slowest query of the request took {float(query['time']) * 1000:.0f} ms:\n")
        print("```sql\n" + query["sql"][:3000] + "\n```\n")
        print("```\n" + list_page.explain(query) + "\n```\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["export"]:
        export_in_this_process(sys.argv[2] if len(sys.argv) > 2 else "")
    else:
        common.setup()
        main()
