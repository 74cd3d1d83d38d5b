"""The accept path: every way mail comes in (the API, SMTP) ends here.

`resolve_sender` decides who sends; `accept_messages` decides what is accepted.

Accepting is one transaction: lock-free quota reservation (accounts/quota.py), one Message per recipient,
delivery enqueued after commit. Over quota, the whole call is rejected and nothing is stored or counted.
What was answered `queued` is in the database before the answer is given, so a broker outage delays
delivery (the sweep re-enqueues) but never loses mail.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts import alerts
from accounts.errors import AccountClosed, PermissionDenied, QuotaExceeded, UnknownSubaccount
from accounts.models import Account
from accounts.quota import count_outcome, reserve_quota
from reseller import metrics

from . import content, idempotency
from .checks import check_identity, check_storable, is_valid_address
from .deliverability import suppression
from .domains import may_send_from
from .models import Message
from .outgoing import PAUSED_REASON, OutgoingMessage, Recipient, RecipientResult
from .personalisation import Personalised, personalise
from .tasks import enqueue_delivery

logger = logging.getLogger(__name__)


def account_named(*, account: Account, subaccount_id: str | None) -> Account:
    """The account a program acts for: the authenticated `account` itself, or (a master only) the
    subaccount it names. Naming one's own id means oneself, for a master as for a subaccount. Raises
    PermissionDenied (a subaccount naming another id) or UnknownSubaccount (not one of this master's:
    never was, deleted, or renewed away)."""
    if not subaccount_id or subaccount_id == account.public_id:
        return account
    if not account.is_master:
        raise PermissionDenied("A subaccount's key can only act as that subaccount.")
    named = (
        Account.objects.subaccounts_of(account)
        .select_related("parent")
        .filter(public_id=subaccount_id)
        .first()
    )
    if named is None:
        raise UnknownSubaccount(subaccount_id)
    return named


def resolve_sender(*, account: Account, subaccount_id: str | None) -> Account:
    """Which account a send comes from, for the API, send-raw and SMTP alike: `account_named`, and it
    must be open. Raises PermissionDenied, UnknownSubaccount or AccountClosed."""
    sender = account_named(account=account, subaccount_id=subaccount_id)
    require_open(sender)
    return sender


def require_open(account: Account) -> None:
    """The one closed-account rule: a closed account sends nothing. Raises AccountClosed."""
    if account.status == Account.Status.CLOSED:
        raise AccountClosed(f"{account.name} is closed and cannot send.")


def accept_messages(
    *,
    account: Account,
    message: OutgoingMessage,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> list[RecipientResult]:
    """Accept `message` for every valid recipient, or reject the whole call.

    Invalid addresses are answered `invalid` and not counted. Over the hourly or monthly limit, every
    valid recipient is answered `rejected` with the reason and nothing is stored or counted (rejected,
    not queued: the product's promise). Mail from a domain the account has not verified is rejected
    `unsigned` and not counted. A paused account's mail is stored `held` and answered `queued`
    (`sending-paused`). With `idempotency_key`, a repeat of a stored call returns its first answer and
    stores nothing (mailing/idempotency.py). Raises AccountClosed for a closed account, ValidationError
    for a message whose identity is not one address and one name or whose text cannot be stored, or a
    key reused for another message."""
    with metrics.time_accept():
        results = _accept(account=account, message=message, idempotency_key=idempotency_key, now=now)
    _count(results)
    return results


def _count(results: list[RecipientResult]) -> None:
    accepted = sum(1 for result in results if result.status in ("queued", "scheduled", "sent"))
    if accepted:
        metrics.record_accepted(accepted)
    for result in results:
        if result.status == "rejected":
            metrics.record_rejected(result.reject_reason or "rejected")
        elif result.status == "invalid":
            metrics.record_rejected("invalid")


def _accept(
    *, account: Account, message: OutgoingMessage, idempotency_key: str | None, now: datetime | None
) -> list[RecipientResult]:
    check_identity(message)
    check_storable(message)
    message = with_content_options(message)
    now = now or timezone.now()
    key = idempotency.clean_key(idempotency_key)
    if key:
        previous = idempotency.previous_answer(account=account, key=key, message=message, now=now)
        if previous is not None:
            return previous
    valid = [r for r in message.recipients if is_valid_address(r.email)]
    unsent = [RecipientResult(email=r.email, status="invalid") for r in message.recipients if r not in valid]
    if not valid:
        return unsent
    rendered = personalise(message, valid, now=now)
    if not may_send_from(account, message.from_email):
        count_outcome(account=account, outcome="rejected", n=len(valid), now=now)
        return [
            RecipientResult(email=r.email, status="rejected", reject_reason="unsigned") for r in valid
        ] + unsent
    suppressed = suppression.suppressed_among(account, [r.email for r in valid], now=now)
    if suppressed:
        # Rejected for the recipient's sake, at no cost to the quota, as Mandrill does.
        count_outcome(
            account=account,
            outcome="rejected",
            n=len([r for r in valid if r.email.lower() in suppressed]),
            now=now,
        )
        unsent = unsent + [
            RecipientResult(email=r.email, status="rejected", reject_reason=suppressed[r.email.lower()])
            for r in valid
            if r.email.lower() in suppressed
        ]
        valid = [r for r in valid if r.email.lower() not in suppressed]
        if not valid:
            return unsent
    try:
        return _store(
            account=account,
            message=message,
            recipients=valid,
            unsent=unsent,
            key=key,
            now=now,
            rendered=rendered,
        )
    except idempotency.RepeatedCall as repeated:
        return repeated.answer
    except QuotaExceeded as exc:
        count_outcome(account=account, outcome="rejected", n=len(valid), now=now)
        return [
            RecipientResult(email=r.email, status="rejected", reject_reason=exc.reason) for r in valid
        ] + unsent


def with_content_options(message: OutgoingMessage) -> OutgoingMessage:
    """Apply `inline_css` and `auto_text` once per call, before the message is split per recipient."""
    if message.inline_css and message.html:
        message = replace(message, html=content.inline_css(message.html), inline_css=False)
    if message.auto_text and message.html and not message.text:
        message = replace(message, text=content.auto_text(message.html), auto_text=False)
    return message


def _shown_recipients(message: OutgoingMessage) -> tuple[list[dict], list[dict]]:
    """With preserve_recipients, the To and Cc every copy shows; Bcc recipients are never shown."""
    if not message.preserve_recipients:
        return [], []
    shown = {"to": [], "cc": []}
    for recipient in message.recipients:
        if recipient.type in shown:
            shown[recipient.type].append({"email": recipient.email, "name": recipient.name})
    return shown["to"], shown["cc"]


@transaction.atomic(durable=True)
def _store(
    *,
    account: Account,
    message: OutgoingMessage,
    recipients: list[Recipient],
    unsent: list[RecipientResult],  # answered already: invalid or suppressed recipients
    key: str | None,
    now: datetime,
    rendered: dict[str, Personalised] | None,
) -> list[RecipientResult]:
    # A fresh row: a limit lowered a moment ago, or a pause, applies to this very send.
    account = Account.objects.select_related("parent").get(pk=account.pk)
    require_open(account)
    claimed = idempotency.claim(account=account, key=key, message=message, now=now) if key else None
    used = reserve_quota(account=account, n=len(recipients), now=now)
    held = account.status == Account.Status.PAUSED
    scheduled = message.send_at is not None and message.send_at > now
    status = Message.Status.SCHEDULED if scheduled else Message.Status.HELD if held else Message.Status.QUEUED
    shown_to, shown_cc = _shown_recipients(message)
    rows = Message.objects.bulk_create(
        [
            Message(
                account=account,
                from_email=message.from_email,
                from_name=message.from_name,
                to_email=recipient.email,
                to_name=recipient.name,
                to_type=recipient.type,
                subject=content.subject_line(
                    rendered[recipient.email].subject if rendered else message.subject
                ),
                text=rendered[recipient.email].text if rendered else message.text,
                html=rendered[recipient.email].html if rendered else message.html,
                headers=message.headers,
                attachments=message.attachments,
                tags=message.tags,
                metadata={**message.metadata, **message.recipient_metadata.get(recipient.email, {})},
                template=message.template,
                shown_to=shown_to,
                shown_cc=shown_cc,
                bcc_address=message.bcc_address,
                important=message.important,
                status=status,
                queued_reason=PAUSED_REASON if status == Message.Status.HELD else "",
                archive=account.archiving_enabled,
                send_at=message.send_at if scheduled else None,
                next_attempt_at=message.send_at if scheduled else now,
            )
            for recipient in recipients
        ]
    )
    if status == Message.Status.QUEUED:
        ids = [row.pk for row in rows]
        transaction.on_commit(lambda: enqueue_delivery(ids))
    if alerts.crossed_now(account, before=used - len(recipients), after=used):
        transaction.on_commit(lambda: alerts.check_limit_alerts(account=account, now=now))
    answer = [
        RecipientResult(
            email=row.to_email,
            status="scheduled" if scheduled else "queued",
            queued_reason=PAUSED_REASON if status == Message.Status.HELD else None,
            id=row.public_id,
        )
        for row in rows
    ] + unsent
    if claimed is not None:
        idempotency.record_answer(claimed, answer)
    return answer
