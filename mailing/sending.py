"""The accept path: every way mail comes in (the API, SMTP) ends here.

`resolve_sender` decides who sends; `accept_messages` decides what is accepted.

Accepting is one transaction: lock-free quota reservation (accounts/quota.py), each distinct body stored
once (mailing/bodies.py), one Message per recipient pointing at it, delivery enqueued after commit. Over
quota, the whole call is rejected and nothing is stored or counted. What was answered `queued` is in the
database before the answer is given, so a broker outage delays delivery (the sweep re-enqueues) but never
loses mail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import alerts
from accounts.errors import AccountClosed, PermissionDenied, QuotaExceeded, UnknownSubaccount
from accounts.models import Account
from accounts.quota import count_outcome, reserve_quota
from reseller import metrics
from reseller.process_cache import TTLCache

from . import bodies, bulk, content, idempotency
from .checks import check_identity, check_storable, is_valid_address
from .deliverability import suppression
from .domains import may_send_from
from .models import Message, MessageEvent, new_public_id
from .outgoing import PAUSED_REASON, OutgoingMessage, Recipient, RecipientResult
from .personalisation import Personalised, personalise, wants_merge
from .tasks import enqueue_delivery
from .tracking import decorate, tokens

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


# The subaccounts masters named lately, by (master, id), for API_KEY_CACHE_SECONDS: a program sending
# as its customers names one on every call. Stale entries cannot send wrongly: the accept path reads the
# sender's row again inside its transaction and refuses one deleted, renewed away or closed since.
named_senders: TTLCache[Account] = TTLCache(lambda: settings.API_KEY_CACHE_SECONDS)


def resolve_sender(*, account: Account, subaccount_id: str | None) -> Account:
    """Which account a send comes from, for the API, send-raw and SMTP alike: `account_named`, and it
    must be open. Raises PermissionDenied, UnknownSubaccount or AccountClosed. A subaccount named by its
    master may come from this process's cache (`named_senders`): `accept_messages` checks it again."""
    if subaccount_id and subaccount_id != account.public_id and account.is_master:
        sender = named_senders.get((account.pk, subaccount_id))
        if sender is None:
            sender = account_named(account=account, subaccount_id=subaccount_id)
            named_senders.put((account.pk, subaccount_id), sender)
    else:
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
    # Each address checked once; `r not in valid` compared every recipient with every other (quadratic).
    checked = [(r, is_valid_address(r.email)) for r in message.recipients]
    valid = [r for r, ok in checked if ok]
    unsent = [RecipientResult(email=r.email, status="invalid") for r, ok in checked if not ok]
    if not valid:
        return unsent
    # Each recipient's message id is known before the merge, so its unsubscribe link can name it.
    public_ids = {r.email: new_public_id() for r in valid}
    unsubscribe_urls = (
        {email: tokens.unsubscribe_url(public_id) for email, public_id in public_ids.items()}
        if wants_merge(message)
        else None
    )
    rendered = personalise(message, valid, now=now, unsubscribe_urls=unsubscribe_urls)
    draft = Draft(message=message, rendered=rendered, public_ids=public_ids)
    if not may_send_from(account, message.from_email):
        return reject(account=account, draft=draft, recipients=valid, reason="unsigned", now=now) + unsent
    suppressed = suppression.suppressed_among(account, [r.email for r in valid], now=now)
    if suppressed:
        # Rejected for the recipient's sake, at no cost to the quota, as Mandrill does.
        refused = [r for r in valid if r.email.lower() in suppressed]
        unsent = unsent + reject(account=account, draft=draft, recipients=refused, reason=suppressed, now=now)
        valid = [r for r in valid if r.email.lower() not in suppressed]
        if not valid:
            return unsent
    try:
        return _store(account=account, draft=draft, recipients=valid, unsent=unsent, key=key, now=now)
    except idempotency.RepeatedCall as repeated:
        return repeated.answer
    except QuotaExceeded as exc:
        return reject(account=account, draft=draft, recipients=valid, reason=exc.reason, now=now) + unsent


@dataclass(frozen=True)
class Draft:
    """A message on its way to being stored: as submitted, merged per recipient (None: not merged), and
    each recipient's message id (chosen before the merge, for the unsubscribe link)."""

    message: OutgoingMessage
    rendered: dict[str, Personalised] | None
    public_ids: dict[str, str]

    def subject_for(self, recipient: Recipient) -> str:
        """The recipient's subject, on one line (content.subject_line)."""
        subject = self.rendered[recipient.email].subject if self.rendered else self.message.subject
        return content.subject_line(subject)

    def public_ids_for(self, recipients: list[Recipient]) -> list[str]:
        """One id per recipient row; a recipient listed twice gets a fresh id for each further row."""
        given, ids = set(), []
        for recipient in recipients:
            public_id = self.public_ids.get(recipient.email) or new_public_id()
            ids.append(new_public_id() if public_id in given else public_id)
            given.add(ids[-1])
        return ids


@transaction.atomic
def reject(
    *,
    account: Account,
    draft: Draft,
    recipients: list[Recipient],
    reason: str | dict[str, str],
    now: datetime,
) -> list[RecipientResult]:
    """Refuse these recipients (`reason`, or a reason per lower-cased address) and keep a record of each:
    a `rejected` Message without its body (when, from, to, subject, reason, tags, metadata), its `reject`
    event, and the Usage `rejected` counter, so the log, messages/search and the charts tell the same
    story. Nothing is queued and no quota is used. Two bulk inserts and one counter, whatever the count."""
    if not recipients:
        return []
    message = draft.message
    reasons = [reason if isinstance(reason, str) else reason[r.email.lower()] for r in recipients]
    rows = Message.objects.bulk_create(
        Message(
            account=account,
            public_id=public_id,
            from_email=message.from_email,
            from_name=message.from_name,
            to_email=recipient.email,
            to_name=recipient.name,
            to_type=recipient.type,
            subject=draft.subject_for(recipient),
            tags=message.tags,
            metadata={**message.metadata, **message.recipient_metadata.get(recipient.email, {})},
            template=message.template,
            status=Message.Status.REJECTED,
            reject_reason=why,
            next_attempt_at=None,
        )
        for recipient, public_id, why in zip(
            recipients, draft.public_ids_for(recipients), reasons, strict=True
        )
    )
    MessageEvent.objects.bulk_create(
        MessageEvent(
            message=row,
            account_id=account.pk,
            kind=MessageEvent.Kind.REJECT,
            created_at=now,
            diagnostic=row.reject_reason,
            data={"reason": row.reject_reason},
        )
        for row in rows
    )
    count_outcome(account=account, outcome="rejected", n=len(rows), now=now)
    return [
        RecipientResult(
            email=row.to_email, status="rejected", reject_reason=row.reject_reason, id=row.public_id
        )
        for row in rows
    ]


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
    draft: Draft,
    recipients: list[Recipient],
    unsent: list[RecipientResult],  # answered already: invalid or suppressed recipients
    key: str | None,
    now: datetime,
) -> list[RecipientResult]:
    """Store the call's rows and count them, in one transaction. The quota is reserved last, just
    before the commit: the reservation's UPDATEs lock the account's hourly and monthly Usage rows until
    the commit, and every concurrent send of that account (and the alert scan) waits on those two rows,
    so they are held for two statements rather than for the insert as well. Exactness does not depend
    on the order: a call that does not fit raises QuotaExceeded and its insert rolls back with it (an
    over-quota call now pays for an insert it throws away; a refused call is the rare one)."""
    message = draft.message
    # A fresh row: a limit lowered a moment ago, or a pause, applies to this very send; and a sender
    # resolved from the cache (resolve_sender) is still the one named: not deleted or renewed away since.
    # Its master comes from the caller's copy (only the alert thresholds are read from it, and the alert
    # check reads its own): joining it here cost more in the ORM than the query itself.
    try:
        fresh = Account.objects.get(pk=account.pk)
    except Account.DoesNotExist:
        raise UnknownSubaccount(account.public_id) from None
    if fresh.parent_id != account.parent_id:
        raise UnknownSubaccount(account.public_id)
    if fresh.parent_id and Account.parent.is_cached(account):
        fresh.parent = account.parent
    account = fresh
    require_open(account)
    claimed = idempotency.claim(account=account, key=key, message=message, now=now) if key else None
    held = account.status == Account.Status.PAUSED
    scheduled = message.send_at is not None and message.send_at > now
    status = Message.Status.SCHEDULED if scheduled else Message.Status.HELD if held else Message.Status.QUEUED
    content_ids = bodies.store(account.pk, _bodies(draft, recipients), now=now)
    shared, each = _rows(account=account, draft=draft, recipients=recipients, content_ids=content_ids,
                         status=status, now=now)  # fmt: skip
    ids = bulk.insert(Message, shared=shared, each=each)
    answer = [
        RecipientResult(
            email=email,
            status="scheduled" if scheduled else "queued",
            queued_reason=PAUSED_REASON if status == Message.Status.HELD else None,
            id=public_id,
        )
        for email, public_id in zip(each["to_email"], each["public_id"], strict=True)
    ] + unsent
    if claimed is not None:
        idempotency.record_answer(claimed, answer)
    used = reserve_quota(account=account, n=len(recipients), now=now)  # last: see the docstring
    if status == Message.Status.QUEUED:
        transaction.on_commit(lambda: enqueue_delivery(ids))
    if alerts.crossed_now(account, before=used - len(recipients), after=used):
        transaction.on_commit(lambda: alerts.check_limit_alerts(account=account, now=now))
    return answer


def _bodies(draft: Draft, recipients: list[Recipient]) -> list[bodies.Body]:
    """Each recipient's body: the call's own, or the recipient's merged one (the headers and attachments
    are the call's either way, the attachments hashed once)."""
    message, rendered = draft.message, draft.rendered
    shared = bodies.body(
        text=message.text, html=message.html, headers=message.headers, attachments=message.attachments
    )
    if not rendered:
        return [shared] * len(recipients)
    return [
        bodies.body(
            text=rendered[r.email].text,
            html=rendered[r.email].html,
            headers=message.headers,
            attachments=message.attachments,
            attachments_hash=shared.attachments_digest,
        )
        for r in recipients
    ]


def _rows(
    *,
    account: Account,
    draft: Draft,
    recipients: list[Recipient],
    content_ids: list[int],
    status: str,
    now: datetime,
) -> tuple[dict, dict[str, list]]:
    """The call's Message rows, one per recipient, column-wise (mailing/bulk.py): what every row shares,
    and one value per recipient of the columns that differ. What is the same for every recipient
    (everything, unless the message is merged per recipient) is worked out once per call: the subject
    line, the body and the links to track."""
    message, rendered = draft.message, draft.rendered
    scheduled = status == Message.Status.SCHEDULED
    shown_to, shown_cc = _shown_recipients(message)
    track_opens = account.track_opens if message.track_opens is None else message.track_opens
    track_clicks = account.track_clicks if message.track_clicks is None else message.track_clicks
    shared = {
        "account_id": account.pk,
        "from_email": message.from_email,
        "from_name": message.from_name,
        "tags": message.tags,
        "template": message.template,
        "shown_to": shown_to,
        "shown_cc": shown_cc,
        "bcc_address": message.bcc_address,
        "important": message.important,
        "status": status,
        "queued_reason": PAUSED_REASON if status == Message.Status.HELD else "",
        "archive": account.archiving_enabled,
        "send_at": message.send_at if scheduled else None,
        "next_attempt_at": message.send_at if scheduled else now,
        "track_opens": track_opens,
        "track_clicks": track_clicks,
        "url_strip_qs": message.url_strip_qs,
    }
    each = {
        "public_id": draft.public_ids_for(recipients),
        "to_email": [r.email for r in recipients],
        "to_name": [r.name for r in recipients],
        "to_type": [r.type for r in recipients],
    }
    if message.recipient_metadata:
        extra = message.recipient_metadata
        each["metadata"] = [{**message.metadata, **extra.get(r.email, {})} for r in recipients]
    else:
        shared["metadata"] = message.metadata
    if rendered:
        each["subject"] = [draft.subject_for(r) for r in recipients]
        each["content_id"] = content_ids
    else:
        shared["subject"] = content.subject_line(message.subject)
        shared["content_id"] = content_ids[0]
    if track_clicks and rendered:
        each["tracked_links"] = [
            decorate.links_to_track(html_body=rendered[r.email].html, text_body=rendered[r.email].text)
            for r in recipients
        ]
    else:
        shared["tracked_links"] = (
            decorate.links_to_track(html_body=message.html, text_body=message.text) if track_clicks else []
        )
    return shared, each
