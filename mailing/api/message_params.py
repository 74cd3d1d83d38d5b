"""The `message` object of `messages/send`, read as Mandrill defines it, into the accept path's
OutgoingMessage. Every field we take is checked here by type and size, with Mandrill's error wording."""

from __future__ import annotations

import base64
from typing import Any

from django.conf import settings

from ..outgoing import OutgoingMessage, Recipient
from .wire import field_error, invalid

MAX_BODY_CHARS = 10_000_000
MAX_SUBJECT_CHARS = 998  # RFC 5322's line limit
MAX_TAG_CHARS = 50


def _problem(field: str, problem: str):
    return field_error(field, problem, inside="message")


def text(message: dict, name: str, max_length: int = MAX_BODY_CHARS) -> str:
    value = message.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _problem(name, "Please enter a string")
    if len(value) > max_length:
        raise _problem(name, "Too long")
    return value


def an_object(value: Any, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _problem(what, "Please enter an object")
    return value


def recipients(raw: Any) -> list[Recipient]:
    if not isinstance(raw, list) or not raw:
        raise _problem("to", "Please enter at least one recipient")
    if len(raw) > settings.API_MAX_RECIPIENTS:
        raise invalid(f"At most {settings.API_MAX_RECIPIENTS} recipients per call.")
    found = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("email"), str):
            raise _problem("to", "Each recipient needs an email")
        kind = entry.get("type") or "to"
        if kind not in ("to", "cc", "bcc"):
            raise _problem("to", f"Unknown recipient type {kind}")
        name = entry.get("name") if isinstance(entry.get("name"), str) else ""
        found.append(Recipient(email=entry["email"].strip(), name=name[:255], type=kind))
    return found


def flag(message: dict, name: str) -> bool:
    value = message.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _problem(name, "Please enter true or false")
    return value


def optional_flag(message: dict, name: str) -> bool | None:
    """A flag whose absence (or null) means "the account's default"."""
    return None if message.get(name) is None else flag(message, name)


def attachments(raw: Any, what: str, *, inline: bool = False) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _problem(what, "Please enter an array")
    found = []
    for entry in raw:
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("name", "content")):
            raise _problem(what, "Each needs a name and base64 content")
        try:
            base64.b64decode(entry["content"], validate=True)
        except ValueError:
            raise _problem(what, f"{entry['name']} is not valid base64") from None
        found.append(
            {
                "name": entry["name"],
                "type": entry.get("type") or "application/octet-stream",
                "content": entry["content"],
            }
            | ({"inline": True} if inline else {})
        )
    return found


def tags(raw: Any) -> list[str]:
    found = raw or []
    if not isinstance(found, list) or not all(
        isinstance(tag, str) and len(tag) <= MAX_TAG_CHARS for tag in found
    ):
        raise _problem("tags", f"Tags are strings of at most {MAX_TAG_CHARS} characters")
    return found


def recipient_metadata(raw: Any) -> dict[str, dict]:
    """[{rcpt, values}] → {address: values}."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise _problem("recipient_metadata", "Please enter an array of {rcpt, values}")
    found = {}
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("rcpt"), str):
            raise _problem("recipient_metadata", "Each entry needs rcpt, a recipient's address")
        found[entry["rcpt"]] = an_object(entry.get("values"), "recipient_metadata")
    return found


def subaccount(message: dict) -> str | None:
    value = message.get("subaccount")
    if value is not None and not isinstance(value, str):
        raise _problem("subaccount", "Please enter a string")
    return value


MERGE_LANGUAGES = ("mailchimp", "handlebars")


def merge_options(message: dict) -> dict[str, Any]:
    """merge, merge_language, global_merge_vars and merge_vars; their entries are checked when merged."""
    merge = message.get("merge")
    if merge is not None and not isinstance(merge, bool):
        raise _problem("merge", "Please enter true or false")
    language = message.get("merge_language") or "mailchimp"
    if language not in MERGE_LANGUAGES:
        raise _problem("merge_language", "Use mailchimp or handlebars")
    lists = {}
    for name in ("global_merge_vars", "merge_vars"):
        value = message.get(name)
        if value is not None and not isinstance(value, list):
            raise _problem(name, "Please enter an array")
        lists[name] = value
    return {"merge": merge, "merge_language": language, **lists}


def outgoing_message(message: Any, *, from_required: bool = True) -> OutgoingMessage:
    """The whole `message` object, checked. Raises ApiError (ValidationError) on the first bad field.
    A template may give the sender, so send-template does not require from_email here."""
    if not isinstance(message, dict):
        raise invalid("You must specify a message value")
    from_email = text(message, "from_email", 254).strip()
    if not from_email and from_required:
        raise _problem("from_email", "An email address must contain a single @")
    headers = an_object(message.get("headers"), "headers")
    return OutgoingMessage(
        from_email=from_email,
        from_name=text(message, "from_name", 255),
        subject=text(message, "subject", MAX_SUBJECT_CHARS),
        text=text(message, "text"),
        html=text(message, "html"),
        headers={str(k): str(v) for k, v in headers.items()},
        attachments=attachments(message.get("attachments"), "attachments")
        + attachments(message.get("images"), "images", inline=True),
        tags=tags(message.get("tags")),
        metadata=an_object(message.get("metadata"), "metadata"),
        recipient_metadata=recipient_metadata(message.get("recipient_metadata")),
        recipients=recipients(message.get("to")),
        preserve_recipients=flag(message, "preserve_recipients"),
        bcc_address=text(message, "bcc_address", 254).strip(),
        important=flag(message, "important"),
        auto_text=flag(message, "auto_text"),
        inline_css=flag(message, "inline_css"),
        track_opens=optional_flag(message, "track_opens"),
        track_clicks=optional_flag(message, "track_clicks"),
        url_strip_qs=flag(message, "url_strip_qs"),
        **merge_options(message),
    )
