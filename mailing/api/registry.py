"""Which handler answers each `group/call`, and which calls Mandrill has at all.

A call group's module registers its handlers with `@api_call("group", "call")`; adding a call is one
function in one module. A call Mandrill has and we do not (yet) is answered, after the key is checked,
with `Unsupported_Call`; a call Mandrill does not have is `Unknown_Url`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .wire import Call

Handler = Callable[[Call], Any]

HANDLERS: dict[tuple[str, str], Handler] = {}

# Every call of Mandrill's API (its published reference and its official clients), by group. `whitelists`
# is the older name of `allowlists` that old clients still call.
MANDRILL_CALLS: dict[str, set[str]] = {
    "users": {"info", "ping", "ping2", "senders"},
    "messages": {
        "send", "send-template", "send-mc-template", "search", "search-time-series", "info", "content",
        "parse", "send-raw", "list-scheduled", "cancel-scheduled", "reschedule",
    },
    "subaccounts": {"list", "add", "info", "update", "delete", "pause", "resume"},
    "templates": {"add", "info", "update", "publish", "delete", "list", "time-series", "render"},
    "mctemplates": {"list", "info", "render", "time-series"},
    "tags": {"list", "delete", "info", "time-series", "all-time-series"},
    "rejects": {"add", "list", "delete"},
    "allowlists": {"add", "list", "delete"},
    "whitelists": {"add", "list", "delete"},
    "senders": {
        "list", "domains", "add-domain", "check-domain", "verify-domain", "delete-domain", "info",
        "time-series",
    },
    # key-reset is our extension (Mandrill resets a webhook's key on its page only).
    "webhooks": {"list", "add", "info", "update", "delete", "key-reset"},
    "urls": {
        "list", "search", "time-series", "tracking-domains", "add-tracking-domain", "check-tracking-domain",
        "delete-tracking-domain",
    },
    "inbound": {
        "domains", "add-domain", "check-domain", "delete-domain", "routes", "add-route", "update-route",
        "delete-route", "send-raw",
    },
    "exports": {"info", "list", "rejects", "whitelist", "allowlist", "activity"},
    "ips": {
        "list", "info", "provision", "start-warmup", "cancel-warmup", "set-pool", "delete", "list-pools",
        "pool-info", "create-pool", "delete-pool", "check-custom-dns", "set-custom-dns",
    },
    "metadata": {"list", "add", "update", "delete"},
}  # fmt: skip


def api_call(group: str, call: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of `group/call`."""
    if call not in MANDRILL_CALLS.get(group, set()):
        raise ValueError(f"{group}/{call} is not a Mandrill call; extensions must be listed here first")

    def register(handler: Handler) -> Handler:
        if (group, call) in HANDLERS:
            raise ValueError(f"{group}/{call} has two handlers")
        HANDLERS[(group, call)] = handler
        return handler

    return register


def is_mandrill_call(group: str, call: str) -> bool:
    return call in MANDRILL_CALLS.get(group, set())
