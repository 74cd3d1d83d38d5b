"""`messages/*`: sending, and reading back what was sent."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from .. import raw, scheduling, selectors, templates
from ..models import Message
from ..selectors import matching_messages, message_of
from ..sending import accept_messages, resolve_sender
from . import message_params
from .objects import message_content, message_info, scheduled_object, time_series_row
from .registry import api_call
from .wire import ApiError, Call, field_error

SEARCH_DAYS_BY_DEFAULT = 7
SEARCH_LIMIT_BY_DEFAULT = 100
SEARCH_LIMIT_MAX = 1000


def send_at(call: Call) -> datetime | None:
    """Mandrill's `send_at`: a UTC "YYYY-MM-DD HH:MM:SS"; a time in the past sends now."""
    value = call.params.get("send_at")
    if value is None or value == "":
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.UTC)
    except (TypeError, ValueError):
        raise field_error("send_at", "Use a UTC time as YYYY-MM-DD HH:MM:SS") from None


def _idempotency_key(call: Call) -> str | None:
    """Our extension: the Idempotency-Key header, or `idempotency_key` for clients that cannot set one."""
    return call.idempotency_key or call.string("idempotency_key", max_length=1024) or None


@api_call("messages", "send")
def send(call: Call) -> Any:
    raw = call.params.get("message")
    outgoing = message_params.outgoing_message(raw)
    outgoing.send_at = send_at(call)
    account = resolve_sender(account=call.account, subaccount_id=message_params.subaccount(raw))
    key = _idempotency_key(call)
    results = accept_messages(account=account, message=outgoing, idempotency_key=key)
    return [result.as_mandrill() for result in results]


@api_call("messages", "info")
def info(call: Call) -> Any:
    public_id = call.string("id", required=True, max_length=64)
    try:
        message = message_of(call.account, public_id)
    except Message.DoesNotExist:
        raise _unknown_message(public_id) from None
    return message_info(message, selectors.tracking_events_of(message))


DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d")
END_OF_TIME = datetime.max.replace(tzinfo=timezone.UTC)


def _search_date(call: Call, name: str, *, end: bool) -> datetime | None:
    """Mandrill's search dates (UTC). A bare date as `date_to` includes that whole day."""
    value = call.params.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        for date_format in DATE_FORMATS:
            try:
                moment = datetime.strptime(value.strip(), date_format).replace(tzinfo=timezone.UTC)
            except ValueError:
                continue
            if end and date_format == "%Y-%m-%d":
                # The whole day; the last day of the calendar has no next day: it means "no end".
                return moment + timedelta(days=1) if moment.date() < date.max else END_OF_TIME
            return moment
    raise field_error(name, "Use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS")


def _searched(call: Call):
    now = timezone.now()
    return matching_messages(
        call.account,
        query=call.string("query", max_length=1000),
        date_from=_search_date(call, "date_from", end=False) or now - timedelta(days=SEARCH_DAYS_BY_DEFAULT),
        date_to=_search_date(call, "date_to", end=True) or now + timedelta(minutes=1),
        tags=call.strings("tags"),
        senders=call.strings("senders"),
    )


@api_call("messages", "search")
def search(call: Call) -> Any:
    limit = min(call.integer("limit", minimum=1) or SEARCH_LIMIT_BY_DEFAULT, SEARCH_LIMIT_MAX)
    return [message_info(message) for message in _searched(call).order_by("-created_at")[:limit]]


@api_call("messages", "search-time-series")
def search_time_series(call: Call) -> Any:
    return [time_series_row(row) for row in selectors.search_time_series(_searched(call))]


@api_call("messages", "list-scheduled")
def list_scheduled(call: Call) -> Any:
    found = scheduling.scheduled_for(call.account, to=call.string("to", max_length=254).strip())
    return [scheduled_object(message) for message in found[:SEARCH_LIMIT_MAX]]


def _unknown_message(public_id: str, what: str = "message") -> ApiError:
    return ApiError("Unknown_Message", f"No {what} exists with the id '{public_id}'", 11)


@api_call("messages", "cancel-scheduled")
def cancel_scheduled(call: Call) -> Any:
    public_id = call.string("id", required=True, max_length=64)
    try:
        return scheduled_object(scheduling.cancel_scheduled(account=call.account, public_id=public_id))
    except Message.DoesNotExist:
        raise _unknown_message(public_id, "scheduled message") from None


@api_call("messages", "reschedule")
def reschedule(call: Call) -> Any:
    public_id = call.string("id", required=True, max_length=64)
    when = send_at(call)
    if when is None:
        raise field_error("send_at", "You must specify a send_at value")
    try:
        return scheduled_object(
            scheduling.reschedule(account=call.account, public_id=public_id, send_at=when)
        )
    except Message.DoesNotExist:
        raise _unknown_message(public_id, "scheduled message") from None


@api_call("messages", "content")
def content(call: Call) -> Any:
    public_id = call.string("id", required=True, max_length=64)
    try:
        return message_content(message_of(call.account, public_id))
    except Message.DoesNotExist:
        raise _unknown_message(public_id) from None


@api_call("messages", "send-raw")
def send_raw(call: Call) -> Any:
    """A whole MIME message, handled as SMTP handles one: its X-MC-* headers apply; recipients are `to`,
    or else its own To, Cc and Bcc."""
    message = raw.parse(
        call.string("raw_message", required=True, max_length=settings.API_MAX_BODY_BYTES).encode()
    )
    options = raw.mc_options(message)
    recipients = call.strings("to") or raw.header_recipients(message)
    if not recipients:
        raise field_error("to", "Give recipients in to, or To/Cc/Bcc headers in the message")
    if len(recipients) > settings.API_MAX_RECIPIENTS:
        raise field_error("to", f"At most {settings.API_MAX_RECIPIENTS} recipients per call")
    outgoing = raw.outgoing(
        message, envelope_from="", recipients=recipients, options=options,
        from_email=call.string("from_email", max_length=254).strip(), from_name=call.string("from_name", max_length=255),
    )  # fmt: skip
    outgoing.send_at = send_at(call)
    account = resolve_sender(account=call.account, subaccount_id=options.subaccount)
    key = _idempotency_key(call)
    return [
        result.as_mandrill()
        for result in accept_messages(account=account, message=outgoing, idempotency_key=key)
    ]


@api_call("messages", "send-template")
def send_template(call: Call) -> Any:
    """A template (the sender's own, or one its master shares with it) merged per recipient, through the
    same accept path as messages/send."""
    raw_message = call.params.get("message")
    outgoing = message_params.outgoing_message(raw_message, from_required=False)
    outgoing.send_at = send_at(call)
    account = resolve_sender(account=call.account, subaccount_id=message_params.subaccount(raw_message))
    template = templates.template_for_sending(
        account, call.string("template_name", required=True, max_length=255)
    )
    content = call.params.get("template_content", [])
    outgoing = templates.message_from_template(template, outgoing, content)
    results = accept_messages(account=account, message=outgoing, idempotency_key=_idempotency_key(call))
    return [result.as_mandrill() for result in results]
