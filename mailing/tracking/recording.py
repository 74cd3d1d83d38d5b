"""What a recipient did with a message: opened it, clicked one of its links, unsubscribed. Each is a
MessageEvent (with what Mandrill's webhooks carry: ip, user_agent, location, url) and counters: on the
message (opens, clicks, the first of each) and in the account's hourly Usage (`opens`, `unique_opens`,
`clicks`, `unique_clicks`, `unsubs`: what pages and the API's stats read).

"Unique" is the first open (click) of a message: decided by one conditional UPDATE on the message, so two
simultaneous opens count one unique. Prefetching proxies and link scanners (tracking/bots.py) get an event
marked `bot` and no counter: they are not people reading. None of this needs the quota or a login."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from django.db import connection, transaction
from django.utils import timezone

from accounts.quota import count_outcome, count_outcomes

from ..deliverability import suppression
from ..models import Message, MessageEvent, Suppression
from . import links
from .bots import is_bot

Kind = MessageEvent.Kind


@dataclass(frozen=True)
class Visit:
    """Who fetched a tracking URL, as the request says (for the event; nothing is trusted from it)."""

    ip: str = ""
    user_agent: str = ""


def _tracked(public_id: str) -> Message | None:
    return (
        Message.objects.select_related("account")
        .only(
            "pk",
            "public_id",
            "account",
            "track_opens",
            "track_clicks",
            "url_strip_qs",
            "tracked_links",
            "to_email",
        )
        .filter(public_id=public_id)
        .first()
    )


def _visit_data(visit: Visit) -> dict:
    return {
        "ip": visit.ip[:64],
        "user_agent": visit.user_agent[:1000],
        "user_agent_parsed": None,
        "location": None,  # no geolocation database here
        "bot": is_bot(visit.user_agent),
    }


# One statement counts the hit and tells whether it was the message's first: the row lock orders
# concurrent hits, and only the one that found the column empty sees it equal to its own time.
COUNT_SQL = """
UPDATE mailing_message SET {counter} = {counter} + 1, {first} = COALESCE({first}, %(now)s)
WHERE id = %(pk)s RETURNING {first} = %(now)s"""


def _count_on_message(message: Message, *, first_field: str, counter: str, now: datetime) -> bool:
    sql = COUNT_SQL.format(counter=counter, first=first_field)  # nosec B608: column names from this module
    with connection.cursor() as cursor:
        cursor.execute(sql, {"now": now, "pk": message.pk})
        row = cursor.fetchone()
    return bool(row and row[0])


@transaction.atomic
def _record(
    message: Message, *, kind: str, data: dict, first_field: str, counter: str, now: datetime
) -> None:
    MessageEvent.objects.create(message=message, account_id=message.account_id, kind=kind, created_at=now,
                                data=data)  # fmt: skip
    if data["bot"]:
        return
    first = _count_on_message(message, first_field=first_field, counter=counter, now=now)
    count_outcomes(account=message.account, counts={counter: 1, f"unique_{counter}": int(first)}, now=now)


def record_open(*, public_id: str, visit: Visit, now: datetime | None = None) -> bool:
    """The pixel of message `public_id` was fetched. False (nothing recorded) for an unknown message or
    one sent without open tracking."""
    message = _tracked(public_id)
    if message is None or not message.track_opens:
        return False
    _record(message, kind=Kind.OPEN, data=_visit_data(visit), first_field="first_opened_at", counter="opens",
            now=now or timezone.now())  # fmt: skip
    return True


def link_of(*, public_id: str, index: int) -> str | None:
    """Where link `index` of message `public_id` leads, recording nothing (a HEAD from a scanner)."""
    message = _tracked(public_id)
    if message is None or not message.track_clicks or not 0 <= index < len(message.tracked_links):
        return None
    return message.tracked_links[index]


def record_click(*, public_id: str, index: int, visit: Visit, now: datetime | None = None) -> str | None:
    """Link `index` of message `public_id` was followed: the URL to send the visitor to (only ever one the
    message held), or None for an unknown message or link."""
    message = _tracked(public_id)
    if message is None or not message.track_clicks or not 0 <= index < len(message.tracked_links):
        return None
    url = message.tracked_links[index]
    reported = links.without_query(url) if message.url_strip_qs else url
    _record(message, kind=Kind.CLICK, data={"url": reported, **_visit_data(visit)}, first_field="first_clicked_at",
            counter="clicks", now=now or timezone.now())  # fmt: skip
    return url


def redirect_after_unsubscribe(message: Message, redirect: str) -> str:
    """`*|UNSUB:https://…|*` sends the recipient on to the sender's page: only to a page that this very
    message named (its stored body holds the link with that redirect), so the link cannot be reused to
    send people anywhere. "" when there is none."""
    if not redirect.lower().startswith(("https://", "http://")):
        return ""
    named = "redirect=" + quote(redirect, safe="", errors="replace")
    body = Message.objects.filter(pk=message.pk).values_list("content__html", "content__text").first()
    parts = [part or "" for part in body or ()]  # no content: a rejected message, which sent nothing
    return redirect if any(named in part or html.escape(named) in part for part in parts) else ""


def unsubscribable(*, public_id: str) -> bool:
    return Message.objects.filter(public_id=public_id).exists()


@transaction.atomic
def unsubscribe(*, public_id: str, visit: Visit, now: datetime | None = None) -> Message | None:
    """The recipient of message `public_id` unsubscribes: an `unsub` event, the address on the account's
    suppression list (reason `unsub`: later sends to it are rejected at no quota cost), one `unsubs` in
    Usage. Once per message: a repeat (a mail provider's one-click POST, then the person's click) changes
    nothing. None for an unknown message."""
    message = (
        Message.objects.select_for_update(of=("self",))
        .select_related("account")
        .filter(public_id=public_id)
        .first()
    )
    if message is None:
        return None
    if MessageEvent.objects.filter(message=message, kind=Kind.UNSUB).exists():
        return message
    now = now or timezone.now()
    MessageEvent.objects.create(message=message, account_id=message.account_id, kind=Kind.UNSUB, created_at=now,
                                data={"ip": visit.ip[:64], "user_agent": visit.user_agent[:1000]})  # fmt: skip
    suppression.suppress(account=message.account, email=message.to_email, reason=Suppression.Reason.UNSUB,
                         detail=f"Unsubscribed from message {message.public_id}")  # fmt: skip
    count_outcome(account=message.account, outcome="unsubs", n=1, now=now)
    return message
