"""Mandrill's wire shapes: its error body, its parameters (nulls removed, checked by type) and its time.

Success is HTTP 200 with JSON; every error is HTTP 500 with {"status": "error", "code", "name",
"message"}, as Mandrill answers (its clients treat any non-2xx as an error and only parse JSON bodies).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.http import JsonResponse
from django.utils import timezone

from accounts.models import Account
from accounts.permissions import ApiCaller
from accounts.validation import UNSTORABLE_HELP, is_storable

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer in Mandrill's error shape. `status` is the HTTP status (500 but for rate limits)."""

    def __init__(self, name: str, message: str, code: int = -1, *, status: int = 500) -> None:
        super().__init__(message)
        self.name, self.message, self.code, self.status = name, message, code, status


def invalid(message: str) -> ApiError:
    return ApiError("ValidationError", message)


def field_error(field: str, problem: str, *, inside: str | None = None) -> ApiError:
    """Mandrill's `Validation error: {"field":"problem"}`, optionally nested in an object (`message`)."""
    detail = f'{{"{field}":"{problem}"}}'
    return invalid(f'Validation error: {{"{inside}":{detail}}}' if inside else f"Validation error: {detail}")


MAX_NESTING = 32  # Mandrill's deepest parameter (message.recipient_metadata[].values) is 4 levels down


def check_storable(body: Any) -> None:
    """Refuse, before anything reads it, a body whose strings (names included) we could not store or
    hash: NUL characters and lone surrogates (JSON allows "\\u0000" and "\\ud800"; PostgreSQL and UTF-8
    do not), and nesting deeper than any Mandrill call needs. Walks iteratively: no recursion to exhaust."""
    pending = [(body, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_NESTING:
            raise invalid(f"The request body is nested too deeply (at most {MAX_NESTING} levels)")
        if isinstance(value, str):
            if not is_storable(value):
                raise invalid(f"A string in the request {UNSTORABLE_HELP}: no such character is allowed")
        elif isinstance(value, dict):
            pending.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)


def error_response(error: ApiError) -> JsonResponse:
    body = {"status": "error", "code": error.code, "name": error.name, "message": error.message}
    response = JsonResponse(body, status=error.status)
    # Mandrill answers 500 to every refusal; those are the caller's mistakes, not our crashes, so keep
    # them out of Django's "Internal Server Error" log (real failures are logged where they happen).
    response._has_been_logged = True
    logger.info("API refusal %s: %s", error.name, error.message)
    return response


def mandrill_time(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else None


@dataclass
class Call:
    """One authenticated API call: its parameters (nulls removed, as Mandrill treats them) and the key's
    account. The accessors check each parameter's type and answer Mandrill's ValidationError."""

    params: dict[str, Any]
    account: Account
    key_label: str
    idempotency_key: str | None = None  # the Idempotency-Key header, when the client sent one

    @property
    def caller(self) -> ApiCaller:
        return ApiCaller(account=self.account, label=self.key_label)

    def has(self, name: str) -> bool:
        return self.params.get(name) is not None

    def string(self, name: str, *, required: bool = False, max_length: int = 1024, default: str = "") -> str:
        value = self.params.get(name)
        if value is None:
            if required:
                raise invalid(f"You must specify a {name} value")
            return default
        if not isinstance(value, str):
            raise field_error(name, "Please enter a string")
        if len(value) > max_length:
            raise field_error(name, f"Must be at most {max_length} characters")
        return value

    def integer(self, name: str, *, minimum: int = 0) -> int | None:
        value = self.params.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise field_error(name, "Please enter an integer")
        try:
            number = int(value)
        except ValueError:
            raise field_error(name, "Please enter an integer") from None
        if number < minimum:
            raise field_error(name, f"Must be at least {minimum}")
        return number

    def strings(self, name: str) -> list[str] | None:
        """An optional array of strings."""
        values = self.params.get(name)
        if values is None:
            return None
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise field_error(name, "Please enter an array of strings")
        return values
