"""Mandrill's merge applied to a message, once per recipient, at accept time: the subject first (so
*|MC:SUBJECT|* sees it merged), then the HTML and the text, with the recipient's merge variables over
the global ones. A message that cannot be merged for any recipient is refused before anything is stored
or counted, so a broken template never reaches an inbox.

Rendering happens here, outside the quota transaction, because it can be the most expensive step of an
accept and must not hold the account's Usage rows locked (mailing/sending.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from accounts.errors import ValidationError

from . import merge
from .outgoing import OutgoingMessage, Recipient


@dataclass(frozen=True)
class Personalised:
    subject: str
    html: str
    text: str


def wants_merge(message: OutgoingMessage) -> bool:
    """Mandrill: `merge` says it, and giving merge variables or sending a template turns it on."""
    if message.merge is not None:
        return message.merge
    return bool(message.global_merge_vars or message.merge_vars or message.template)


def _merge_vars_by_recipient(message: OutgoingMessage) -> dict[str, list[dict]]:
    """merge_vars checked once, then grouped by recipient: each recipient's merge then reads only its
    own entries (a call with 1,000 recipients would otherwise walk 1,000 entries 1,000 times)."""
    try:
        merge.merge_vars_for(
            global_vars=message.global_merge_vars, recipient_vars=message.merge_vars, recipient=""
        )
    except merge.MergeError as exc:
        raise ValidationError(f"The message could not be merged: {exc.message}", field="merge") from None
    grouped: dict[str, list[dict]] = {}
    for entry in message.merge_vars or []:
        grouped.setdefault(entry["rcpt"].strip().lower(), []).append(entry)
    return grouped


def personalise(
    message: OutgoingMessage,
    recipients: list[Recipient],
    *,
    now: datetime,
    unsubscribe_urls: dict[str, str] | None = None,
) -> dict[str, Personalised] | None:
    """Each recipient's subject and bodies, keyed by address; None when the message is not merged.
    `unsubscribe_urls` (by address) is what `*|UNSUB|*` and `{{unsub}}` become.
    Raises ValidationError (field "merge") naming the recipient and what could not be merged."""
    if not wants_merge(message):
        return None
    own_vars = _merge_vars_by_recipient(message)
    rendered = {}
    for recipient in recipients:
        try:
            variables = merge.merge_vars_for(
                global_vars=message.global_merge_vars,
                recipient_vars=own_vars.get(recipient.email.strip().lower()),
                recipient=recipient.email,
            )
            unsubscribe_url = (unsubscribe_urls or {}).get(recipient.email, "")
            context = merge.MergeContext(
                recipient_email=recipient.email, now=now, unsubscribe_url=unsubscribe_url
            )
            subject = merge.render(
                message.subject, language=message.merge_language, variables=variables, context=context
            )
            context = merge.MergeContext(
                subject=subject, recipient_email=recipient.email, now=now, unsubscribe_url=unsubscribe_url
            )
            rendered[recipient.email] = Personalised(
                subject=subject,
                html=merge.render(
                    message.html, language=message.merge_language, variables=variables, context=context
                ),
                text=merge.render(
                    message.text, language=message.merge_language, variables=variables, context=context
                ),
            )
        except merge.MergeError as exc:
            raise ValidationError(
                f"The message could not be merged for {recipient.email}: {exc.message}", field="merge"
            ) from None
    return rendered
