"""The accept path in-process against its raw-SQL floor, and one worker's delivery rate.

(1) `mailing.sending.accept_messages` (quota reservation, the body stored once and one Message per
recipient, the alert check after commit; the enqueue is patched out so the broker is not measured), single
recipients and batches of 100, 1 and 8 threads, on one hot subaccount and spread over 1,000. (2) The same
statements as raw SQL (two conditional upserts of the usage windows, the body's insert-or-find, one INSERT of
the recipients' rows from arrays) in one transaction per call: the floor.
(3) `mailing.delivery.deliver` in batches of 50 to a local aiosmtpd sink: one worker process's rate.
Each accept figure is printed beside its floor from the same run and the aim (issue 18: at least half
the floor, on one subaccount and spread over 1,000).
"""

from __future__ import annotations

import threading
import time
import uuid
from unittest import mock

from bench import common

SCENARIOS = [  # (recipients per call, threads, calls per thread, spread over 1,000 subaccounts)
    (1, 1, 600, False),
    (1, 8, 100, False),
    (1, 8, 100, True),
    (100, 1, 30, False),
    (100, 8, 8, False),
    (100, 8, 8, True),
]
AIM = 0.50  # issue 18: the in-process accept path at half its raw-SQL floor or better, hot or spread


def _accounts():
    from accounts.models import Account

    master, _ = common.make_master("Accept Agency", "accept-agency")
    subs = Account.objects.bulk_create(
        Account(
            kind=Account.Kind.SUBACCOUNT,
            parent=master,
            public_id=f"sender-{i:04d}",
            name=f"Sender {i:04d}",
            contact_email=f"sender{i}@bench.test",
            monthly_limit=2_000_000_000,
        )
        for i in range(1000)
    )
    return subs


def _message(n: int):
    from mailing.sending import OutgoingMessage, Recipient

    return OutgoingMessage(
        from_email="news@sender.example", subject="Your receipt", text="Thanks for your order.",
        html="<p>Thanks for your order.</p>", tags=["receipt"],
        recipients=[Recipient(email=f"customer{i}@example.test") for i in range(n)],
    )  # fmt: skip


def _run_threads(threads: int, work) -> float:
    from django.db import connection

    barrier = threading.Barrier(threads + 1)

    def runner(index: int):
        try:
            barrier.wait()
            work(index)
        finally:
            connection.close()

    workers = [threading.Thread(target=runner, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    return time.perf_counter() - started


def accept_rate(subs, recipients: int, threads: int, calls: int, spread: bool) -> float:
    from mailing.sending import accept_messages

    message = _message(recipients)

    def work(index: int):
        for call in range(calls):
            account = subs[(index * calls + call) % len(subs)] if spread else subs[0]
            results = accept_messages(account=account, message=message)
            assert results[0].status == "queued", results[0]

    seconds = _run_threads(threads, work)
    return threads * calls * recipients / seconds


RAW_CONTENT = """
WITH created AS ({insert} ON CONFLICT (account_id, digest) DO NOTHING RETURNING id),
existing AS (SELECT id FROM mailing_messagecontent WHERE account_id = %s AND digest = %s FOR KEY SHARE)
SELECT id FROM created UNION ALL SELECT id FROM existing"""


class RawInsert:
    """An INSERT of every column Django writes for `model`, so the floor writes the same rows as the
    product and never drifts from the schema: the named columns take given values, the rest their
    defaults, prepared for the database once."""

    def __init__(self, model, named: tuple[str, ...]) -> None:
        from django.db import connection

        self.named = named
        self.columns, self.defaults = [], []
        for field in model._meta.concrete_fields:
            if field.primary_key:
                continue
            self.columns.append(field.attname)
            default = (
                None if field.attname in named else field.get_db_prep_save(field.get_default(), connection)
            )
            self.defaults.append(default)
        quoted = ", ".join(connection.ops.quote_name(model._meta.get_field(c).column) for c in self.columns)
        self.head = f"INSERT INTO {model._meta.db_table} ({quoted}) VALUES "
        self.row = "(" + ", ".join(["%s"] * len(self.columns)) + ")"

    def sql(self, rows: list[dict]) -> tuple[str, list]:
        params = []
        for values in rows:
            params += [
                values[c] if c in self.named else d for c, d in zip(self.columns, self.defaults, strict=True)
            ]
        return self.head + ", ".join([self.row] * len(rows)), params


class RawUnnest(RawInsert):
    """The same rows as one INSERT … SELECT FROM unnest: the `varying` columns as one array each, the
    others one value for every row (the product's form, mailing/bulk.py), the statement built once."""

    def __init__(self, model, named: tuple[str, ...], varying: tuple[str, ...]) -> None:
        from django.db import connection

        super().__init__(model, named)
        self.varying = varying
        types = {f.attname: f.db_type(connection).split("(")[0] for f in model._meta.concrete_fields}
        select = [f"u.{c}" if c in varying else f"%s::{types[c]}" for c in self.columns]
        arrays = ", ".join(f"%s::{types[c]}[]" for c in varying)
        self.statement = (
            self.head.replace(" VALUES ", " ")
            + f"SELECT {', '.join(select)} FROM unnest({arrays}) AS u({', '.join(varying)}) RETURNING id"
        )

    def params(self, shared: dict, each: dict[str, list]) -> list:
        named = [
            shared[c] if c in self.named else d
            for c, d in zip(self.columns, self.defaults, strict=True)
            if c not in self.varying
        ]
        return named + [each[c] for c in self.varying]


def raw_rate(subs, recipients: int, threads: int, calls: int, spread: bool) -> float:
    from django.db import connection, transaction
    from django.utils import timezone
    from psycopg.types.json import Jsonb

    from accounts import quota
    from accounts.quota import hour_start, month_start
    from mailing import bodies
    from mailing.models import Message, MessageContent

    contents = RawInsert(MessageContent, ("account_id", "digest", "text", "html", "created_at"))
    messages = RawUnnest(Message, ("account_id", "from_email", "subject", "content_id", "tags", "status", "created_at",
                                   "next_attempt_at"), varying=("public_id", "to_email"))  # fmt: skip
    text, html = "Thanks for your order.", "<p>Thanks for your order.</p>"
    digest = bodies.body(text=text, html=html, headers={}, attachments=[]).digest

    def work(index: int):
        with connection.cursor() as cursor:
            for call in range(calls):
                account = subs[(index * calls + call) % len(subs)] if spread else subs[0]
                now = timezone.now()
                windows = (("hour", hour_start(now)), ("month", month_start(now)))
                with transaction.atomic():
                    # The reservation: one conditional upsert per window (the product's own statement).
                    for window, start in windows:
                        cursor.execute(quota.RESERVE_SQL, {"account": account.pk, "billed_to": account.parent_id,
                                                           "label": "bench", "window": window, "start": start,
                                                           "limit": 2_000_000_000, "n": recipients})  # fmt: skip
                        assert cursor.fetchone() is not None
                    # The body once, then the narrow rows: the product's statements (mailing/bodies.py,
                    # mailing/bulk.py).
                    sql, values = contents.sql([{"account_id": account.pk, "digest": digest, "text": text,
                                                 "html": html, "created_at": now}])  # fmt: skip
                    cursor.execute(RAW_CONTENT.format(insert=sql), [*values, account.pk, digest])
                    [content_id] = cursor.fetchone()
                    shared = {"account_id": account.pk, "from_email": "news@sender.example", "subject": "Your receipt",
                              "content_id": content_id, "tags": Jsonb(["receipt"]), "status": "queued",
                              "created_at": now, "next_attempt_at": now}  # fmt: skip
                    each = {"public_id": [uuid.uuid4().hex for _ in range(recipients)],
                            "to_email": [f"customer{i}@example.test" for i in range(recipients)]}  # fmt: skip
                    cursor.execute(messages.statement, messages.params(shared, each))

    seconds = _run_threads(threads, work)
    return threads * calls * recipients / seconds


def delivery_rate(subs, count: int = 1000) -> float:
    import subprocess
    import sys

    from django.conf import settings
    from django.utils import timezone

    from bench.smtp import free_port, wait_for_port
    from mailing import bodies, delivery
    from mailing.models import Message

    port = free_port()  # the sink is its own process, as a relay would be
    sink = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    previous = settings.MAILERS
    settings.MAILERS = {**previous, "delivery": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                                                 "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 10}}}  # fmt: skip
    try:
        Message.objects.all().delete()
        body = bodies.body(text="Thanks.", html="<p>Thanks.</p>", headers={}, attachments=[])
        content_ids = [bodies.store(sub.pk, [body], now=timezone.now())[0] for sub in subs[:10]]
        Message.objects.bulk_create(
            Message(
                account=subs[i % 10],
                from_email="news@sender.example",
                to_email=f"c{i}@example.test",
                subject="Your receipt",
                content_id=content_ids[i % 10],
            )
            for i in range(count)
        )
        ids = list(Message.objects.values_list("pk", flat=True))
        started = time.perf_counter()
        for start in range(0, len(ids), 50):
            report = delivery.deliver(ids[start : start + 50])
            assert report.sent == len(ids[start : start + 50]), report
        return count / (time.perf_counter() - started)
    finally:
        settings.MAILERS = previous
        sink.terminate()
        sink.wait(timeout=10)


def main() -> None:
    from django.conf import settings

    common.progress("accept: resetting the database")
    common.reset_database()
    settings.REQUIRE_VERIFIED_SENDING_DOMAIN = (
        False  # the domain check is one indexed query; measured in the API run
    )
    subs = _accounts()
    common.analyze()
    rows = []
    with mock.patch("mailing.sending.enqueue_delivery"):
        for recipients, threads, calls, spread in SCENARIOS:
            accepted = accept_rate(subs, recipients, threads, calls, spread)
            floor = raw_rate(subs, recipients, threads, calls, spread)
            where = "1,000 subaccounts" if spread else "one subaccount"
            ratio = accepted / floor
            rows.append([recipients, threads, where, f"{accepted:,.0f}", f"{floor:,.0f}", f"{ratio:.2f}",
                         f"≥ {AIM:.2f}", "yes" if ratio >= AIM else "**no**"])  # fmt: skip
            common.aim(f"accept path, {recipients} recipient(s), {threads} thread(s), {where}", f"{accepted:,.0f} messages/s",
                       f"≥ {AIM:.0%} of the floor", ratio >= AIM, floor=f"{floor:,.0f} messages/s")  # fmt: skip
            common.progress(
                f"accept: {recipients} rcpt x {threads} threads on {where}: {accepted:,.0f}/s vs raw {floor:,.0f}/s"
            )
    rate = delivery_rate(subs)
    print("## Accept path and delivery (`bench/accept.py`)\n")
    print(__doc__.split("\n\n", 1)[1])
    print(common.table(["recipients per call", "threads", "sending as", "accept path (messages/s)",
                        "raw SQL floor (messages/s)", "ratio", "aim", "met"], rows))  # fmt: skip
    print(f"Delivery, one process, batches of 50 over one SMTP connection to a local aiosmtpd sink: "
          f"**{rate:,.0f} messages/s**.\n")  # fmt: skip
