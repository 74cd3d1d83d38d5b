"""`users/*`: who the key belongs to, and whether the server answers."""

from __future__ import annotations

from typing import Any

from accounts.reputation import health_of
from accounts.selectors import sending_stats

from .objects import user_object
from .registry import api_call
from .wire import Call


@api_call("users", "ping")
def ping(call: Call) -> Any:
    return "PONG!"


@api_call("users", "ping2")
def ping2(call: Call) -> Any:
    return {"PING": "PONG!"}


@api_call("users", "info")
def info(call: Call) -> Any:
    stats = sending_stats([call.account]).get(call.account.pk)
    return user_object(
        call.account, stats, reputation=health_of([call.account.pk])[call.account.pk].reputation
    )
