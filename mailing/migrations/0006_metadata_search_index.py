"""messages/search's u_<name>:value is JSON containment on metadata: a GIN index (jsonb_path_ops) keeps
it fast. PostgreSQL only (the embedded SQLite set-up has no such index and searches by text)."""

from django.db import migrations

INDEX = "message_metadata_gin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON mailing_message USING gin (metadata jsonb_path_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("mailing", "0005_templates_scheduling_message_options")]
    operations = [migrations.RunPython(create, drop)]
