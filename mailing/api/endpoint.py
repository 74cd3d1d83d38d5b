"""The one way into the API: parse the body, authenticate the key, apply the rate limits, dispatch to
the call's handler, and turn every refusal into Mandrill's error shape. Domain errors become Mandrill's
names here, and only here."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts import ratelimit
from accounts.errors import (
    DomainError,
    DuplicateTemplate,
    InvalidTransition,
    NotSuppressed,
    PermissionDenied,
    UnknownSubaccount,
    UnknownTemplate,
    ValidationError,
)

from .. import keys
from . import messages, rejects, senders, subaccounts, templates, users, webhooks  # noqa: F401  (each registers its handlers)
from .registry import HANDLERS, is_mandrill_call
from .wire import MAX_NESTING, ApiError, Call, check_storable, error_response, invalid

logger = logging.getLogger(__name__)

RATE_LIMITED = 429


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def _authenticate(request, secret: Any) -> tuple[Any, str]:
    """The account behind an API key and the label the audit trail shows. Failed lookups are throttled
    per client address, so keys cannot be guessed at speed; each key has its own call budget. Both
    counters are read from Redis at most once a second per process (API_RATE_SYNC_SECONDS) rather than on
    every call: the key budget may run over by what other processes let through in that second, and an
    address blocked by failures in another process is refused within it."""
    bad_keys = f"api-bad-key:{_client_ip(request)}"
    limit = settings.API_FAILED_KEYS_PER_MINUTE
    sync_seconds = settings.API_RATE_SYNC_SECONDS
    if ratelimit.exceeded_recently(bad_keys, limit=limit, window_seconds=60, memo_seconds=sync_seconds):
        raise ApiError(
            "RequestLimitExceeded",
            "Too many requests with an invalid key from your address. Try again later.",
            RATE_LIMITED,
            status=RATE_LIMITED,
        )
    try:
        api_key = keys.authenticate_key(secret)
    except keys.InvalidKey as exc:
        ratelimit.hit(bad_keys, limit=limit, window_seconds=60)
        ratelimit.forget_answer(bad_keys)  # this process sees its own failures at once
        raise ApiError("Invalid_Key", exc.message) from None
    within_budget = ratelimit.hit_batched(
        f"api-key:{api_key.pk}",
        limit=settings.API_CALLS_PER_MINUTE,
        window_seconds=60,
        sync_seconds=sync_seconds,
    )
    if not within_budget:
        raise ApiError(
            "RequestLimitExceeded", "Too Many Requests attempted recently", RATE_LIMITED, status=RATE_LIMITED
        )
    keys.note_key_used(api_key)
    return api_key.account, f"API key {api_key.prefix}…"


def _parse_body(request) -> dict[str, Any]:
    """The JSON object in the body, whatever the Content-Type says (django-anymail sends none), with
    nulls removed: Mandrill treats null as absent, and old clients send every parameter."""
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
    except RecursionError:
        raise invalid(f"The request body is nested too deeply (at most {MAX_NESTING} levels)") from None
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object")
    check_storable(body)
    return {name: value for name, value in body.items() if value is not None}


def _handler_for(group: str, call: str):
    handler = HANDLERS.get((group, call))
    if handler is not None:
        return handler
    if is_mandrill_call(group, call):
        raise ApiError(
            "Unsupported_Call", f"This server does not support /{group}/{call} (a Mandrill call) yet."
        )
    raise ApiError("Unknown_Url", f"/{group}/{call} is not a call of the Mandrill API.")


def api_error_for(exc: DomainError) -> ApiError:
    """The one mapping of domain errors to Mandrill's names."""
    if isinstance(exc, UnknownSubaccount):
        return ApiError("Unknown_Subaccount", exc.message, 12)
    if isinstance(exc, UnknownTemplate):
        return ApiError("Unknown_Template", exc.message, 5)
    if isinstance(exc, DuplicateTemplate):
        return ApiError("Invalid_Template", exc.message, 6)
    if isinstance(exc, NotSuppressed):
        return ApiError("Invalid_Reject", exc.message, 4)
    if isinstance(exc, ValidationError | InvalidTransition):
        return invalid(exc.message)
    if isinstance(exc, PermissionDenied):
        return ApiError("PermissionDenied", exc.message)
    return ApiError("GeneralError", exc.message)


@csrf_exempt
def endpoint(request, group: str, call: str, output_format: str | None = None):
    """Every API call comes through here. The key is checked before the call is looked up, so that
    only a key holder learns which calls exist."""
    try:
        if request.method != "POST":
            raise ApiError("ValidationError", "API calls must use POST", status=405)
        if output_format not in (None, "json"):
            raise invalid(f"The .{output_format} output format is not supported; use .json")
        params = _parse_body(request)
        account, label = _authenticate(request, params.pop("key", None))
        handler = _handler_for(group, call)
        idempotency_key = request.headers.get("Idempotency-Key")
        call_ = Call(params=params, account=account, key_label=label, idempotency_key=idempotency_key)
        return JsonResponse(handler(call_), safe=False)
    except ApiError as error:
        return error_response(error)
    except DomainError as exc:
        return error_response(api_error_for(exc))
    except DatabaseError:
        logger.exception("API call %s/%s failed on the database", group, call)
        return error_response(
            ApiError("GeneralError", "A temporary problem occurred. Please try again later.")
        )


@csrf_exempt
def not_a_call(request, path: str = ""):
    """Any other path under /api/ (another version, a missing call name): Mandrill's shape, never HTML."""
    return error_response(
        ApiError("Unknown_Url", "Not an API call: use /api/1.0/<group>/<call>.json (any 1.x version).")
    )
