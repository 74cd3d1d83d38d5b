"""`templates/*`: an account's templates, as Mandrill manages them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from .. import merge, selectors, templates
from ..models import Message
from .objects import template_object, time_series_row
from .registry import api_call
from .wire import Call, field_error

FIELDS = ("code", "text", "subject", "from_email", "from_name")


def _fields(call: Call) -> dict[str, Any]:
    return {name: call.params.get(name) for name in FIELDS}


def _labels(call: Call) -> list[str] | None:
    return call.strings("labels")


def _publish(call: Call) -> bool:
    value = call.params.get("publish", True)
    if not isinstance(value, bool):
        raise field_error("publish", "Please enter true or false")
    return value


@api_call("templates", "add")
def add(call: Call) -> Any:
    template = templates.add_template(
        actor=call.caller, account=call.account, name=call.string("name", required=True, max_length=255),
        labels=_labels(call), publish=_publish(call), **_fields(call),
    )  # fmt: skip
    return template_object(template)


@api_call("templates", "info")
def info(call: Call) -> Any:
    return template_object(
        templates.template_of(call.account, call.string("name", required=True, max_length=255))
    )


@api_call("templates", "update")
def update(call: Call) -> Any:
    template = templates.update_template(
        actor=call.caller, account=call.account, name=call.string("name", required=True, max_length=255),
        labels=_labels(call), publish=_publish(call), **_fields(call),
    )  # fmt: skip
    return template_object(template)


@api_call("templates", "publish")
def publish(call: Call) -> Any:
    name = call.string("name", required=True, max_length=255)
    return template_object(templates.publish_template(actor=call.caller, account=call.account, name=name))


@api_call("templates", "delete")
def delete(call: Call) -> Any:
    name = call.string("name", required=True, max_length=255)
    return template_object(templates.delete_template(actor=call.caller, account=call.account, name=name))


@api_call("templates", "list")
def list_templates(call: Call) -> Any:
    return [
        template_object(t)
        for t in templates.templates_for(call.account, label=call.string("label", max_length=100))
    ]


@api_call("templates", "render")
def render(call: Call) -> Any:
    """The published HTML with mc:edit regions filled and, if merge_vars are given, merge tags replaced
    (Mandrill's render speaks the Mailchimp language only)."""
    template = templates.template_for_sending(
        call.account, call.string("template_name", required=True, max_length=255)
    )
    html = template.publish_code if template.is_published else template.code
    content = call.params.get("template_content", [])
    html = merge.fill_editable_regions(html or "", _name_content_list(content, "template_content"))
    merge_vars = call.params.get("merge_vars")
    if merge_vars is not None:
        variables = merge.merge_vars_for(
            global_vars=_name_content_list(merge_vars, "merge_vars"), recipient_vars=None, recipient=""
        )
        html = merge.render(html, language="mailchimp", variables=variables)
    return {"html": html}


def _name_content_list(value: Any, field: str) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise field_error(field, "Please enter an array of {name, content}")
    return value


@api_call("templates", "time-series")
def time_series(call: Call) -> Any:
    """Hourly sends with the template over the last 30 days."""
    template = templates.template_of(call.account, call.string("name", required=True, max_length=255))
    since = timezone.now() - timedelta(days=30)
    sent = Message.objects.for_account(call.account).filter(template=template.slug, created_at__gte=since)
    return [time_series_row(row) for row in selectors.search_time_series(sent)]
