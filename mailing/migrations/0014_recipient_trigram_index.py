"""The message list's recipient search is `to_email__icontains`, which PostgreSQL runs as
UPPER(to_email) LIKE UPPER('%…%'): no b-tree helps a match in the middle of the address, so it read every
message of the account. A trigram index (pg_trgm) on exactly that expression answers it from the index.
PostgreSQL only: the embedded SQLite set-up searches without it."""

from django.db import migrations

INDEX = "message_to_email_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it.
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON mailing_message USING gin (UPPER(to_email::text) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")  # the extension stays: others may use it


class Migration(migrations.Migration):
    dependencies = [("mailing", "0013_partition_by_month")]
    operations = [migrations.RunPython(create, drop)]
