"""The master's pages at 10, 1,000 and 100,000 subaccounts: queries per page and median server time.

Rendered in-process through Django's test Client, logged in as the master's owner, with DEBUG off.
"Server time" is the wall time of Client.get(): middleware, view, queries and template rendering.
"""

from __future__ import annotations

import random
from datetime import timedelta

from bench import common

SIZES = [10, 1_000, 100_000]
REQUESTS = 20
SLOW_MS = 100.0
LIST_CASES = [
    ("list", "/subaccounts/"),
    ("search `?q=00001`", "/subaccounts/?q=00001"),
    ("sort `?sort=-usage`", "/subaccounts/?sort=-usage"),
]
BIG_CASES = [("overview", "/overview/"), ("billing", "/billing/")]
MESSAGE_CASES = [
    ("messages (agency-wide)", "/messages/"),
    ("messages, one recipient", "/messages/?recipient=r123456@"),
]
MESSAGES = 1_000_000


def add_messages(master, count: int) -> None:
    """`count` messages spread over the master's subaccounts and the last 30 days, generated in SQL."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM accounts_account WHERE parent_id = %s", [master.pk])
        low, high = cursor.fetchone()
        cursor.execute(
            """
            INSERT INTO mailing_message (account_id, public_id, from_email, from_name, to_email, to_name, to_type,
              subject, tags, metadata, status, reject_reason, queued_reason,
              archive, attempts, created_at, next_attempt_at, last_error, bcc_address, important, shown_cc, shown_to,
              template, track_opens, track_clicks, url_strip_qs, tracked_links, opens, clicks)
            SELECT %s + (n %% (%s - %s + 1)), md5(n::text), 'news@shop.example', '', 'r' || n || '@example.test', '',
              'to', 'Receipt ' || n, '["receipt"]', '{}',
              (ARRAY['sent','sent','sent','sent','queued','failed'])[1 + n %% 6], '', '', false, 1,
              now() - (n || ' seconds')::interval * 2.5, now(), '', '', false, '[]', '[]', '',
              false, false, false, '[]', 0, 0
            FROM generate_series(1, %s) AS n
            """,
            [low, high, low, count],
        )


def grow(master, start: int, stop: int, rng: random.Random) -> None:
    """Subaccounts start..stop-1, each with an owner (half accepted, half with a pending invite), this
    month's Usage row, two earlier months' rows, this hour's row for one in ten, an audit event each and
    a limit alert for the few near their limit: what a real agency of that size has."""
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts.models import Account, AuditEvent, Invitation, LimitAlert, Membership, Usage, User
    from accounts.quota import hour_start, month_start

    now = timezone.now()
    this_month = month_start(now)
    earlier = [month_start(this_month - timedelta(days=1))]
    earlier.append(month_start(earlier[0] - timedelta(days=1)))
    password = make_password("bench-password-123")
    chunk = 5_000
    for low in range(start, stop, chunk):
        high = min(low + chunk, stop)
        subs = Account.objects.bulk_create(
            [
                Account(
                    kind=Account.Kind.SUBACCOUNT,
                    parent=master,
                    status=rng.choices(["active", "paused", "closed"], [90, 7, 3])[0],
                    public_id=f"customer-{i:06d}",
                    name=f"Customer {i:06d}",
                    contact_email=f"customer{i:06d}@example.test",
                    monthly_limit=rng.choice([1_000, 10_000, 50_000, 100_000]),
                    hourly_limit=rng.choice([None, None, 500]),
                )
                for i in range(low, high)
            ]
        )
        users = User.objects.bulk_create(
            [
                User(email=sub.contact_email, password=password if i % 2 == 0 else "!unusable")
                for i, sub in enumerate(subs)
            ]
        )
        Membership.objects.bulk_create(
            [
                Membership(user=u, account=s, role=Membership.Role.OWNER)
                for u, s in zip(users, subs, strict=True)
            ]
        )
        Invitation.objects.bulk_create(
            [
                Invitation(
                    account=s,
                    user=u,
                    email=u.email,
                    token_hash=f"{s.pk:064d}",
                    expires_at=now + timedelta(hours=rng.choice([-48, 12])),
                )
                for u, s in zip(users, subs, strict=True)
                if not u.has_usable_password()
            ]
        )
        usage, alerts = [], []
        for sub in subs:
            sent = int(sub.monthly_limit * rng.random() ** 2)
            usage.append(
                Usage(account=sub, billed_to=master, account_label=str(sub), window="month",
                      start=this_month, sent=sent)
            )  # fmt: skip
            for start_at in earlier:
                usage.append(
                    Usage(account=sub, billed_to=master, account_label=str(sub), window="month",
                          start=start_at, sent=rng.randrange(sub.monthly_limit))
                )  # fmt: skip
            if rng.random() < 0.1:
                usage.append(
                    Usage(account=sub, billed_to=master, account_label=str(sub), window="hour",
                          start=hour_start(now), sent=rng.randrange(100))
                )  # fmt: skip
            if sent * 100 >= 80 * sub.monthly_limit:
                alerts.append(
                    LimitAlert(account=sub, month=this_month.date(), threshold=80, usage_at_alert=sent,
                               limit_at_alert=sub.monthly_limit)
                )  # fmt: skip
        Usage.objects.bulk_create(usage, batch_size=5_000)
        LimitAlert.objects.bulk_create(alerts)
        AuditEvent.objects.bulk_create(
            [
                AuditEvent(account=s, master=master, account_label=str(s), action="subaccount.created",
                           actor_label=f"owner-{master.public_id}@bench.test",
                           created_at=now - timedelta(minutes=stop - i))
                for i, s in enumerate(subs, start=low)
            ]
        )  # fmt: skip
    common.analyze()


def measure(client, url: str) -> tuple[int, float, list[dict]]:
    """(queries, median ms, the captured queries of the last request)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url)  # warm-up
    assert response.status_code == 200, (url, response.status_code)
    times, counts = [], set()
    for _ in range(REQUESTS):
        with CaptureQueriesContext(connection) as captured, common.Timer() as t:
            response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        times.append(t.seconds)
        counts.add(len(captured.captured_queries))
    assert len(counts) == 1, f"{url}: the query count varied between identical requests: {counts}"
    return counts.pop(), common.median_ms(times), list(captured.captured_queries)


def explain(query: dict) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
        return "\n".join(row[0] for row in cursor.fetchall())


def main() -> None:
    from django.test import Client

    common.progress("list_page: resetting the database")
    common.reset_database()
    rng = random.Random(42)
    master, owner = common.make_master()
    client = Client()
    client.force_login(owner)

    rows, slow = [], []
    queries_by_case: dict[str, set[int]] = {}
    built = 0
    for size in SIZES:
        with common.Timer() as t:
            grow(master, built, size, rng)
        common.progress(f"list_page: {size} subaccounts built (+{size - built} in {t.seconds:.0f} s)")
        built = size
        cases = LIST_CASES + (BIG_CASES if size == SIZES[-1] else [])
        for label, url in cases:
            count, ms, captured = measure(client, url)
            queries_by_case.setdefault(label, set()).add(count)
            rows.append([f"{size:,}", label, count, f"{ms:.1f}"])
            if ms > SLOW_MS:
                main_query = max(captured, key=lambda q: float(q["time"]))
                slow.append((size, label, ms, main_query))

    with common.Timer() as t:
        add_messages(master, MESSAGES)
        common.analyze()
    common.progress(f"list_page: {MESSAGES:,} messages added in {t.seconds:.0f} s")
    # a subaccount owner's own message list, at the same size
    from accounts.models import Membership

    sub_owner = (
        Membership.objects.filter(account__parent=master, user__password__startswith="pbkdf2").first().user
    )
    sub_client = Client()
    sub_client.force_login(sub_owner)
    for label, url in [*MESSAGE_CASES, ("overview", "/overview/"), ("billing", "/billing/")]:
        count, ms, captured = measure(client, url)
        rows.append([f"{SIZES[-1]:,} + {MESSAGES:,} messages", label, count, f"{ms:.1f}"])
        if ms > SLOW_MS:
            slow.append((SIZES[-1], label, ms, max(captured, key=lambda q: float(q["time"]))))
    count, ms, _ = measure(sub_client, "/messages/")
    rows.append([f"{SIZES[-1]:,} + {MESSAGES:,} messages", "a subaccount's own messages", count, f"{ms:.1f}"])
    count, ms, _ = measure(sub_client, "/dashboard/")
    rows.append([f"{SIZES[-1]:,} + {MESSAGES:,} messages", "a subaccount's dashboard", count, f"{ms:.1f}"])

    print("## Master pages (`bench/list_page.py`)\n")
    print(
        f"Django test `Client`, logged in as the master's owner, DEBUG off; median of {REQUESTS} requests "
        "after one warm-up. Each subaccount has an owner (half with a pending or expired invitation), "
        "this month's and two earlier months' Usage rows, an hourly row for one in ten, an audit event, "
        "and a limit alert when it is past 80 %.\n"
    )
    print(common.table(["subaccounts", "page", "SQL queries", "median server time (ms)"], rows))
    uneven = {label: counts for label, counts in queries_by_case.items() if len(counts) > 1}
    if uneven:
        print(f"**Query count differs with size:** {uneven}\n")
    else:
        print("Query counts are the same at every size for every list case.\n")
    for size, label, ms, query in slow:
        print(f"### Slow: {label} at {size:,} subaccounts ({ms:.0f} ms median)\n")
        print(f"The slowest query of the request took {float(query['time']) * 1000:.0f} ms:\n")
        print("```sql\n" + query["sql"][:3000] + "\n```\n")
        print("```\n" + explain(query) + "\n```\n")
