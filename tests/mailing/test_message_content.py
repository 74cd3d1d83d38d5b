"""Each body is stored once (MessageContent): one row for a call's recipients, shared by identical calls of
the same account and never across accounts, one per distinct merged body, none for a rejected message;
everything that reads a body (delivery, the archive, messages/content, the message page) reads it through
the content; unused contents are purged, and never one an accept is reusing."""

import importlib
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from mailing import archive, bodies, bulk, delivery, selectors
from mailing.api.objects import message_content
from mailing.models import ArchivedMessage, Message, MessageContent, Suppression
from mailing.sending import OutgoingMessage, Recipient, accept_messages
from tests.conftest import requires_postgres
from tests.factories import SubaccountFactory, create_archived, create_message

pytestmark = pytest.mark.django_db

PDF = {"name": "invoice.pdf", "type": "application/pdf", "content": "JVBERi0xLjQK"}


def _message(n: int = 3, **fields) -> OutgoingMessage:
    defaults = {"from_email": "shop@example.test", "subject": "Your receipt", "text": "Thanks",
                "html": "<p>Thanks</p>", "headers": {"Reply-To": "help@example.test"}, "attachments": [PDF]}  # fmt: skip
    recipients = [Recipient(email=f"reader{i}@example.test") for i in range(n)]
    return OutgoingMessage(recipients=recipients, **(defaults | fields))


def test_a_call_to_100_recipients_stores_its_body_once_and_each_row_reads_it():
    sub = SubaccountFactory()
    results = accept_messages(account=sub, message=_message(100))
    assert {r.status for r in results} == {"queued"}
    [content] = MessageContent.objects.filter(account=sub)
    assert (content.text, content.html, content.headers, content.attachments) == (
        "Thanks", "<p>Thanks</p>", {"Reply-To": "help@example.test"}, [PDF]
    )  # fmt: skip
    rows = list(Message.objects.filter(account=sub).select_related("content"))
    assert len(rows) == 100 and {row.content_id for row in rows} == {content.pk}
    assert {(row.text, row.html, row.attachments[0]["name"]) for row in rows} == {
        ("Thanks", "<p>Thanks</p>", "invoice.pdf")
    }
    # Each recipient's answer names its own row.
    assert {r.id for r in results} == {row.public_id for row in rows}
    assert {r.email for r in results} == {row.to_email for row in rows}


def test_identical_calls_share_a_content_within_an_account_never_across_accounts():
    shop, other = SubaccountFactory(), SubaccountFactory()
    accept_messages(account=shop, message=_message(2))
    accept_messages(account=shop, message=_message(3))
    accept_messages(account=other, message=_message(2))
    assert MessageContent.objects.filter(account=shop).count() == 1
    [theirs] = MessageContent.objects.filter(account=other)
    assert set(Message.objects.filter(account=other).values_list("content_id", flat=True)) == {theirs.pk}
    assert not Message.objects.filter(account=shop, content_id=theirs.pk).exists()
    # A different body (the headers alone differ) is another content.
    accept_messages(account=shop, message=_message(1, headers={"Reply-To": "sales@example.test"}))
    assert MessageContent.objects.filter(account=shop).count() == 2


def test_merged_messages_get_one_content_per_distinct_rendered_body():
    sub = SubaccountFactory()
    message = _message(
        3,
        html="<p>Hello *|FNAME|*</p>",
        text="Hello *|FNAME|*",
        merge=True,
        merge_vars=[
            {"rcpt": "reader0@example.test", "vars": [{"name": "FNAME", "content": "Ana"}]},
            {"rcpt": "reader1@example.test", "vars": [{"name": "FNAME", "content": "Bo"}]},
            {"rcpt": "reader2@example.test", "vars": [{"name": "FNAME", "content": "Bo"}]},
        ],
    )
    accept_messages(account=sub, message=message)
    rows = {m.to_email: m for m in Message.objects.filter(account=sub).select_related("content")}
    assert rows["reader0@example.test"].html == "<p>Hello Ana</p>"
    assert rows["reader1@example.test"].text == "Hello Bo"
    # Bo's two copies render the same body: one content for both, and every copy keeps the attachment.
    assert rows["reader1@example.test"].content_id == rows["reader2@example.test"].content_id
    assert MessageContent.objects.filter(account=sub).count() == 2
    assert all(row.attachments == [PDF] for row in rows.values())


def test_rejected_messages_store_no_body():
    sub = SubaccountFactory()
    Suppression.objects.create(account=sub, email="reader1@example.test", reason="hard-bounce")
    results = accept_messages(account=sub, message=_message(2))
    assert sorted(r.status for r in results) == ["queued", "rejected"]
    rejected = Message.objects.get(account=sub, status=Message.Status.REJECTED)
    assert rejected.content_id is None
    assert (rejected.text, rejected.html, rejected.headers, rejected.attachments) == ("", "", {}, [])
    sub.monthly_limit = 1  # one recipient was queued above: the limit is reached
    sub.save()
    over = _message(1, text="Another body")
    assert [r.reject_reason for r in accept_messages(account=sub, message=over)] == ["monthly-limit-reached"]
    # The refused call's body was never kept (its insert rolled back with the call).
    assert not MessageContent.objects.filter(account=sub, text="Another body").exists()


def test_delivery_the_archive_and_messages_content_read_the_body(
    smtp_sink, django_capture_on_commit_callbacks
):
    sub = SubaccountFactory(archiving_enabled=True)
    with django_capture_on_commit_callbacks(execute=True):
        accept_messages(account=sub, message=_message(2))
    assert len(smtp_sink.received) == 2
    delivered = smtp_sink.received[0].content.decode()
    assert "Thanks" in delivered and "Reply-To: help@example.test" in delivered and "invoice.pdf" in delivered
    sent = Message.objects.filter(account=sub).first()
    copies = list(ArchivedMessage.objects.filter(account=sub))
    assert len(copies) == 2 and {copy.content_id for copy in copies} == {sent.content_id}
    kept = archive.archived_message_of(sub, copies[0].pk)
    assert (kept.html, kept.text) == ("<p>Thanks</p>", "Thanks")
    answer = message_content(selectors.message_of(sub, sent.public_id))
    assert (answer["text"], answer["html"], answer["headers"]) == ("Thanks", "<p>Thanks</p>", sent.headers)
    assert answer["attachments"] == [PDF] and answer["images"] == []


def test_delivery_reads_a_body_its_batch_shares_once(django_assert_num_queries):
    sub = SubaccountFactory()
    accept_messages(account=sub, message=_message(3))
    claimed = delivery.claim(list(Message.objects.filter(account=sub).values_list("pk", flat=True)))
    assert len(claimed) == 3 and len({id(m.content) for m in claimed}) == 1
    with django_assert_num_queries(0):
        assert [m.attachments for m in claimed] == [[PDF]] * 3


def test_the_frozen_digest_of_the_migration_is_the_models():
    migration = importlib.import_module("mailing.migrations.0015_message_content")
    headers, attachments = {"B": "2", "A": "1"}, [PDF]
    assert (
        migration._digest("t", "<p>h</p>", headers, attachments)
        == bodies.body(text="t", html="<p>h</p>", headers=headers, attachments=attachments).digest
    )


def test_a_column_bulk_insert_gives_each_row_its_values_the_shared_ones_and_the_defaults_in_order():
    sub = SubaccountFactory()
    before = timezone.now()
    emails = ["c@example.test", "a@example.test", "b@example.test"]
    ids = bulk.insert(
        Message,
        shared={"account_id": sub.pk, "from_email": "shop@example.test", "metadata": {"order": 7}},
        each={"to_email": emails, "public_id": ["p1", "p2", "p3"]},
    )
    rows = Message.objects.in_bulk(ids)
    assert [rows[pk].to_email for pk in ids] == emails and [rows[pk].public_id for pk in ids] == [
        "p1",
        "p2",
        "p3",
    ]
    first = rows[ids[0]]
    assert (first.from_email, first.metadata, first.account_id) == ("shop@example.test", {"order": 7}, sub.pk)
    assert (first.status, first.attempts, first.tags, first.content_id) == ("queued", 0, [], None)
    assert before <= first.created_at <= timezone.now()
    assert bulk.insert(Message, shared={}, each={"to_email": []}) == []


def test_a_column_bulk_insert_refuses_a_column_the_model_lacks():
    with pytest.raises(ValueError, match="no column text"):
        bulk.insert(Message, shared={"text": "x"}, each={"to_email": ["a@example.test"]})


def _old(content: MessageContent) -> MessageContent:
    MessageContent.objects.filter(pk=content.pk).update(created_at=timezone.now() - bodies.GRACE * 2)
    return content


def test_the_purge_deletes_only_old_contents_nothing_points_at():
    sub = SubaccountFactory()
    in_use = create_message(account=sub, to_email="a@example.test", text="in use")
    archived = create_archived(
        account=sub, to_email="b@example.test", text="archived", sent_at=timezone.now()
    )
    unused = create_message(account=sub, to_email="c@example.test", text="unused")
    young = create_message(account=sub, to_email="d@example.test", text="young")
    for row in (in_use, archived, unused):
        _old(MessageContent.objects.get(pk=row.content_id))
    Message.objects.filter(pk__in=[unused.pk, young.pk]).delete()
    assert bodies.purge_unused() == 1
    assert set(MessageContent.objects.values_list("text", flat=True)) == {"in use", "archived", "young"}
    # The archive's purge leaves its copies' bodies unused; the next purge takes them.
    archive.purge_archive(now=timezone.now() + timedelta(days=400))
    assert bodies.purge_unused() == 1
    assert set(MessageContent.objects.values_list("text", flat=True)) == {"in use", "young"}


def test_an_accept_whose_reused_content_is_purged_meanwhile_stores_it_again(monkeypatch):
    sub = SubaccountFactory()
    accept_messages(account=sub, message=_message(1))
    [first] = MessageContent.objects.filter(account=sub)
    first_attempt = []

    def purged_under_its_lock(account_id, pending, *, now):
        if not first_attempt:
            # The purge took the content first: the accept's locking read finds nothing.
            first_attempt.append(MessageContent.objects.filter(pk=first.pk).delete())
            return {}
        return insert_or_find(account_id, pending, now=now)

    insert_or_find = bodies._insert_or_find
    monkeypatch.setattr(bodies, "_insert_or_find", purged_under_its_lock)
    accept_messages(account=sub, message=_message(2))
    [again] = MessageContent.objects.filter(account=sub)
    assert again.pk != first.pk and again.text == "Thanks"
    assert Message.objects.filter(account=sub, content_id=again.pk).count() == 2


@requires_postgres()
@pytest.mark.django_db(transaction=True)
def test_the_purge_passes_over_a_content_an_accept_holds_until_it_commits():
    sub = SubaccountFactory()
    row = create_message(account=sub, to_email="a@example.test", text="reused")
    content = _old(MessageContent.objects.get(pk=row.content_id))
    Message.objects.filter(pk=row.pk).delete()  # unused now, and old: a candidate
    accept = connections.create_connection("default")  # an accept in flight, in its own session
    try:
        accept.set_autocommit(False)
        with accept.cursor() as cursor:
            # What bodies.store does with a content it reuses, until the accept commits.
            cursor.execute("SELECT id FROM mailing_messagecontent WHERE id = %s FOR KEY SHARE", [content.pk])
            assert bodies.purge_unused() == 0
            assert MessageContent.objects.filter(pk=content.pk).exists()
        accept.rollback()  # the accept failed after all: nothing points at the content
    finally:
        accept.close()
    assert bodies.purge_unused() == 1
    assert not MessageContent.objects.filter(pk=content.pk).exists()
