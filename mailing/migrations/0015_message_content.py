"""Each body is stored once: a message's text, HTML, headers and attachments move into MessageContent, one
row per distinct body of an account (content-addressed by the SHA-256 of the four), and each recipient's
Message and each ArchivedMessage points at it. A call to 100 recipients wrote its body 100 times (and its
archived copies once more each); now it writes it once.

The existing rows are moved batch by batch, in id order: each batch's bodies are hashed, the contents
missing are created, and the rows pointing at the same content are updated together. Rejected messages
stored no body and get no content. Works on SQLite and PostgreSQL alike (the partitioned tables take
ordinary ALTER TABLE and UPDATE). Reversible: the columns come back and each content is copied into the
rows pointing at it (an archived copy has no attachments, as before)."""

import hashlib
import json

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

BATCH = 500


def _canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


def _digest(text: str, html: str, headers: dict, attachments: list) -> str:
    """mailing.models.content_digest as of this migration (frozen here; a test checks they agree)."""
    attachments_digest = hashlib.sha256(_canonical(attachments)).hexdigest()
    return hashlib.sha256(_canonical([text, html, headers, attachments_digest])).hexdigest()


def _content_ids(MessageContent, bodies: dict[tuple[int, str], dict]) -> dict[tuple[int, str], int]:
    """The content id of each (account id, digest), creating the contents missing."""
    ids = {}
    for account_id in {account_id for account_id, _ in bodies}:
        digests = [digest for owner, digest in bodies if owner == account_id]
        found = MessageContent.objects.filter(account_id=account_id, digest__in=digests)
        ids.update({(account_id, digest): pk for digest, pk in found.values_list("digest", "pk")})
    missing = [key for key in bodies if key not in ids]
    created = MessageContent.objects.bulk_create(
        MessageContent(account_id=account_id, digest=digest, **bodies[account_id, digest])
        for account_id, digest in missing
    )
    if created and created[0].pk is None:  # a database that does not return ids from a bulk insert
        return _content_ids(MessageContent, bodies)
    ids.update({(row.account_id, row.digest): row.pk for row in created})
    return ids


def _move(model, MessageContent, fields: tuple[str, ...], rows) -> None:
    """Point a batch of rows (dicts of id, account_id and the body fields) at their contents."""
    bodies, keys = {}, {}
    for row in rows:
        body = {name: row[name] for name in fields}
        body.setdefault("attachments", [])
        key = (row["account_id"], _digest(body["text"], body["html"], body["headers"], body["attachments"]))
        bodies[key] = body
        keys.setdefault(key, []).append(row["id"])
    ids = _content_ids(MessageContent, bodies)
    for key, pks in keys.items():
        model.objects.filter(pk__in=pks).update(content_id=ids[key])


def _batches(queryset, fields: tuple[str, ...]):
    last = 0
    while True:
        rows = list(queryset.filter(pk__gt=last).order_by("pk").values("id", "account_id", *fields)[:BATCH])
        if not rows:
            return
        yield rows
        last = rows[-1]["id"]


MESSAGE_BODY = ("text", "html", "headers", "attachments")
ARCHIVE_BODY = ("text", "html", "headers")


def forward(apps, schema_editor):
    MessageContent = apps.get_model("mailing", "MessageContent")
    Message = apps.get_model("mailing", "Message")
    ArchivedMessage = apps.get_model("mailing", "ArchivedMessage")
    for rows in _batches(Message.objects.exclude(status="rejected"), MESSAGE_BODY):
        _move(Message, MessageContent, MESSAGE_BODY, rows)
    for rows in _batches(ArchivedMessage.objects.all(), ARCHIVE_BODY):
        _move(ArchivedMessage, MessageContent, ARCHIVE_BODY, rows)


def backward(apps, schema_editor):
    MessageContent = apps.get_model("mailing", "MessageContent")
    Message = apps.get_model("mailing", "Message")
    ArchivedMessage = apps.get_model("mailing", "ArchivedMessage")
    last = 0
    while True:
        contents = list(MessageContent.objects.filter(pk__gt=last).order_by("pk")[:BATCH])
        if not contents:
            return
        for content in contents:
            body = {"text": content.text, "html": content.html, "headers": content.headers}
            Message.objects.filter(content_id=content.pk).update(**body, attachments=content.attachments)
            ArchivedMessage.objects.filter(content_id=content.pk).update(**body)
        last = contents[-1].pk


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0010_usage_rollup_and_covering_index"),
        ("mailing", "0014_recipient_trigram_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="MessageContent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("digest", models.CharField(help_text="content_digest() of the four parts.", max_length=64)),
                ("text", models.TextField(blank=True)),
                ("html", models.TextField(blank=True)),
                ("headers", models.JSONField(blank=True, default=dict)),
                (
                    "attachments",
                    models.JSONField(blank=True, default=list, help_text="[{name, type, content (base64)}]"),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="message_contents",
                        to="accounts.account",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["created_at"], name="message_content_created")],
                "constraints": [
                    models.UniqueConstraint(fields=("account", "digest"), name="message_content_per_account")
                ],
            },
        ),
        migrations.AddField(
            model_name="archivedmessage",
            name="content",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="mailing.messagecontent",
            ),
        ),
        migrations.AddField(
            model_name="message",
            name="content",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                help_text="The body; none for a rejected message.",
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="mailing.messagecontent",
            ),
        ),
        migrations.RunPython(forward, backward, elidable=False),
        migrations.RemoveField(model_name="archivedmessage", name="headers"),
        migrations.RemoveField(model_name="archivedmessage", name="html"),
        migrations.RemoveField(model_name="archivedmessage", name="text"),
        migrations.RemoveField(model_name="message", name="attachments"),
        migrations.RemoveField(model_name="message", name="headers"),
        migrations.RemoveField(model_name="message", name="html"),
        migrations.RemoveField(model_name="message", name="text"),
    ]
