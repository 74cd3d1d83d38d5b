"""The signed tokens in tracking and unsubscribe links. A token names a message (its public id, itself
unguessable) and, for a click, the index of a link stored on that message; it is signed with SECRET_KEY
(django.core.signing, one salt per use), so it cannot be forged, changed or reused for another purpose.
It never carries a URL: a click goes only to a link the message held (no open redirect)."""

from __future__ import annotations

import re
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, get_urlconf, reverse

OPEN_SALT = "mailing.tracking.open"
CLICK_SALT = "mailing.tracking.click"
UNSUB_SALT = "mailing.tracking.unsubscribe"


class BadToken(Exception):
    """The token was not made by us for this use (forged, altered, truncated)."""


def _sign(value: str, salt: str) -> str:
    return signing.Signer(salt=salt).sign(value)


def _unsign(token: str, salt: str) -> str:
    try:
        return signing.Signer(salt=salt).unsign(token)
    except signing.BadSignature:
        raise BadToken from None


def open_token(public_id: str) -> str:
    return _sign(public_id, OPEN_SALT)


def click_token(public_id: str, index: int) -> str:
    return _sign(f"{public_id}.{index}", CLICK_SALT)


def unsubscribe_token(public_id: str) -> str:
    return _sign(public_id, UNSUB_SALT)


def message_of_open(token: str) -> str:
    """The public id an open token names. Raises BadToken."""
    return _unsign(token, OPEN_SALT)


def link_of_click(token: str) -> tuple[str, int]:
    """(public id, link index) of a click token. Raises BadToken."""
    public_id, _, index = _unsign(token, CLICK_SALT).partition(".")
    if not index.isdigit():
        raise BadToken
    return public_id, int(index)


def message_of_unsubscribe(token: str) -> str:
    """The public id an unsubscribe token names. Raises BadToken."""
    return _unsign(token, UNSUB_SALT)


# What a signed token is made of (a public id or link index, ':' and the signature in URL-safe base64):
# characters reverse() leaves as they are, so a route's path can be reversed once and the token set in.
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_.:-]+")
_STAND_IN = "0token0"


@lru_cache(maxsize=32)
def _route(name: str, prefix: str, urlconf: str | None) -> tuple[str, str]:
    """The path of `name` before and after its token, reversed once per script prefix and URLconf:
    delivery asks for an unsubscribe link in every message, and reverse() costs more than the token."""
    before, after = reverse(name, kwargs={"token": _STAND_IN}, urlconf=urlconf).split(_STAND_IN)
    return before, after


def _absolute(name: str, token: str) -> str:
    if not _PLAIN_TOKEN.fullmatch(token):
        return settings.TRACKING_BASE_URL + reverse(name, kwargs={"token": token})
    before, after = _route(name, get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)
    return settings.TRACKING_BASE_URL + before + token + after


def open_url(public_id: str) -> str:
    return _absolute("tracking:open", open_token(public_id))


def click_url(public_id: str, index: int) -> str:
    return _absolute("tracking:click", click_token(public_id, index))


def unsubscribe_url(public_id: str) -> str:
    return _absolute("tracking:unsubscribe", unsubscribe_token(public_id))


def own_prefix() -> str:
    """The start of every link this module makes: such links are never tracked again."""
    return settings.TRACKING_BASE_URL + "/t/"
