"""The webhooks themselves: added (after Mandrill's check that the URL answers), changed, deleted, their
key reset; and the reads the page and the API need. Each write is one action in the style of the other
services (tenant first, then the role, then the write, then the audit row). The URL check is network I/O
and runs before the transaction, never inside it."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.db import transaction
from django.db.models import Max, QuerySet

from accounts.audit import record
from accounts.errors import ValidationError
from accounts.models import Account, AuditEvent, Membership, User
from accounts.permissions import ApiCaller, require_not_impersonating, require_role

from ..models import MessageEvent, Webhook, WebhookAttempt, new_webhook_key
from . import signing, transport
from .payload import ACCOUNT_EVENTS, MESSAGE_EVENTS

DESCRIPTION_MAX_LENGTH = 200
MAX_WEBHOOKS = 20  # per account, as a guard; Mandrill's own limit is not documented
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

Actor = User | ApiCaller


def event_choices(account: Account) -> list[str]:
    """The events this account's webhooks may ask for: Mandrill's, and for a master our account events."""
    return MESSAGE_EVENTS + (ACCOUNT_EVENTS if account.is_master else [])


def clean_events(account: Account, events: list[str] | None) -> list[str]:
    """Mandrill's event names (all message events when none are given). Raises ValidationError."""
    if not events:
        return list(MESSAGE_EVENTS)
    allowed = event_choices(account)
    unknown = [event for event in events if event not in allowed]
    if unknown:
        extra = "" if account.is_master else " (account events are for master accounts)"
        raise ValidationError(
            f"Unknown webhook event {unknown[0]!r}{extra}; choose from: {', '.join(allowed)}.", field="events"
        )
    return list(dict.fromkeys(events))


def check_url(url: str) -> None:
    """Mandrill's check that a URL takes webhooks: a HEAD answered 2xx, or else a POST of an empty batch
    (`mandrill_events=[]`) signed with the key `test-webhook` answered 2xx. Raises ValidationError."""
    target = transport.parse_url(url)
    transport.checked_addresses(target)
    head = transport.send("HEAD", url)
    if head.ok:
        return
    fields = {"mandrill_events": "[]"}
    post = transport.send(
        "POST",
        url,
        body=urlencode(fields).encode("ascii"),
        headers={
            "Content-Type": FORM_CONTENT_TYPE,
            "X-Mandrill-Signature": signing.signature(key=signing.TEST_KEY, url=url, fields=fields),
        },
    )
    if not post.ok:
        raise ValidationError(
            f"{url} did not accept the check: a HEAD request got “{head.error}”, and a test POST got "
            f"“{post.error}”. The URL must answer 200 to either.",
            field="url",
        )


def webhooks_for(account: Account) -> QuerySet[Webhook]:
    return Webhook.objects.for_account(account).order_by("pk")


def webhook_of(account: Account, webhook_id: int) -> Webhook:
    """Raises Webhook.DoesNotExist for another account's (or no) webhook."""
    return Webhook.objects.for_account(account).get(pk=webhook_id)


def recent_attempts(webhook: Webhook, n: int = 10) -> list[WebhookAttempt]:
    return list(webhook.attempts_made.all()[:n])


def _clean_description(description: str) -> str:
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise ValidationError(
            f"The description is longer than {DESCRIPTION_MAX_LENGTH} characters.", field="description"
        )
    return description


def add_webhook(
    *, actor: Actor, account: Account, url: str, description: str = "", events: list[str] | None = None,
    include_subaccounts: bool = False, real_actor: User | None = None,
) -> Webhook:  # fmt: skip
    """A new webhook, owed the events from now on. Raises PermissionDenied (viewer), ValidationError (a bad
    or unsafe URL, one that fails the check, unknown events)."""
    require_role(actor, account, Membership.Role.ADMIN)
    url = url.strip()
    events = clean_events(account, events)
    description = _clean_description(description)
    if include_subaccounts and not account.is_master:
        raise ValidationError("Only a master account's webhooks can include subaccounts.", field="events")
    if Webhook.objects.for_account(account).count() >= MAX_WEBHOOKS:
        raise ValidationError(f"An account can have at most {MAX_WEBHOOKS} webhooks.")
    check_url(url)
    return _create(
        actor=actor, account=account, url=url, description=description, events=events,
        include_subaccounts=include_subaccounts, real_actor=real_actor,
    )  # fmt: skip


@transaction.atomic(durable=True)
def _create(*, actor, account, url, description, events, include_subaccounts, real_actor) -> Webhook:
    webhook = Webhook.objects.create(
        account=account, url=url, description=description, events=events,
        include_subaccounts=include_subaccounts,
        # Owed what happens from now on, not the account's history.
        message_cursor=MessageEvent.objects.aggregate(last=Max("pk"))["last"] or 0,
        account_cursor=AuditEvent.objects.aggregate(last=Max("pk"))["last"] or 0,
    )  # fmt: skip
    record(actor=actor, real_actor=real_actor, account=account, action="webhook.added",
           after={"url": shown_url(url), "events": events})  # fmt: skip
    return webhook


def update_webhook(
    *, actor: Actor, account: Account, webhook_id: int, url: str, description: str | None = None,
    events: list[str] | None = None, include_subaccounts: bool | None = None, real_actor: User | None = None,
) -> Webhook:  # fmt: skip
    """Change a webhook; a new URL is checked first. Saving a disabled webhook turns it back on (its owner
    has presumably fixed the receiver). Raises Webhook.DoesNotExist, PermissionDenied, ValidationError."""
    webhook = webhook_of(account, webhook_id)
    require_role(actor, account, Membership.Role.ADMIN)
    url = url.strip()
    events = clean_events(account, events) if events is not None else webhook.events
    description = _clean_description(description) if description is not None else webhook.description
    if include_subaccounts and not account.is_master:
        raise ValidationError("Only a master account's webhooks can include subaccounts.", field="events")
    if url != webhook.url:
        check_url(url)
    with transaction.atomic(durable=True):
        webhook = Webhook.objects.for_account(account).select_for_update().get(pk=webhook_id)
        before_url = webhook.url
        before = {"url": shown_url(webhook.url), "events": webhook.events, "description": webhook.description}
        webhook.url, webhook.description, webhook.events = url, description, events
        if include_subaccounts is not None:
            webhook.include_subaccounts = include_subaccounts
        if webhook.disabled_at or url != before_url:
            # Turned back on, or pointed at a (checked) new receiver: no reason to wait out the old backoff.
            webhook.disabled_at = webhook.failing_since = webhook.next_attempt_at = None
            webhook.attempts = 0
        webhook.save()
        record(actor=actor, real_actor=real_actor, account=account, action="webhook.updated", before=before,
               after={"url": shown_url(url), "events": events, "description": description})  # fmt: skip
    return webhook


@transaction.atomic(durable=True)
def delete_webhook(
    *, actor: Actor, account: Account, webhook_id: int, real_actor: User | None = None
) -> Webhook:
    """Raises Webhook.DoesNotExist, PermissionDenied. Returns the webhook as it was."""
    webhook = Webhook.objects.for_account(account).select_for_update().get(pk=webhook_id)
    require_role(actor, account, Membership.Role.ADMIN)
    record(actor=actor, real_actor=real_actor, account=account, action="webhook.deleted",
           before={"url": shown_url(webhook.url)})  # fmt: skip
    webhook.delete()
    webhook.pk = webhook_id  # the answer shows the id that was deleted
    return webhook


@transaction.atomic(durable=True)
def reset_webhook_key(
    *, actor: Actor, account: Account, webhook_id: int, real_actor: User | None = None
) -> Webhook:
    """A new auth_key: from the next POST on, receivers must check against it. A key is a secret of the
    account's own people, so an agency visiting as the owner may not make one. Raises Webhook.DoesNotExist,
    PermissionDenied."""
    webhook = Webhook.objects.for_account(account).select_for_update().get(pk=webhook_id)
    require_role(actor, account, Membership.Role.ADMIN)
    require_not_impersonating(real_actor, "Resetting a webhook key")
    webhook.auth_key = new_webhook_key()
    webhook.save(update_fields=["auth_key"])
    record(actor=actor, real_actor=real_actor, account=account, action="webhook.key_reset",
           after={"url": shown_url(webhook.url)})  # fmt: skip
    return webhook


def shown_url(url: str) -> str:
    """The URL as the audit trail keeps it: without a password in it."""
    target = transport.parse_url(url) if url else None
    if target and target.password:
        return str(target.url.copy_with(username=target.username, password="***"))  # nosec B106 - a mask
    return url


def events_json(events: list[dict]) -> str:
    """The one JSON text a batch is signed over and sent as (compact, UTF-8 kept)."""
    return json.dumps(events, separators=(",", ":"), ensure_ascii=False)
