"""Messages, their events and the archive's copies, partitioned by month on PostgreSQL (declarative range
partitioning), so that retention drops a month's partition instead of deleting rows one by one, and each
month's indexes stay the size of a month. docs/scaling.md says why; mailing/partitions.py keeps the months
ahead created and drops old ones.

A partitioned table's primary and unique keys must hold the partition key, and a foreign key cannot point
into it: so the primary keys become (id, month column), public_id an index, and the links from events and
archived copies to their message are no longer database constraints (Django still cascades and clears
them). The existing rows are copied into the new tables; the ids keep counting from where they were.
On SQLite (the embedded set-up) the tables stay as they are. Reversible: the rows are copied back into
plain tables."""

from datetime import UTC, datetime

import django.db.models.deletion
from django.db import migrations, models

import mailing.models

TABLES = {
    "mailing_message": "created_at",
    "mailing_messageevent": "created_at",
    "mailing_archivedmessage": "sent_at",
}
MONTHS_AHEAD = 3


def _month(moment: datetime, plus: int = 0) -> datetime:
    index = moment.year * 12 + moment.month - 1 + plus
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _shape(cursor, table: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The table's index definitions (but its primary key) and its foreign keys, to make again."""
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid), x.indisunique FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass AND NOT x.indisprimary",
        [table],
    )
    indexes = []
    for name, definition, unique in cursor.fetchall():
        if unique:  # a unique key without the month cannot exist on a partitioned table
            raise RuntimeError(f"{table} still has the unique index {name}; make it plain first")
        indexes.append(
            definition.replace(" ON ONLY ", " ON ")
        )  # a partitioned table's indexes read "ON ONLY"
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
        [table],
    )
    return indexes, cursor.fetchall()


def _rebuild(cursor, table: str, indexes: list[str], foreign_keys: list[tuple[str, str]]) -> None:
    for definition in indexes:
        cursor.execute(definition)
    for name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')


def _partition_table(cursor, table: str, column: str) -> None:
    old, sequence = f"{table}_unpartitioned", f"{table}_id_seq"
    indexes, foreign_keys = _shape(cursor, table)
    cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    cursor.execute(
        f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ("{column}")'
    )
    cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN id DROP DEFAULT')  # the old table's sequence, if any
    cursor.execute(f'SELECT min("{column}") FROM "{old}"')
    first = cursor.fetchone()[0] or datetime.now(UTC)
    month, last = _month(first), _month(datetime.now(UTC), MONTHS_AHEAD)
    while month <= last:
        cursor.execute(
            f'CREATE TABLE "{table}_{month:%Y_%m}" PARTITION OF "{table}" FOR VALUES FROM (%s) TO (%s)',
            [month, _month(month, 1)],
        )
        month = _month(month, 1)
    cursor.execute(f'CREATE TABLE "{table}_default" PARTITION OF "{table}" DEFAULT')
    cursor.execute(f'INSERT INTO "{table}" SELECT * FROM "{old}"')
    # PostgreSQL 15 has no identity columns on partitioned tables: a sequence of the table's own.
    cursor.execute(f'CREATE SEQUENCE "{sequence}_new"')
    cursor.execute(
        f'SELECT setval(%s, coalesce((SELECT max(id) FROM "{old}"), 0) + 1, false)', [f"{sequence}_new"]
    )
    cursor.execute(f'DROP TABLE "{old}"')
    cursor.execute(f'ALTER SEQUENCE "{sequence}_new" RENAME TO "{sequence}"')
    cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN id SET DEFAULT nextval(\'"{sequence}"\'::regclass)')
    cursor.execute(f'ALTER SEQUENCE "{sequence}" OWNED BY "{table}".id')
    cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{table}_pkey" PRIMARY KEY (id, "{column}")')
    _rebuild(cursor, table, indexes, foreign_keys)


def _unpartition_table(cursor, table: str) -> None:
    old, sequence = f"{table}_partitioned", f"{table}_id_seq"
    indexes, foreign_keys = _shape(cursor, table)
    cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    cursor.execute(f'ALTER SEQUENCE "{sequence}" OWNED BY NONE')
    cursor.execute(f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    cursor.execute(f'INSERT INTO "{table}" SELECT * FROM "{old}"')
    cursor.execute(f'DROP TABLE "{old}"')  # and its partitions
    cursor.execute(f'ALTER SEQUENCE "{sequence}" OWNED BY "{table}".id')
    cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{table}_pkey" PRIMARY KEY (id)')
    _rebuild(cursor, table, indexes, foreign_keys)


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table, column in TABLES.items():
            _partition_table(cursor, table, column)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            _unpartition_table(cursor, table)


class Migration(migrations.Migration):
    dependencies = [
        ("mailing", "0012_export_jobs"),
    ]

    operations = [
        migrations.AlterField(
            model_name="archivedmessage",
            name="message",
            field=models.ForeignKey(
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="archived_copies",
                to="mailing.message",
            ),
        ),
        migrations.AlterField(
            model_name="message",
            name="public_id",
            field=models.CharField(
                db_index=True,
                default=mailing.models.new_public_id,
                help_text="Mandrill's _id.",
                max_length=32,
            ),
        ),
        migrations.AlterField(
            model_name="messageevent",
            name="message",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="events",
                to="mailing.message",
            ),
        ),
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
