"""The monthly partitions of the message, event and archive tables on PostgreSQL (created by migration
mailing 0013; docs/scaling.md says why). Each table has one partition per calendar month (UTC), named
`<table>_YYYY_MM`, and a default partition that catches a row no month holds yet.

`ensure_partitions` (daily, from Celery beat) keeps MONTHS_AHEAD months ready, so rows never pile up in
the default; rows that did land there (a clock far ahead, a late migration) move into their month's new
partition. `drop_months_before` is retention: a whole month goes as one DROP TABLE, not a DELETE of every
row and the vacuum after it. On SQLite every function here does nothing: the tables are plain."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

TABLES = {
    "mailing_message": "created_at",
    "mailing_messageevent": "created_at",
    "mailing_archivedmessage": "sent_at",
}
MONTHS_AHEAD = 3


def month_start(moment: datetime, plus: int = 0) -> datetime:
    """The first instant (UTC) of `moment`'s month, `plus` months on."""
    moment = moment.astimezone(UTC)
    index = moment.year * 12 + moment.month - 1 + plus
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime

    @property
    def end(self) -> datetime:
        return month_start(self.start, 1)


def enabled() -> bool:
    return connection.vendor == "postgresql" and _is_partitioned("mailing_message")


def _is_partitioned(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [table])
        return cursor.fetchone() is not None


def months_of(table: str) -> list[Partition]:
    """The table's monthly partitions, oldest first (the default partition is not a month)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [table],
        )
        names = [row[0] for row in cursor.fetchall()]
    months = []
    for name in names:
        suffix = name.removeprefix(f"{table}_")
        if suffix != "default":
            year, month = suffix.split("_")
            months.append(Partition(name, datetime(int(year), int(month), 1, tzinfo=UTC)))
    return sorted(months, key=lambda partition: partition.start)


def ensure_partitions(*, now: datetime | None = None, months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create each table's partitions from this month to `months_ahead` months on; the names created."""
    if not enabled():
        return []
    first = month_start(now or timezone.now())
    created = []
    for table, column in TABLES.items():
        existing = {partition.start for partition in months_of(table)}
        for ahead in range(months_ahead + 1):
            start = month_start(first, ahead)
            if start not in existing:
                created.append(_create_month(table, column, start))
    if created:
        logger.info("Created partitions %s", ", ".join(created))
    return created


@transaction.atomic
def _create_month(table: str, column: str, start: datetime) -> str:
    """A month's partition. PostgreSQL refuses one while the default partition holds rows of that month;
    then those rows move into it (detach the default, create, move, attach again), in one transaction."""
    name, end = f"{table}_{start:%Y_%m}", month_start(start, 1)
    default = f"{table}_default"
    create = f'CREATE TABLE "{name}" PARTITION OF "{table}" FOR VALUES FROM (%s) TO (%s)'
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT 1 FROM "{default}" WHERE "{column}" >= %s AND "{column}" < %s LIMIT 1',  # nosec B608: TABLES' names
            [start, end],
        )
        if cursor.fetchone() is None:
            cursor.execute(create, [start, end])
            return name
        cursor.execute(f'ALTER TABLE "{table}" DETACH PARTITION "{default}"')
        cursor.execute(create, [start, end])
        cursor.execute(
            f'WITH moved AS (DELETE FROM "{default}" WHERE "{column}" >= %s AND "{column}" < %s RETURNING *) '  # nosec B608: TABLES' names
            f'INSERT INTO "{table}" SELECT * FROM moved',
            [start, end],
        )
        cursor.execute(f'ALTER TABLE "{table}" ATTACH PARTITION "{default}" DEFAULT')
    logger.warning("Moved %s's rows of %s out of its default partition", table, f"{start:%Y-%m}")
    return name


def drop_months_before(table: str, cutoff: datetime) -> int:
    """Drop the table's monthly partitions that end at or before `cutoff` (every row in them is older);
    how many rows went. Rows of the month `cutoff` falls in are the caller's to delete."""
    if not enabled():
        return 0
    dropped = 0
    for partition in months_of(table):
        if partition.end > cutoff:
            break
        with transaction.atomic(), connection.cursor() as cursor:
            # Checks deferred foreign keys now: PostgreSQL will not drop a table with pending trigger
            # events, which rows written earlier in the same transaction leave.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f'SELECT count(*) FROM "{partition.name}"')  # nosec B608: a partition's name from pg_inherits
            dropped += cursor.fetchone()[0]
            cursor.execute(f'ALTER TABLE "{table}" DETACH PARTITION "{partition.name}"')
            cursor.execute(f'DROP TABLE "{partition.name}"')
        logger.info("Dropped partition %s", partition.name)
    return dropped


def partition_of(table: str, pk: int) -> str | None:
    """Which partition holds the row (for tests and operators)."""
    if table not in TABLES:
        raise ValueError(f"{table} is not one of the partitioned tables")
    with connection.cursor() as cursor:
        # `table` is one of TABLES (checked above); the id is a parameter.
        cursor.execute(f'SELECT tableoid::regclass::text FROM "{table}" WHERE id = %s', [pk])  # nosec B608
        row = cursor.fetchone()
    return row[0] if row else None
