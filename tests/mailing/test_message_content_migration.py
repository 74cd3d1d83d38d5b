"""Migration mailing 0015 moves each stored body into MessageContent (one per account and distinct body;
none for a rejected message) and points messages and archived copies at it; backwards, it copies the
bodies back into the rows. On SQLite and PostgreSQL (where the tables are partitioned by month) alike."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from tests.factories import MasterFactory

BEFORE = [("mailing", "0014_recipient_trigram_index")]
AFTER = [("mailing", "0015_message_content")]
PDF = {"name": "invoice.pdf", "type": "application/pdf", "content": "JVBERi0xLjQK"}


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _body(row) -> tuple:
    return (row.text, row.html, row.headers, row.attachments)


def _as_given(body: dict) -> tuple:
    return (body["text"], body["html"], body["headers"], body["attachments"])


@pytest.mark.django_db(transaction=True)
def test_the_bodies_move_into_contents_and_back():
    shop, other = MasterFactory(), MasterFactory()
    try:
        apps = _migrate(BEFORE)
        Message, ArchivedMessage = (
            apps.get_model("mailing", "Message"),
            apps.get_model("mailing", "ArchivedMessage"),
        )
        receipt = {"text": "Thanks", "html": "<p>Thanks</p>", "headers": {"Reply-To": "help@example.test"},
                   "attachments": [PDF]}  # fmt: skip
        welcome = {"text": "Welcome", "html": "", "headers": {}, "attachments": []}
        rows = [
            Message.objects.create(account_id=shop.pk, to_email=f"r{i}@example.test", **receipt)
            for i in range(3)
        ]
        rows.append(Message.objects.create(account_id=shop.pk, to_email="w@example.test", **welcome))
        rows.append(Message.objects.create(account_id=other.pk, to_email="o@example.test", **receipt))
        rejected = Message.objects.create(account_id=shop.pk, to_email="x@example.test", status="rejected")
        ArchivedMessage.objects.create(
            account_id=shop.pk, message_id=rows[3].pk, to_email="w@example.test", sent_at=timezone.now(),
            text="Welcome", html="", headers={},
        )  # fmt: skip
        ids = [row.pk for row in rows]

        apps = _migrate(AFTER)
        Message, Content = apps.get_model("mailing", "Message"), apps.get_model("mailing", "MessageContent")
        ArchivedMessage = apps.get_model("mailing", "ArchivedMessage")
        moved = {m.pk: m for m in Message.objects.select_related("content")}
        assert _body(moved[ids[0]].content) == _as_given(receipt)
        assert len({moved[pk].content_id for pk in ids[:3]}) == 1  # one content for the three copies
        assert _body(moved[ids[3]].content) == _as_given(welcome)
        assert moved[ids[4]].content.account_id == other.pk  # the same body, its own account's content
        assert moved[rejected.pk].content_id is None
        assert Content.objects.filter(account_id=shop.pk).count() == 2
        assert Content.objects.filter(account_id=other.pk).count() == 1
        # The archived copy (no attachments) shares the message's content, with the same body.
        assert ArchivedMessage.objects.get().content_id == moved[ids[3]].content_id

        apps = _migrate(BEFORE)
        Message, ArchivedMessage = (
            apps.get_model("mailing", "Message"),
            apps.get_model("mailing", "ArchivedMessage"),
        )
        back = {m.pk: m for m in Message.objects.all()}
        assert [_body(back[pk]) for pk in ids] == [_as_given(receipt)] * 3 + [
            _as_given(welcome), _as_given(receipt)
        ]  # fmt: skip
        assert _body(back[rejected.pk]) == ("", "", {}, [])
        copy = ArchivedMessage.objects.get()
        assert (copy.text, copy.html, copy.headers) == ("Welcome", "", {})
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
