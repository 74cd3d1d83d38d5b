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


def _vacuum() -> None:
    """VACUUM ANALYZE, as autovacuum would have done on a live database long before anyone looked: rows
    written a moment ago are not yet marked all-visible, so index-only scans would still read the table."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def _fold_state(master) -> str:
    """How much of today the overview still reads from hours: those since the hourly fold, if any."""
    try:
        from accounts import rollup
    except ImportError:
        return ""
    reach = rollup.trailing_for(rollup.today_utc())
    if reach is None or not hasattr(reach, "hours_until"):
        return ""
    recent = master.billed_usage.filter(window="hour", start__gte=reach.hours_until).count()
    return (
        f"; today's hours up to {reach.hours_until:%H:%M} UTC folded in, so {recent:,} hourly rows since are read"
        " from the hours (at most an hour and FOLD_GRACE's worth in production)"
    )


def _roll_up() -> tuple[int, float] | None:
    """Run the daily rollup as beat would (None where this version of the code has none)."""
    try:
        from accounts import rollup
    except ImportError:
        return None
    with common.Timer() as t:
        days = rollup.roll_up_closed_days()
    _vacuum()
    return days, t.seconds


def _custom_90_days() -> str:
    from datetime import timedelta

    from django.utils import timezone

    today = timezone.now().astimezone(timezone.UTC).date()
    return f"range=custom&date_from={today - timedelta(days=89)}&date_to={today}"


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
    """`python -m bench.pages export <query>`: iterate the row generator the messages CSV uses
    (`mailing.selectors.messages_csv`, whatever edge serves it: the view today, a background job
    tomorrow) for the bench master with the filters of `query`, into a null sink; print rows, seconds,
    RSS before and peak RSS (MiB)."""
    common.setup()
    from django.http import QueryDict

    from accounts.models import Account
    from mailing import selectors

    master = Account.objects.get(public_id="bench-agency")
    filters = selectors.MessageFilters.from_query(QueryDict(query))
    list(selectors.messages_for(master, filters)[:10])  # everything imported and warmed before the baseline
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    lines = 0
    with open(os.devnull, "w") as sink:
        for line in selectors.messages_csv(master, filters):
            sink.write(line)
            lines += 1
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(lines - 1, f"{seconds:.2f}", f"{baseline:.0f}", f"{peak:.0f}")


def main() -> None:
    from django.test import Client

    from bench import list_page

    if REUSE and _built_agency():
        # Compare two versions of the code on the same rows (seeding 1M messages takes minutes).
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)  # this version's schema over the same rows
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
            _vacuum()
        common.progress(f"pages: built in {t.seconds:.0f} s ({hourly:,} hourly Usage rows)")
    client = Client()
    client.force_login(owner)
    busy = _busiest_subaccount(master)
    from accounts.models import Account

    busy_id = Account.objects.get(pk=busy).public_id
    rolled_up = _roll_up()
    # (label, url, aim in ms: issue 17's 150 ms for its pages, issue 18's for the overview, the sort and
    # the recipient search; None: measured, no aim)
    cases = [
        ("floor: a page of the same layout reading almost nothing (alert settings)", "/alerts/", None),
        ("drill-down", f"/subaccounts/{busy}/", 150),
        ("drill-down: its messages, keys, domains (htmx)", f"/subaccounts/{busy}/sending/", 150),
        ("overview, last 90 days", "/overview/?range=90", 100),
        ("overview, last 30 days", "/overview/?range=30", 100),
        ("overview, last 7 days", "/overview/?range=7", 100),
        ("overview, a custom 90 days (read from hours)", f"/overview/?{_custom_90_days()}", None),
        ("subaccounts sorted by this month's usage", "/subaccounts/?sort=-usage", 100),
        ("messages, one recipient (search)", "/messages/?recipient=r123456@", 50),
        ("messages, one subaccount", f"/messages/?subaccount={busy_id}", None),
        ("messages, failed, sorted by recipient", "/messages/?status=failed&sort=recipient", None),
        ("messages, agency-wide (total: about …)", "/messages/", None),
    ]
    rows, slow = [], []
    floor_ms = None
    for label, url, aim in cases:
        count, ms, captured = list_page.measure(client, url)
        floor_ms = floor_ms or ms
        verdict = "—" if aim is None else ("met" if ms < aim else "**not met**")
        if aim is not None:
            common.aim(f"page: {label}", f"{ms:.1f} ms ({count} queries)", f"< {aim} ms", ms < aim,
                       floor=f"{floor_ms:.1f} ms (a near-empty page)")  # fmt: skip
        rows.append(
            [label, count, f"{ms:.1f}", f"{ms / floor_ms:.1f}", "—" if aim is None else f"< {aim}", verdict]
        )
        if ms > list_page.SLOW_MS:
            slow.append((label, ms, max(captured, key=lambda q: float(q["time"]))))
    # the CSV of the overview's range, every subaccount that sent in 90 days, streamed
    with common.Timer() as t:
        response = client.get("/overview/subaccounts.csv?range=90")
        csv_rows = sum(chunk.count(b"\n") for chunk in response.streaming_content) - 1
    rows.append(
        [f"overview CSV by subaccount, 90 days ({csv_rows:,} rows, streamed)", "—", f"{t.seconds * 1000:.0f}",
         f"{t.seconds * 1000 / floor_ms:.0f}", "—", "—"]
    )  # fmt: skip

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
    if rolled_up is not None:
        print(
            f"The daily rollup (`accounts.tasks.roll_up_usage`, as beat runs it) was run first: "
            f"{rolled_up[0]} closed days rolled up and the 7/30/90-day trailing figures built in {rolled_up[1]:.1f} s"
            f"{_fold_state(master)}.\n"
        )
    print(
        common.table(["page", "SQL queries", "median server time (ms)", "× floor", "aim (ms)", "aim"], rows)
    )
    print(
        "CSV export of the agency's messages: the row generator of `/messages/export.csv` "
        "(`mailing.selectors.messages_csv`) iterated into a null sink, each in a fresh process; it reads "
        "a server-side cursor in chunks of 2,000, so the peak memory should not grow with the rows "
        "(compare the peak of 10 rows with that of 1,000,000).\n"
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
