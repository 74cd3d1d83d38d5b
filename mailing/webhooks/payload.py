"""Mandrill's webhook events, built from ours. A message event is Mandrill's (`event`, `_id`, `ts`, and
`msg` as messages/info shows it); an account event (our extension, `account.*` and `domain.*`) has the same
envelope (`event`, `_id`, `ts`) and carries the account it is about. Receivers that do not know an event
name (django-anymail, for one) report it as "unknown", so mixed batches still validate and parse."""

from __future__ import annotations

from collections import defaultdict

from accounts.models import AuditEvent

from ..models import Message, MessageEvent

Kind = MessageEvent.Kind
MESSAGE_EVENTS = [kind.value for kind in Kind]

# Our account events, and the audit trail's actions they come from.
ACCOUNT_EVENT_ACTIONS = {
    "account.limit_alert": "limit.alert",
    "account.paused": "subaccount.paused",
    "account.auto_paused": "subaccount.auto_paused",
    "account.resumed": "subaccount.resumed",
    "account.closed": "subaccount.closed",
    "account.reopened": "subaccount.reopened",
    "account.renewed": "account.renewed",
    "domain.verification_failed": "domain.verification_failed",
}
EVENT_OF_ACTION = {action: event for event, action in ACCOUNT_EVENT_ACTIONS.items()}
ACCOUNT_EVENTS = list(ACCOUNT_EVENT_ACTIONS)

# The message's state as Mandrill's `msg.state` says it, after this event.
STATE_AFTER = {
    Kind.SEND: "sent",
    Kind.DEFERRAL: "deferred",
    Kind.HARD_BOUNCE: "bounced",
    Kind.SOFT_BOUNCE: "soft-bounced",
    Kind.REJECT: "rejected",
}
STATE_OF_STATUS = {
    Message.Status.SENT: "sent",
    Message.Status.BOUNCED: "bounced",
    Message.Status.FAILED: "bounced",
    Message.Status.REJECTED: "rejected",
}
SMTP_EVENT_TYPE = {
    Kind.SEND: "sent",
    Kind.DEFERRAL: "deferred",
    Kind.SOFT_BOUNCE: "deferred",
    Kind.HARD_BOUNCE: "bounced",
}
# Receivers read these from the event itself for opens and clicks (tracking stores them in `data`).
ENGAGEMENT_KEYS = ("url", "user_agent", "ip", "location", "user_agent_parsed")


def _ts(moment) -> int:
    return int(moment.timestamp())


def engagement_of(events: list[MessageEvent]) -> dict[int, dict[str, list]]:
    """The opens and clicks so far of the batch's messages (one query), as `msg.opens` / `msg.clicks`."""
    found: dict[int, dict[str, list]] = defaultdict(lambda: {"opens": [], "clicks": []})
    message_ids = {event.message_id for event in events}
    rows = MessageEvent.objects.filter(message_id__in=message_ids, kind__in=[Kind.OPEN, Kind.CLICK])
    for row in rows.order_by("id").only("message_id", "kind", "created_at", "data"):
        if row.kind == Kind.OPEN:
            found[row.message_id]["opens"].append({"ts": _ts(row.created_at)})
        else:
            found[row.message_id]["clicks"].append({"ts": _ts(row.created_at), "url": row.data.get("url")})
    return found


def message_event(event: MessageEvent, engagement: dict[str, list] | None = None) -> dict:
    """One MessageEvent as Mandrill posts it. `event.message.account` should be selected with it."""
    message = event.message
    data = event.data or {}
    smtp_type = SMTP_EVENT_TYPE.get(event.kind)
    msg = {
        "_id": message.public_id,
        "_version": str(message.attempts or 1),
        "ts": _ts(message.sent_at or message.created_at),
        "subject": message.subject,
        "email": message.to_email,
        "sender": message.from_email,
        "tags": list(message.tags or []),
        "metadata": dict(message.metadata or {}),  # {} when empty, never []: receivers expect an object
        "subaccount": message.account.public_id if message.account.is_subaccount else None,
        "state": STATE_AFTER.get(event.kind) or STATE_OF_STATUS.get(message.status, "sent"),
        "template": message.template or None,
        "opens": (engagement or {}).get("opens", []),
        "clicks": (engagement or {}).get("clicks", []),
        "smtp_events": [
            {"ts": _ts(event.created_at), "type": smtp_type, "diag": event.diagnostic, "source_ip": None,
             "destination_ip": None, "size": 0}
        ] if smtp_type else [],
        "resends": [],
    }  # fmt: skip
    if event.kind in (Kind.HARD_BOUNCE, Kind.SOFT_BOUNCE, Kind.DEFERRAL, Kind.REJECT, Kind.SPAM):
        msg["diag"] = event.diagnostic
        msg["bounce_description"] = data.get("bounce_description") or _bounce_description(event)
    body = {"event": event.kind, "_id": message.public_id, "ts": _ts(event.created_at), "msg": msg}
    if event.kind in (Kind.OPEN, Kind.CLICK):
        body.update(
            {key: data.get(key) for key in ENGAGEMENT_KEYS if key != "url" or event.kind == Kind.CLICK}
        )
    return body


def _bounce_description(event: MessageEvent) -> str:
    if event.kind == Kind.HARD_BOUNCE:
        return "bad_mailbox"
    if event.kind == Kind.SOFT_BOUNCE:
        return "mailbox_full" if "full" in event.diagnostic.lower() else "general"
    return ""


def account_event(audit: AuditEvent) -> dict:
    """One of our account events (★ extension): the audit row it comes from, in Mandrill's envelope."""
    account = audit.account
    return {
        "event": EVENT_OF_ACTION[audit.action],
        "_id": f"account-event-{audit.pk}",
        "ts": _ts(audit.created_at),
        "account": {
            "id": account.public_id if account else None,
            "name": account.name if account else audit.account_label,
            "kind": account.kind if account else None,
            "status": account.status if account else None,
        },
        # The agency's subaccount it was about (a renewed one included: it was theirs then); None for the
        # master's own events (its domains).
        "subaccount": account.public_id if account and account.pk != audit.master_id else None,
        "actor": audit.actor_label or "system",
        "before": audit.before,
        "after": audit.after,
    }


def test_events(*, kinds: list[str], subaccount: str | None, now_ts: int) -> list[dict]:
    """The sample batch the page's "Send a test batch" posts: one made-up event of each chosen message kind,
    as Mandrill's own test batch does (its ids are all zeros)."""
    sample = []
    for kind in kinds:
        if kind not in MESSAGE_EVENTS:
            continue
        msg = {
            "_id": "0" * 32, "_version": "1", "ts": now_ts, "subject": "This an example webhook message",
            "email": "example.webhook@mandrillapp.com", "sender": "example.sender@mandrillapp.com",
            "tags": ["webhook-example"], "metadata": {}, "subaccount": subaccount,
            "state": STATE_AFTER.get(kind, "sent"), "template": None, "opens": [], "clicks": [],
            "smtp_events": [], "resends": [],
        }  # fmt: skip
        event = {"event": kind, "_id": "0" * 32, "ts": now_ts, "msg": msg}
        if kind == Kind.CLICK:
            event["url"] = "http://mandrill.com"
        sample.append(event)
    return sample
