"""Message bodies, stored once (MessageContent, content-addressed per account): `store` gives the accept
path an id for each of a call's bodies, inserting those the account has not stored yet, and
`purge_unused` deletes the contents no message and no archived copy points at any more.

The two race: an accept may reuse a content that the purge has just found unused. Nothing in the
database stops it (Message.content has no foreign-key constraint: mailing/models.py says why), so the
two take row locks, as a foreign-key check would, but once per content rather than once per recipient:

- `store` inserts with ON CONFLICT DO NOTHING, which returns the contents it created: those the purge
  cannot see before they are committed, and then with the messages that point at them. A content that
  already existed it reads FOR KEY SHARE (in the same statement), the lock held until the accept
  commits; such locks do not conflict with each other, so concurrent sends of the same body do not wait
  for one another. A content the purge deleted meanwhile is not found, and `store` inserts it again.
- `purge_unused` locks its candidates FOR UPDATE SKIP LOCKED (passing over those an accept holds), then
  checks again, in a new statement and so with a fresh snapshot, that nothing points at them before
  deleting them: the messages of an accept that reused one and committed while the first statement ran
  (after its snapshot, before its lock) are seen by the second. It also leaves contents younger than
  GRACE alone, in case of a writer that does not lock.

On SQLite there are no row locks and none are needed: writers take turns on the whole database, and
`store` writes (its insert) before it reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from .models import ArchivedMessage, Message, MessageContent, attachments_digest, content_digest

GRACE = timedelta(hours=1)
PURGE_BATCH = 1000
ATTEMPTS = 3  # a content deleted under `store` twice in a row is already unlikely
COLUMNS = ("account_id", "digest", "text", "html", "headers", "attachments", "created_at")


@dataclass(frozen=True)
class Body:
    """One body as a message carries it; `digest` names it among the account's contents (`body` makes
    one with its digests)."""

    text: str
    html: str
    headers: dict
    attachments: list
    attachments_digest: str = field(repr=False)
    digest: str = field(repr=False)


def body(
    *, text: str, html: str, headers: dict, attachments: list, attachments_hash: str | None = None
) -> Body:
    """A Body and its digest; `attachments_hash` (attachments_digest of the same list) spares hashing
    large attachments again for each recipient of a merged call."""
    attachments_hash = attachments_hash or attachments_digest(attachments)
    digest = content_digest(text=text, html=html, headers=headers, attachments_digest=attachments_hash)
    return Body(text, html, headers, attachments, attachments_hash, digest)


def store(account_id: int, bodies: list[Body], *, now: datetime) -> list[int]:
    """The content id of each body (in order), storing the account's new ones. Inside the accept's
    transaction: the contents it reuses stay locked until it commits (see the module's docstring)."""
    by_digest = {each.digest: each for each in bodies}
    ids: dict[str, int] = {}
    for _ in range(ATTEMPTS):
        ids |= _insert_or_find(account_id, [b for d, b in by_digest.items() if d not in ids], now=now)
        if len(ids) == len(by_digest):
            return [ids[each.digest] for each in bodies]
    raise RuntimeError("Message contents kept disappearing while being stored")  # pragma: no cover


def _insert_or_find(account_id: int, pending: list[Body], *, now: datetime) -> dict[str, int]:
    """The ids of `pending`'s contents: inserted (ON CONFLICT DO NOTHING: a conflicting one is neither
    returned nor locked) or found among the account's, found ones locked FOR KEY SHARE on PostgreSQL.
    A body found by neither (deleted by the purge under our lock, or committed by another accept after
    this statement began) is left for `store`'s next attempt."""
    insert, insert_params = _insert_sql(account_id, pending, now=now)
    digests = [each.digest for each in pending]
    if connection.vendor == "postgresql":
        # One round trip. The statement's snapshot does not see what its own insert adds, so each body
        # is either created or existing, never both.
        find, find_params = _find_sql(account_id, digests)
        sql = (
            f"WITH created AS ({insert}), existing AS ({find} FOR KEY SHARE) "  # nosec B608: our statements
            "SELECT digest, id FROM created UNION ALL SELECT digest, id FROM existing"
        )
        return _rows(sql, insert_params + find_params)
    created = _rows(insert, insert_params)
    rest = [digest for digest in digests if digest not in created]
    return created | (_rows(*_find_sql(account_id, rest)) if rest else {})


def _insert_sql(account_id: int, pending: list[Body], *, now: datetime) -> tuple[str, list]:
    meta = MessageContent._meta
    headers, attachments, created_at = (
        meta.get_field(name) for name in ("headers", "attachments", "created_at")
    )
    created = created_at.get_db_prep_save(now, connection)
    params = []
    for each in pending:
        params += [
            account_id,
            each.digest,
            each.text,
            each.html,
            headers.get_db_prep_save(each.headers, connection),
            attachments.get_db_prep_save(each.attachments, connection),
            created,
        ]
    row = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
    sql = (
        f"INSERT INTO {_table()} ({', '.join(COLUMNS)}) VALUES {', '.join([row] * len(pending))} "  # nosec B608: our table and columns
        "ON CONFLICT (account_id, digest) DO NOTHING RETURNING digest, id"
    )
    return sql, params


def _find_sql(account_id: int, digests: list[str]) -> tuple[str, list]:
    sql = (
        f"SELECT digest, id FROM {_table()} WHERE account_id = %s "  # nosec B608: our table; values are parameters
        f"AND digest IN ({', '.join(['%s'] * len(digests))})"
    )
    return sql, [account_id, *digests]


def _rows(sql: str, params: list) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


def _table() -> str:
    return connection.ops.quote_name(MessageContent._meta.db_table)


def _unused():
    """Contents no message and no archived copy points at."""
    return MessageContent.objects.filter(
        ~Exists(Message.objects.filter(content_id=OuterRef("pk"))),
        ~Exists(ArchivedMessage.objects.filter(content_id=OuterRef("pk"))),
    )


def purge_unused(*, now: datetime | None = None) -> int:
    """Delete the contents nothing points at any more (after the archive's purge, and messages' when they
    get one), older than GRACE, a batch per transaction; how many went."""
    cutoff = (now or timezone.now()) - GRACE
    purged = 0
    while True:
        with transaction.atomic():
            candidates = list(
                _unused()
                .filter(created_at__lt=cutoff)
                .select_for_update(skip_locked=True)
                .order_by("pk")
                .values_list("pk", flat=True)[:PURGE_BATCH]
            )
            if not candidates:
                return purged
            # Again, with this statement's fresh snapshot: see the module's docstring.
            deleted, _ = _unused().filter(pk__in=candidates).delete()
        purged += deleted
        if len(candidates) < PURGE_BATCH:
            return purged
