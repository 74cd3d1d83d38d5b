"""`webhooks/*`: an account's webhooks, as Mandrill's. `webhooks/key-reset` is our extension (Mandrill
resets keys on its Webhooks page only). Another account's id, or none, is `Unknown_Webhook`."""

from __future__ import annotations

from typing import Any

from ..models import Webhook
from ..webhooks import hooks
from .registry import api_call
from .wire import ApiError, Call, field_error, mandrill_time


def webhook_object(webhook: Webhook) -> dict:
    return {
        "id": webhook.pk,
        "url": webhook.url,
        "description": webhook.description,
        "auth_key": webhook.auth_key,
        "events": webhook.events,
        "created_at": mandrill_time(webhook.created_at),
        "last_sent_at": mandrill_time(webhook.last_sent_at),
        "batches_sent": webhook.batches_sent,
        "events_sent": webhook.events_sent,
        "last_error": webhook.last_error or None,
        # Our extensions: whether a master's webhook gets its subaccounts' events, and whether a day of
        # failures turned it off (saving it with webhooks/update turns it back on).
        "include_subaccounts": webhook.include_subaccounts,
        "disabled_at": mandrill_time(webhook.disabled_at),
    }


def _id(call: Call) -> int:
    webhook_id = call.integer("id")
    if webhook_id is None:
        raise field_error("id", "Please enter an integer")
    return webhook_id


def unknown(webhook_id: int) -> ApiError:
    return ApiError("Unknown_Webhook", f"Unknown hook ID {webhook_id}", 3)


def _include_subaccounts(call: Call) -> bool | None:
    value = call.params.get("include_subaccounts")
    if value is None:
        return None
    if not isinstance(value, bool):
        raise field_error("include_subaccounts", "Please enter a boolean")
    return value


@api_call("webhooks", "list")
def list_webhooks(call: Call) -> Any:
    return [webhook_object(webhook) for webhook in hooks.webhooks_for(call.account)]


@api_call("webhooks", "add")
def add(call: Call) -> Any:
    webhook = hooks.add_webhook(
        actor=call.caller, account=call.account, url=call.string("url", required=True, max_length=2000),
        description=call.string("description", max_length=hooks.DESCRIPTION_MAX_LENGTH),
        events=call.strings("events"), include_subaccounts=bool(_include_subaccounts(call)),
    )  # fmt: skip
    return webhook_object(webhook)


@api_call("webhooks", "info")
def info(call: Call) -> Any:
    webhook_id = _id(call)
    try:
        return webhook_object(hooks.webhook_of(call.account, webhook_id))
    except Webhook.DoesNotExist:
        raise unknown(webhook_id) from None


@api_call("webhooks", "update")
def update(call: Call) -> Any:
    webhook_id = _id(call)
    try:
        webhook = hooks.update_webhook(
            actor=call.caller, account=call.account, webhook_id=webhook_id,
            url=call.string("url", required=True, max_length=2000),
            description=call.string("description", max_length=hooks.DESCRIPTION_MAX_LENGTH)
            if call.has("description") else None,
            events=call.strings("events"), include_subaccounts=_include_subaccounts(call),
        )  # fmt: skip
    except Webhook.DoesNotExist:
        raise unknown(webhook_id) from None
    return webhook_object(webhook)


@api_call("webhooks", "delete")
def delete(call: Call) -> Any:
    webhook_id = _id(call)
    try:
        answer = webhook_object(hooks.webhook_of(call.account, webhook_id))
        hooks.delete_webhook(actor=call.caller, account=call.account, webhook_id=webhook_id)
    except Webhook.DoesNotExist:
        raise unknown(webhook_id) from None
    return answer


@api_call("webhooks", "key-reset")
def key_reset(call: Call) -> Any:
    webhook_id = _id(call)
    try:
        return webhook_object(
            hooks.reset_webhook_key(actor=call.caller, account=call.account, webhook_id=webhook_id)
        )
    except Webhook.DoesNotExist:
        raise unknown(webhook_id) from None
