"""Mandrill's objects, built from ours: what `subaccounts/*`, `users/info` and `messages/*` return."""

from __future__ import annotations

from typing import Any

from accounts.models import Account

from ..models import AllowlistEntry, Message, MessageEvent, Suppression, Template
from .wire import mandrill_time

STATS_KEYS = [
    "sent", "hard_bounces", "soft_bounces", "rejects", "complaints", "unsubs", "opens", "unique_opens", "clicks",
    "unique_clicks",
]  # fmt: skip


# Mandrill's names for the Usage counters (accounts/selectors.OUTCOME_COUNTERS).
STATS_NAMES = {
    "rejected": "rejects", "hard_bounced": "hard_bounces", "soft_bounced": "soft_bounces",
    "complained": "complaints", "unsubs": "unsubs", "opens": "opens", "unique_opens": "unique_opens",
    "clicks": "clicks", "unique_clicks": "unique_clicks",
}  # fmt: skip


def empty_stats() -> dict[str, int]:
    return dict.fromkeys(STATS_KEYS, 0)


def period_stats(stats: dict[str, Any], period: str, *, sent: int = 0) -> dict[str, int]:
    """One of Mandrill's stats objects (`today`, `last_30_days`…) from sending_stats' outcome counts."""
    counted = (stats.get("outcomes") or {}).get(period) or {}
    return empty_stats() | {STATS_NAMES[name]: n for name, n in counted.items()} | {"sent": sent}


def subaccount_object(
    account: Account, stats: dict[str, Any] | None, *, detailed: bool = False, reputation: int = 100
) -> dict:
    """A subaccount as `subaccounts/list` shows it; `detailed` adds what `subaccounts/info` shows."""
    stats = stats or {}
    body = {
        "id": account.public_id,
        "name": account.name,
        "custom_quota": account.hourly_limit,
        "status": "active" if account.status == Account.Status.ACTIVE else account.status,
        "reputation": reputation,
        "created_at": mandrill_time(account.created_at),
        "first_sent_at": mandrill_time(stats.get("first")),
        "sent_weekly": stats.get("weekly") or 0,
        "sent_monthly": stats.get("monthly") or 0,
        "sent_total": stats.get("total") or 0,
        # Our extensions (clients ignore unknown keys): the monthly allowance and the owner's address.
        "monthly_quota": account.monthly_limit,
        "owner_email": account.contact_email or None,
    }
    if detailed:
        body.update(
            notes=account.notes,
            sent_hourly=stats.get("hourly") or 0,
            hourly_quota=account.hourly_limit or account.monthly_limit,
            last_30_days=period_stats(stats, "last_30_days", sent=stats.get("monthly") or 0),
        )
    return body


def user_object(account: Account, stats: dict[str, Any] | None, *, reputation: int = 100) -> dict:
    """The key's own account as `users/info` shows it."""
    stats = stats or {}
    return {
        "username": account.public_id,
        "created_at": mandrill_time(account.created_at),
        "public_id": account.public_id,
        "reputation": reputation,
        "hourly_quota": account.hourly_limit or account.monthly_limit,
        "backlog": 0,
        "stats": {
            "today": period_stats(stats, "today"),
            "last_7_days": period_stats(stats, "last_7_days", sent=stats.get("weekly") or 0),
            "last_30_days": period_stats(stats, "last_30_days", sent=stats.get("monthly") or 0),
            "last_60_days": period_stats(stats, "last_60_days"),
            "last_90_days": period_stats(stats, "last_90_days"),
            "all_time": period_stats(stats, "all_time", sent=stats.get("total") or 0),
        },
    }


# Our states in Mandrill's words: held and sending mail is still "queued" to a client; failed is "bounced".
MESSAGE_STATES = {
    Message.Status.SCHEDULED: "scheduled",
    Message.Status.HELD: "queued",
    Message.Status.SENDING: "queued",
    Message.Status.FAILED: "bounced",
}


def scheduled_object(message: Message) -> dict:
    """A scheduled message as `messages/list-scheduled`, `cancel-scheduled` and `reschedule` return it."""
    return {
        "_id": message.public_id,
        "created_at": mandrill_time(message.created_at),
        "send_at": mandrill_time(message.send_at),
        "from_email": message.from_email,
        "to": message.to_email,
        "subject": message.subject,
    }


def message_content(message: Message) -> dict:
    """What `messages/content` returns: the message as it was accepted for this recipient."""
    return {
        "ts": int(message.created_at.timestamp()),
        "_id": message.public_id,
        "from_email": message.from_email,
        "from_name": message.from_name or None,
        "subject": message.subject,
        "to": {"email": message.to_email, "name": message.to_name or None},
        "tags": message.tags,
        "headers": message.headers,
        "text": message.text,
        "html": message.html,
        "attachments": [
            {"name": part["name"], "type": part.get("type"), "content": part["content"]}
            for part in message.attachments
            if not part.get("inline")
        ],
        "images": [
            {"name": part["name"], "type": part.get("type"), "content": part["content"]}
            for part in message.attachments
            if part.get("inline")
        ],
    }


def tracking_detail(events: list[MessageEvent]) -> tuple[list[dict], list[dict]]:
    """Mandrill's opens_detail and clicks_detail from a message's open and click events (bots left out,
    as from the counts)."""
    opens, clicks = [], []
    for event in events:
        if event.data.get("bot"):
            continue
        seen = {"ts": int(event.created_at.timestamp()), "ip": event.data.get("ip"),
                "location": event.data.get("location"), "ua": event.data.get("user_agent")}  # fmt: skip
        if event.kind == MessageEvent.Kind.OPEN:
            opens.append(seen)
        elif event.kind == MessageEvent.Kind.CLICK:
            clicks.append(seen | {"url": event.data.get("url")})
    return opens, clicks


def message_info(message: Message, events: list[MessageEvent] | None = None) -> dict:
    """One recipient's message as `messages/info` and `messages/search` show it. `events`: its open and
    click events, for the details (`messages/info`); search shows the counts only."""
    opens_detail, clicks_detail = tracking_detail(events or [])
    return {
        "ts": int(message.created_at.timestamp()),
        "_id": message.public_id,
        "sender": message.from_email,
        "template": None,
        "subject": message.subject,
        "email": message.to_email,
        "tags": message.tags,
        "opens": message.opens,
        "opens_detail": opens_detail,
        "clicks": message.clicks,
        "clicks_detail": clicks_detail,
        "state": MESSAGE_STATES.get(message.status, message.status),
        "metadata": message.metadata,
        "subaccount": message.account.public_id if message.account.is_subaccount else None,
        "smtp_events": [],
        "resends": [],
        "reject": {"reason": message.reject_reason, "last_event_at": mandrill_time(message.created_at)}
        if message.reject_reason
        else None,
        "diag": message.last_error or None,
    }


def template_object(template: Template) -> dict:
    """A template as `templates/*` return it: the draft, the published copy (null until published)."""
    return {
        "slug": template.slug,
        "name": template.name,
        "labels": template.labels,
        "code": template.code,
        "subject": template.subject or None,
        "from_email": template.from_email or None,
        "from_name": template.from_name or None,
        "text": template.text or None,
        "publish_name": template.name,
        "publish_code": template.publish_code,
        "publish_subject": template.publish_subject or None,
        "publish_from_email": template.publish_from_email or None,
        "publish_from_name": template.publish_from_name or None,
        "publish_text": template.publish_text or None,
        "published_at": mandrill_time(template.published_at),
        "created_at": mandrill_time(template.created_at),
        "updated_at": mandrill_time(template.updated_at),
        "draft_updated_at": mandrill_time(template.draft_updated_at),
        "is_broken_template": False,
    }


def time_series_row(row: dict) -> dict:
    """One hour of Mandrill's time series; what we do not count yet (opens, clicks…) is 0."""
    return empty_stats() | {
        "time": mandrill_time(row["hour"]),
        "sent": row["sent"],
        "rejects": row["rejects"],
        "hard_bounces": row["bounces"],
    }


def rejection_object(entry: Suppression, owner: Account) -> dict:
    return {
        "email": entry.email,
        "reason": entry.reason,
        "detail": entry.detail,
        "created_at": mandrill_time(entry.created_at),
        "last_event_at": mandrill_time(entry.last_event_at),
        "expires_at": mandrill_time(entry.expires_at),
        "expired": entry.is_expired(),
        "sender": None,
        "subaccount": owner.public_id if owner.is_subaccount else None,
    }


def allowlist_object(entry: AllowlistEntry) -> dict:
    return {"email": entry.email, "detail": entry.detail, "created_at": mandrill_time(entry.created_at)}
