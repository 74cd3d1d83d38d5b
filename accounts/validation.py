"""The bounds and patterns that the dashboard's forms, the services and the API share, each defined once.

The services are the authority (they raise accounts.errors.ValidationError with the field it belongs to);
forms and the API reuse the same constants so that a browser and a program are refused alike.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import available_timezones

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email

from .errors import ValidationError

PUBLIC_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,255}")
PUBLIC_ID_HELP = "Letters, digits, '-', '_' and '.', at most 255 characters."
PUBLIC_ID_RULE = "The id may only use letters, digits, '-', '_' and '.', at most 255 characters."
NAME_MAX_LENGTH = 255
NOTES_MAX_LENGTH = 5000
EMAIL_MAX_LENGTH = 254
# A limit is counted in PostgreSQL INTEGER columns: stay clear of 2**31 - 1 with room for n.
MAX_LIMIT = 2_000_000_000
MAX_THRESHOLDS = 5


def clean_public_id(value: str) -> str:
    value = (value or "").strip()
    if not PUBLIC_ID_PATTERN.fullmatch(value):
        raise ValidationError(PUBLIC_ID_RULE, field="public_id")
    return value


def clean_limit(value: Any, *, field: str, label: str, required: bool) -> int | None:
    """A positive whole number up to MAX_LIMIT, or None when not required and empty."""
    if value in (None, ""):
        if required:
            raise ValidationError(f"{label} is required.", field=field)
        return None
    if isinstance(value, bool):
        raise ValidationError(f"{label} must be a whole number.", field=field)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{label} must be a whole number.", field=field) from None
    if str(number) != str(value).strip() and not isinstance(value, int):
        raise ValidationError(f"{label} must be a whole number.", field=field)
    if number <= 0:
        raise ValidationError(f"{label} must be greater than zero.", field=field)
    if number > MAX_LIMIT:
        raise ValidationError(f"{label} is too large.", field=field)
    return number


def clean_monthly_limit(value: Any) -> int:
    return clean_limit(value, field="monthly_limit", label="Monthly email limit", required=True)


def clean_hourly_limit(value: Any) -> int | None:
    return clean_limit(value, field="hourly_limit", label="Hourly limit", required=False)


def clean_name(value: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError("A name is required.", field="name")
    if len(value) > NAME_MAX_LENGTH:
        raise ValidationError(f"The name may be at most {NAME_MAX_LENGTH} characters.", field="name")
    return value


def clean_notes(value: str | None) -> str:
    value = (value or "").strip()
    if len(value) > NOTES_MAX_LENGTH:
        raise ValidationError(f"Notes may be at most {NOTES_MAX_LENGTH} characters.", field="notes")
    return value


def clean_contact_email(value: str) -> str:
    value = (value or "").strip().lower()
    try:
        validate_email(value)
    except DjangoValidationError:
        raise ValidationError("Enter a valid email address.", field="contact_email") from None
    return value


def clean_thresholds(value: Any) -> list[int]:
    """'80, 95' or [80, 95] → [80, 95]: whole percentages between 1 and 100, sorted, no duplicates."""
    parts = value.replace(";", ",").split(",") if isinstance(value, str) else list(value or [])
    try:
        numbers = sorted({int(str(part).strip().rstrip("%")) for part in parts if str(part).strip()})
    except ValueError:
        raise ValidationError(
            "Thresholds are whole percentages, such as 80, 95.", field="thresholds"
        ) from None
    if not numbers or any(n < 1 or n > 100 for n in numbers):
        raise ValidationError("Give at least one percentage between 1 and 100.", field="thresholds")
    if len(numbers) > MAX_THRESHOLDS:
        raise ValidationError(f"At most {MAX_THRESHOLDS} thresholds.", field="thresholds")
    return numbers


UNSTORABLE_HELP = "cannot contain the NUL character or invalid Unicode (an unpaired surrogate)"


def is_storable(value: str) -> bool:
    """Whether PostgreSQL can store `value`: text columns refuse NUL, and UTF-8 cannot encode a lone
    surrogate (what a JSON "\\ud800" or an undecodable byte in a parsed email becomes)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean_search(value: str | None, *, max_length: int) -> tuple[str, str]:
    """A search box's text: (the text, "") when it can be searched for, else ("", the error to show
    beside the box). Never raises: a page with a bad filter still shows, with the error."""
    value = (value or "").strip()[:max_length]
    if not is_storable(value):
        return "", f"The search {UNSTORABLE_HELP}."
    return value, ""


ACCENT_COLOR_PATTERN = re.compile(r"#[0-9a-fA-F]{6}")
BRAND_NAME_MAX_LENGTH = 100


def clean_accent_color(value: str | None) -> str:
    """A colour as "#rrggbb" (lower case), or "" for ours. Only this shape reaches a stylesheet."""
    value = (value or "").strip()
    if not value:
        return ""
    if not ACCENT_COLOR_PATTERN.fullmatch(value):
        raise ValidationError("Give the colour as # and six hex digits, like #0e7490.", field="accent_color")
    return value.lower()


def clean_brand_name(value: str | None) -> str:
    value = " ".join((value or "").split())
    if not value:
        raise ValidationError("The brand needs a name.", field="name")
    if len(value) > BRAND_NAME_MAX_LENGTH or not is_storable(value):
        raise ValidationError(f"At most {BRAND_NAME_MAX_LENGTH} characters, please.", field="name")
    return value


def clean_support_email(value: str | None) -> str:
    value = (value or "").strip().lower()
    if not value:
        return ""
    try:
        validate_email(value)
    except DjangoValidationError:
        raise ValidationError("Enter a valid email address.", field="support_email") from None
    if len(value) > EMAIL_MAX_LENGTH:
        raise ValidationError("That address is too long.", field="support_email")
    return value


TIME_ZONE_CHOICES = sorted(available_timezones() | {"UTC"})


def clean_time_zone(value: str | None) -> str:
    """An IANA zone name this machine knows ("Europe/Prague"), or a ValidationError."""
    value = (value or "").strip()
    if value not in TIME_ZONE_CHOICES:
        raise ValidationError("Choose a time zone from the list.", field="time_zone")
    return value


# Auto-pause limits: percentages of sends, and the window in days they are measured over.
AUTO_PAUSE_BOUNDS = {
    "hard_bounce": (0.1, 100.0, "The hard-bounce limit is a percentage between 0.1 and 100."),
    "complaint": (0.01, 100.0, "The complaint limit is a percentage between 0.01 and 100."),
    "window_days": (1, 90, "The window is a whole number of days between 1 and 90."),
}


def clean_auto_pause_rates(values: dict[str, Any]) -> dict[str, float | int]:
    """{'hard_bounce': '5', 'complaint': '0.1', 'window_days': '30'} → numbers within their bounds; empty
    values are left out (they fall back to the agency's or the defaults). Raises ValidationError with
    the field it is about."""
    cleaned: dict[str, float | int] = {}
    for name, (low, high, message) in AUTO_PAUSE_BOUNDS.items():
        raw = str(values.get(name) if values.get(name) is not None else "").strip().rstrip("%").strip()
        if not raw:
            continue
        try:
            number = int(raw) if name == "window_days" else float(raw.replace(",", "."))
        except ValueError:
            raise ValidationError(message, field=name) from None
        if not (low <= number <= high) or number != number:  # NaN compares unequal to itself
            raise ValidationError(message, field=name)
        cleaned[name] = round(number, 2) if isinstance(number, float) else number
    return cleaned
