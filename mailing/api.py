"""The HTTP API, in Mandrill's wire format, so Mandrill's own clients work with only the base URL changed.

`POST /api/1.<n>/<group>/<call>[.json]` with a JSON object body carrying `key`. Success is HTTP 200 with
JSON; every error is HTTP 500 with {"status": "error", "code", "name", "message"}, as Mandrill answers
(its clients treat any non-2xx as an error and only parse JSON bodies). Domain errors are mapped to
Mandrill's names here, and only here. docs/api.md lists the calls.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.db.models import Min, Q, Sum
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from accounts import lifecycle, ratelimit
from accounts.errors import DomainError, InvalidTransition, PermissionDenied, ValidationError
from accounts.models import Account, Usage
from accounts.permissions import ApiCaller
from accounts.quota import hour_start, month_start

from .keys import hash_secret
from .models import Message
from .selectors import has_tag
from .sending import OutgoingMessage, Recipient, accept_messages

logger = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, name: str, message: str, code: int = -1) -> None:
        super().__init__(message)
        self.name, self.message, self.code = name, message, code


def _error_response(error: ApiError, status: int = 500) -> JsonResponse:
    body = {"status": "error", "code": error.code, "name": error.name, "message": error.message}
    response = JsonResponse(body, status=status)
    # Mandrill answers 500 to every refusal; those are the caller's mistakes, not our crashes, so keep
    # them out of Django's "Internal Server Error" log (real failures are logged where they happen).
    response._has_been_logged = True
    logger.info("API refusal %s: %s", error.name, error.message)
    return response


def invalid(message: str) -> ApiError:
    return ApiError("ValidationError", message)


def unknown_subaccount(public_id: str) -> ApiError:
    return ApiError("Unknown_Subaccount", f"No subaccount exists with the id '{public_id}'", 12)


# --- parameters ------------------------------------------------------------------------------------------


@dataclass
class Call:
    """One authenticated API call: its parameters (nulls removed) and the key's account."""

    params: dict[str, Any]
    account: Account
    key_label: str

    @property
    def caller(self) -> ApiCaller:
        return ApiCaller(account=self.account, label=self.key_label)

    def string(self, name: str, *, required: bool = False, max_length: int = 1024, default: str = "") -> str:
        value = self.params.get(name)
        if value is None:
            if required:
                raise invalid(f"You must specify a {name} value")
            return default
        if not isinstance(value, str):
            raise invalid(f'Validation error: {{"{name}":"Please enter a string"}}')
        if len(value) > max_length:
            raise invalid(f'Validation error: {{"{name}":"Must be at most {max_length} characters"}}')
        return value

    def integer(self, name: str, *, minimum: int = 0) -> int | None:
        value = self.params.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise invalid(f'Validation error: {{"{name}":"Please enter an integer"}}')
        try:
            number = int(value)
        except ValueError:
            raise invalid(f'Validation error: {{"{name}":"Please enter an integer"}}') from None
        if number < minimum:
            raise invalid(f'Validation error: {{"{name}":"Must be at least {minimum}"}}')
        return number


# --- serialisation ----------------------------------------------------------------------------------------


def mandrill_time(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else None


def _subaccount_stats(accounts: list[Account], now: datetime) -> dict[int, dict[str, Any]]:
    """sent_monthly / sent_weekly / sent_total / first_sent_at / sent_hourly for many subaccounts,
    in one aggregate query over Usage (the hour windows give the week; the month windows the rest)."""
    ids = [account.pk for account in accounts]
    week_start = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = (
        Usage.objects.filter(account_id__in=ids)
        .values("account_id")
        .annotate(
            total=Sum("sent", filter=Q(window=Usage.Window.MONTH)),
            monthly=Sum("sent", filter=Q(window=Usage.Window.MONTH, start=month_start(now))),
            weekly=Sum("sent", filter=Q(window=Usage.Window.HOUR, start__gte=week_start)),
            hourly=Sum("sent", filter=Q(window=Usage.Window.HOUR, start=hour_start(now))),
            first=Min("start", filter=Q(window=Usage.Window.HOUR, sent__gt=0)),
        )
    )
    return {row["account_id"]: row for row in rows}


def subaccount_object(account: Account, stats: dict[str, Any] | None, *, detailed: bool = False) -> dict:
    stats = stats or {}
    body = {
        "id": account.public_id,
        "name": account.name,
        "custom_quota": account.hourly_limit,
        "status": "active" if account.status == Account.Status.ACTIVE else account.status,
        "reputation": 100,
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
            last_30_days=dict.fromkeys(STATS_KEYS, 0) | {"sent": stats.get("monthly") or 0},
        )
    return body


STATS_KEYS = [
    "sent", "hard_bounces", "soft_bounces", "rejects", "complaints", "unsubs", "opens", "unique_opens", "clicks",
    "unique_clicks",
]  # fmt: skip


# --- users/* ---------------------------------------------------------------------------------------------


def users_ping(call: Call) -> Any:
    return "PONG!"


def users_ping2(call: Call) -> Any:
    return {"PING": "PONG!"}


def users_info(call: Call) -> Any:
    account = call.account
    now = timezone.now()
    stats = _subaccount_stats([account], now).get(account.pk, {})
    window = dict.fromkeys(STATS_KEYS, 0)
    return {
        "username": account.public_id,
        "created_at": mandrill_time(account.created_at),
        "public_id": account.public_id,
        "reputation": 100,
        "hourly_quota": account.hourly_limit or account.monthly_limit,
        "backlog": 0,
        "stats": {
            "today": window,
            "last_7_days": window | {"sent": stats.get("weekly") or 0},
            "last_30_days": window | {"sent": stats.get("monthly") or 0},
            "last_60_days": window,
            "last_90_days": window,
            "all_time": window | {"sent": stats.get("total") or 0},
        },
    }


# --- subaccounts/* --------------------------------------------------------------------------------------


def _master_of(call: Call) -> Account:
    if not call.account.is_master:
        raise ApiError("PermissionDenied", "Only a master account's API keys can manage subaccounts.")
    return call.account


def _subaccount(call: Call) -> Account:
    public_id = call.string("id", required=True, max_length=255)
    try:
        return Account.objects.subaccounts_of(_master_of(call)).get(public_id=public_id)
    except Account.DoesNotExist:
        raise unknown_subaccount(public_id) from None


def _one(account: Account, *, detailed: bool = False) -> dict:
    account.refresh_from_db()
    stats = _subaccount_stats([account], timezone.now()).get(account.pk)
    return subaccount_object(account, stats, detailed=detailed)


def subaccounts_list(call: Call) -> Any:
    master = _master_of(call)
    prefix = call.string("q", max_length=255)
    subaccounts = Account.objects.subaccounts_of(master).order_by("public_id")
    if prefix:
        subaccounts = subaccounts.filter(Q(public_id__startswith=prefix) | Q(name__istartswith=prefix))
    subaccounts = list(subaccounts[:1000])
    stats = _subaccount_stats(subaccounts, timezone.now())
    return [subaccount_object(account, stats.get(account.pk)) for account in subaccounts]


def subaccounts_add(call: Call) -> Any:
    master = _master_of(call)
    public_id = call.string("id", required=True, max_length=255)
    monthly = call.integer("monthly_quota", minimum=1)
    subaccount = lifecycle.create_subaccount(
        actor=call.caller,
        master=master,
        public_id=public_id,
        name=call.string("name", max_length=255) or public_id,
        notes=call.string("notes", max_length=5000),
        hourly_limit=call.integer("custom_quota", minimum=1),
        monthly_limit=monthly if monthly is not None else settings.SUBACCOUNT_DEFAULT_MONTHLY_LIMIT,
        contact_email=call.string("owner_email", max_length=254) or None,
    )
    return _one(subaccount)


def subaccounts_info(call: Call) -> Any:
    return _one(_subaccount(call), detailed=True)


def subaccounts_update(call: Call) -> Any:
    subaccount = _subaccount(call)
    changes: dict[str, Any] = {}
    for field, param in (("name", "name"), ("notes", "notes")):
        if call.params.get(param) is not None:
            changes[field] = call.string(param, max_length=5000 if field == "notes" else 255)
    if call.params.get("custom_quota") is not None:
        changes["hourly_limit"] = call.integer("custom_quota", minimum=1)
    if call.params.get("monthly_quota") is not None:
        changes["monthly_limit"] = call.integer("monthly_quota", minimum=1)
    if call.params.get("owner_email") is not None:
        changes["contact_email"] = call.string("owner_email", max_length=254)
    if changes:
        lifecycle.update_subaccount(
            actor=call.caller, master=call.account, subaccount_id=subaccount.pk, changes=changes
        )
    return _one(subaccount)


def subaccounts_delete(call: Call) -> Any:
    subaccount = _subaccount(call)
    body = _one(subaccount)
    lifecycle.delete_subaccount(actor=call.caller, master=call.account, subaccount_id=subaccount.pk)
    return body


def _idempotent_transition(call: Call, service: Callable, target: str) -> Any:
    subaccount = _subaccount(call)
    if subaccount.status != target:  # pausing a paused subaccount is a no-op, as in Mandrill
        service(actor=call.caller, master=call.account, subaccount_id=subaccount.pk)
    return _one(subaccount)


def subaccounts_pause(call: Call) -> Any:
    return _idempotent_transition(call, lifecycle.pause_subaccount, Account.Status.PAUSED)


def subaccounts_resume(call: Call) -> Any:
    return _idempotent_transition(call, lifecycle.resume_subaccount, Account.Status.ACTIVE)


# --- messages/* -----------------------------------------------------------------------------------------


def _sending_account(call: Call, subaccount_id: str | None) -> Account:
    """Who a send is from: the key's own account, or (a master's key only) one of its subaccounts."""
    account = call.account
    if not subaccount_id or (subaccount_id == account.public_id and not account.is_master):
        return account
    if not account.is_master:
        raise ApiError("PermissionDenied", "A subaccount's key can only send as that subaccount.")
    subaccount = Account.objects.subaccounts_of(account).filter(public_id=subaccount_id).first()
    if subaccount is None:
        raise unknown_subaccount(subaccount_id)
    if subaccount.status == Account.Status.CLOSED:
        raise invalid(f"The subaccount '{subaccount_id}' is closed and cannot send.")
    return subaccount


def _recipients(raw: Any) -> list[Recipient]:
    if not isinstance(raw, list) or not raw:
        raise invalid('Validation error: {"message":{"to":"Please enter at least one recipient"}}')
    if len(raw) > settings.API_MAX_RECIPIENTS:
        raise invalid(f"At most {settings.API_MAX_RECIPIENTS} recipients per call.")
    recipients = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("email"), str):
            raise invalid('Validation error: {"message":{"to":"Each recipient needs an email"}}')
        kind = entry.get("type") or "to"
        if kind not in ("to", "cc", "bcc"):
            raise invalid(f'Validation error: {{"message":{{"to":"Unknown recipient type {kind}"}}}}')
        name = entry.get("name") if isinstance(entry.get("name"), str) else ""
        recipients.append(Recipient(email=entry["email"].strip(), name=name[:255], type=kind))
    return recipients


def _object(value: Any, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f'Validation error: {{"message":{{"{what}":"Please enter an object"}}}}')
    return value


def _attachments(raw: Any, what: str) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid(f'Validation error: {{"message":{{"{what}":"Please enter an array"}}}}')
    result = []
    for entry in raw:
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("name", "content")):
            raise invalid(
                f'Validation error: {{"message":{{"{what}":"Each needs a name and base64 content"}}}}'
            )
        try:
            base64.b64decode(entry["content"], validate=True)
        except ValueError:
            raise invalid(
                f'Validation error: {{"message":{{"{what}":"{entry["name"]} is not valid base64"}}}}'
            ) from None
        result.append(
            {
                "name": entry["name"],
                "type": entry.get("type") or "application/octet-stream",
                "content": entry["content"],
            }
        )
    return result


def _text(message: dict, name: str, max_length: int = 10_000_000) -> str:
    value = message.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid(f'Validation error: {{"message":{{"{name}":"Please enter a string"}}}}')
    if len(value) > max_length:
        raise invalid(f'Validation error: {{"message":{{"{name}":"Too long"}}}}')
    return value


def messages_send(call: Call) -> Any:
    if call.params.get("send_at"):
        raise ApiError(
            "PaymentRequired", "Scheduled sending (send_at) is not supported: send without send_at.", 10
        )
    message = call.params.get("message")
    if not isinstance(message, dict):
        raise invalid("You must specify a message value")
    from_email = _text(message, "from_email", 254).strip()
    if not from_email:
        raise invalid(
            'Validation error: {"message":{"from_email":"An email address must contain a single @"}}'
        )
    tags = message.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) and len(tag) <= 50 for tag in tags):
        raise invalid('Validation error: {"message":{"tags":"Tags are strings of at most 50 characters"}}')
    headers = _object(message.get("headers"), "headers")
    recipient_metadata = {}
    for entry in message.get("recipient_metadata") or []:
        if isinstance(entry, dict) and isinstance(entry.get("rcpt"), str):
            recipient_metadata[entry["rcpt"]] = _object(entry.get("values"), "recipient_metadata")
    subaccount = message.get("subaccount")
    if subaccount is not None and not isinstance(subaccount, str):
        raise invalid('Validation error: {"message":{"subaccount":"Please enter a string"}}')
    account = _sending_account(call, subaccount)
    outgoing = OutgoingMessage(
        from_email=from_email,
        from_name=_text(message, "from_name", 255),
        subject=_text(message, "subject", 998),
        text=_text(message, "text"),
        html=_text(message, "html"),
        headers={str(k): str(v) for k, v in headers.items()},
        attachments=_attachments(message.get("attachments"), "attachments")
        + _attachments(message.get("images"), "images"),
        tags=tags,
        metadata=_object(message.get("metadata"), "metadata"),
        recipient_metadata=recipient_metadata,
        recipients=_recipients(message.get("to")),
    )
    return [result.as_mandrill() for result in accept_messages(account=account, message=outgoing)]


def message_info(message: Message) -> dict:
    state = {
        Message.Status.HELD: "queued",
        Message.Status.SENDING: "queued",
        Message.Status.FAILED: "bounced",
    }.get(message.status, message.status)
    return {
        "ts": int(message.created_at.timestamp()),
        "_id": message.public_id,
        "sender": message.from_email,
        "template": None,
        "subject": message.subject,
        "email": message.to_email,
        "tags": message.tags,
        "opens": 0,
        "opens_detail": [],
        "clicks": 0,
        "clicks_detail": [],
        "state": state,
        "metadata": message.metadata,
        "subaccount": message.account.public_id if message.account.is_subaccount else None,
        "smtp_events": [],
        "resends": [],
        "reject": {"reason": message.reject_reason, "last_event_at": mandrill_time(message.created_at)}
        if message.reject_reason
        else None,
        "diag": message.last_error or None,
    }


def messages_info(call: Call) -> Any:
    public_id = call.string("id", required=True, max_length=64)
    message = (
        Message.objects.for_account(call.account)
        .select_related("account")
        .filter(public_id=public_id)
        .first()
    )
    if message is None:
        raise ApiError("Unknown_Message", f"No message exists with the id '{public_id}'", 11)
    return message_info(message)


def _search_date(value: Any, name: str, *, end: bool) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
            try:
                moment = datetime.strptime(value.strip(), fmt).replace(tzinfo=timezone.UTC)
            except ValueError:
                continue
            return moment + timedelta(days=1) if end and fmt == "%Y-%m-%d" else moment
    raise invalid(f'Validation error: {{"{name}":"Use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS"}}')


def messages_search(call: Call) -> Any:
    now = timezone.now()
    date_from = _search_date(call.params.get("date_from"), "date_from", end=False) or now - timedelta(days=7)
    date_to = _search_date(call.params.get("date_to"), "date_to", end=True) or now + timedelta(minutes=1)
    limit = min(call.integer("limit", minimum=1) or 100, 1000)
    found = (
        Message.objects.for_account(call.account)
        .select_related("account")
        .filter(created_at__gte=date_from, created_at__lt=date_to)
    )
    query = call.string("query", max_length=1000).strip()
    if query and query != "*":
        for term in query.split():
            field, _, value = term.partition(":")
            if not value:
                found = found.filter(
                    Q(subject__icontains=term) | Q(to_email__icontains=term) | Q(from_email__icontains=term)
                )
            elif field in ("email", "to"):
                found = found.filter(to_email__iexact=value)
            elif field in ("sender", "from_email"):
                found = found.filter(from_email__iexact=value)
            elif field == "subject":
                found = found.filter(subject__icontains=value)
            elif field == "subaccount":
                found = found.filter(account__public_id=value)
            elif field == "tags":
                found = found.filter(has_tag(value))
            elif field == "state":
                found = found.filter(status=value)
            else:
                raise invalid(
                    f"Unsupported search field {field!r}: use email, sender, subject, subaccount, tags or state"
                )
    for name, lookup in (("tags", "tags__contains"), ("senders", "from_email__in")):
        values = call.params.get(name)
        if values is None:
            continue
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise invalid(f'Validation error: {{"{name}":"Please enter an array of strings"}}')
        if name == "tags":
            condition = Q()
            for tag in values:
                condition |= has_tag(tag)
            found = found.filter(condition)
        else:
            found = found.filter(**{lookup: values})
    return [message_info(message) for message in found.order_by("-created_at")[:limit]]


HANDLERS: dict[tuple[str, str], Callable[[Call], Any]] = {
    ("messages", "send"): messages_send,
    ("messages", "info"): messages_info,
    ("messages", "search"): messages_search,
    ("users", "ping"): users_ping,
    ("users", "ping2"): users_ping2,
    ("users", "info"): users_info,
    ("subaccounts", "list"): subaccounts_list,
    ("subaccounts", "add"): subaccounts_add,
    ("subaccounts", "info"): subaccounts_info,
    ("subaccounts", "update"): subaccounts_update,
    ("subaccounts", "delete"): subaccounts_delete,
    ("subaccounts", "pause"): subaccounts_pause,
    ("subaccounts", "resume"): subaccounts_resume,
}


# --- the edge -------------------------------------------------------------------------------------------


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def lookup_api_key(secret: str):
    """The live (not revoked) key with this secret, with its account, by the secret's hash: one indexed query."""
    from .models import ApiKey

    if not isinstance(secret, str) or not secret or len(secret) > 200:
        return None
    return (
        ApiKey.objects.select_related("account", "account__parent")
        .filter(key_hash=hash_secret(secret), revoked_at__isnull=True)
        .first()
    )


def authenticate(request, key: Any) -> tuple[Account, str]:
    """The account behind an API key, by the key's hash. Failed lookups are throttled per IP."""
    from .models import ApiKey

    ip = _client_ip(request)
    if ratelimit.exceeded(f"api-bad-key:{ip}", limit=settings.API_FAILED_KEYS_PER_MINUTE, window_seconds=60):
        raise ApiError(
            "RequestLimitExceeded",
            "Too many requests with an invalid key from your address. Try again later.",
            429,
        )
    api_key = lookup_api_key(key)
    if api_key is None:
        ratelimit.hit(f"api-bad-key:{ip}", limit=settings.API_FAILED_KEYS_PER_MINUTE, window_seconds=60)
        raise ApiError("Invalid_Key", "Invalid API key")
    if api_key.account.status == Account.Status.CLOSED:
        raise ApiError("Invalid_Key", "This API key belongs to a closed account.")
    if not ratelimit.hit(f"api-key:{api_key.pk}", limit=settings.API_CALLS_PER_MINUTE, window_seconds=60):
        raise ApiError("RequestLimitExceeded", "Too Many Requests attempted recently", 429)
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=api_key.pk).update(
            last_used_at=now
        )  # at most once a minute: not a hot write
    return api_key.account, f"API key {api_key.prefix}…"


def _parse_body(request) -> dict[str, Any]:
    limit = settings.API_MAX_BODY_BYTES
    try:
        too_big = int(request.META.get("CONTENT_LENGTH") or 0) > limit or len(request.body) > limit
    except RequestDataTooBig:
        too_big = True
    if too_big:
        raise invalid(f"The request body is larger than {limit // (1024 * 1024)} MB")
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise invalid("The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object")
    return {name: value for name, value in body.items() if value is not None}


def _map_domain_error(exc: DomainError) -> ApiError:
    if isinstance(exc, ValidationError | InvalidTransition):
        return invalid(exc.message)
    if isinstance(exc, PermissionDenied):
        return ApiError("PermissionDenied", exc.message)
    return ApiError("GeneralError", exc.message)


@csrf_exempt
def endpoint(request, group: str, call: str, output_format: str | None = None):
    """Every API call comes through here: parse, authenticate, dispatch, map errors to Mandrill's shape."""
    try:
        if request.method != "POST":
            return _error_response(invalid("API calls must use POST"), status=405)
        if output_format not in (None, "json"):
            raise invalid(f"The .{output_format} output format is not supported; use .json")
        handler = HANDLERS.get((group, call))
        if handler is None:
            raise ApiError("Unknown_Url", f"Unknown API call: /{group}/{call}")
        params = _parse_body(request)
        account, label = authenticate(request, params.pop("key", None))
        result = handler(Call(params=params, account=account, key_label=label))
        return JsonResponse(result, safe=False)
    except ApiError as error:
        return _error_response(error, status=429 if error.code == 429 else 500)
    except DomainError as exc:
        return _error_response(_map_domain_error(exc))
    except DatabaseError:
        logger.exception("API call %s/%s failed on the database", group, call)
        return _error_response(
            ApiError("GeneralError", "A temporary problem occurred. Please try again later.")
        )
