"""The activity page's reads: the audit trail filtered by action, person and date, and each event told
as a sentence a person reads ("Archiving turned off"), with what changed in plain words. The trail
itself (accounts/audit.py) keeps the codes and raw values for the admin and for programs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta, tzinfo

from django.contrib.humanize.templatetags.humanize import intcomma
from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import Account, AuditEvent
from .reports import day_start, parse_day
from .selectors import audit_events_for_account

SENTENCES = {
    "master.created": "Agency account created",
    "subaccount.created": "Subaccount created",
    "subaccount.updated": "Details changed",
    "subaccount.paused": "Sending paused",
    "subaccount.resumed": "Sending resumed",
    "subaccount.closed": "Subaccount closed",
    "subaccount.reopened": "Subaccount reopened",
    "subaccount.deleted": "Subaccount deleted",
    "account.renewed": "Renewed as a standalone account",
    "archiving.enabled": "Archiving turned on",
    "archiving.disabled": "Archiving turned off",
    "tracking.opens.enabled": "Open tracking turned on",
    "tracking.opens.disabled": "Open tracking turned off",
    "tracking.clicks.enabled": "Click tracking turned on",
    "tracking.clicks.disabled": "Click tracking turned off",
    "invite.resent": "Invite sent again",
    "invite.accepted": "Invite accepted",
    "password_reset.sent": "Password reset email sent",  # nosec B105 - a sentence, not a password
    "impersonation.started": "Logged in as the owner",
    "impersonation.ended": "Went back to their own account",
    "impersonation.expired": "Visit as the owner ended after its time limit",
    "alerts.thresholds_changed": "Alert thresholds changed",
    "api_key.created": "API key created",
    "api_key.revoked": "API key revoked",
    "domain.added": "Sending domain added",
    "domain.verified": "Sending domain verified",
    "domain.removed": "Sending domain removed",
    "domain.shared": "Sending domain sharing changed",
    "brand.changed": "Brand changed",
    "team.invited": "Team member invited",
    "team.role_changed": "Team member's role changed",
    "team.removed": "Team member removed",
    "profile.changed": "Own settings changed",
    "domain.dkim_rotated": "DKIM key rotated",
    "suppression.added": "Address added to the suppression list",
    "suppression.removed": "Address removed from the suppression list",
    "allowlist.added": "Address added to the allowlist",
    "allowlist.removed": "Address removed from the allowlist",
    "auto_pause.rates_changed": "Auto-pause limits changed",
    "subaccount.auto_paused": "Sending paused automatically",
    "domain.verification_failed": "Sending domain verification failed",
    "limit.alert": "Near-limit alert sent",
    "webhook.added": "Webhook added",
    "webhook.updated": "Webhook changed",
    "webhook.deleted": "Webhook deleted",
    "webhook.key_reset": "Webhook key reset",
    "webhook.disabled": "Webhook disabled after a day of failures",
}
FIELD_NAMES = {
    "name": "Name",
    "public_id": "Id",
    "contact_email": "Contact email",
    "monthly_limit": "Monthly limit",
    "hourly_limit": "Hourly limit",
    "notes": "Notes",
    "status": "Status",
    "kind": "Kind",
    "master": "Agency",
    "accent_color": "Accent colour",
    "support_email": "Support email",
    "logo": "Logo",
    "time_zone": "Time zone",
    "full_name": "Name",
}


@dataclass(frozen=True)
class ActivityFilters:
    action: str = ""
    person: str = ""
    date_from: date | None = None
    date_to: date | None = None

    @classmethod
    def from_query(cls, query) -> ActivityFilters:
        return cls(
            action=query.get("action", "") if query.get("action") in SENTENCES else "",
            person=(query.get("person") or "").strip()[:254],
            date_from=parse_day(query.get("date_from")),
            date_to=parse_day(query.get("date_to")),
        )

    @property
    def any(self) -> bool:
        return bool(self.action or self.person or self.date_from or self.date_to)


@dataclass(frozen=True)
class Line:
    """One event as the page shows it."""

    event: AuditEvent
    sentence: str
    details: list[str] = field(default_factory=list)


def activity_for(
    account: Account, filters: ActivityFilters, zone: tzinfo = timezone.UTC
) -> QuerySet[AuditEvent]:
    """The account's trail (a master's: the whole agency's), newest first, filtered. The dates are days
    in `zone` (the reader's), so a day shown on the page is the day the filter means."""
    events = audit_events_for_account(account)
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.person:
        events = events.filter(Q(actor_label=filters.person) | Q(real_actor_label=filters.person))
    if filters.date_from:
        events = events.filter(created_at__gte=day_start(filters.date_from, zone))
    if filters.date_to:
        events = events.filter(created_at__lt=day_start(filters.date_to + timedelta(days=1), zone))
    return events


def people_in(account: Account) -> list[str]:
    """Everyone who appears in the account's trail, for the person filter."""
    events = audit_events_for_account(account).order_by()
    people = set(events.values_list("actor_label", flat=True).distinct())
    people |= set(events.exclude(real_actor_label="").values_list("real_actor_label", flat=True).distinct())
    return sorted(person for person in people if person)


def action_choices() -> list[tuple[str, str]]:
    return sorted(SENTENCES.items(), key=lambda item: item[1])


def _value(field_name: str, value) -> str:
    if value is None or value == "":
        return "none"
    if field_name in ("monthly_limit", "hourly_limit") and isinstance(value, int):
        return intcomma(value)
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def _percentages(value) -> str:
    return ", ".join(f"{n}%" for n in value) if value else "the agency's defaults"


def _rates(value) -> str:
    if not value:
        return "the agency's defaults"
    parts = []
    if "hard_bounce" in value:
        parts.append(f"hard bounces {value['hard_bounce']:g}%")
    if "complaint" in value:
        parts.append(f"complaints {value['complaint']:g}%")
    if "window_days" in value:
        parts.append(f"over {value['window_days']} days")
    return ", ".join(parts)


def describe(event: AuditEvent) -> Line:
    """A sentence for what happened, and what changed, in words."""
    action, before, after = event.action, event.before or {}, event.after or {}
    sentence = SENTENCES.get(action) or action.replace("_", " ").replace(".", ": ").capitalize()
    details: list[str] = []
    if action == "subaccount.updated":
        details = [
            f"{FIELD_NAMES.get(name, name)}: {_value(name, before.get(name))} → {_value(name, after.get(name))}"
            for name in after
        ]
    elif action == "subaccount.created":
        details = [
            f"Id {after.get('public_id', '')}",
            f"Monthly limit {_value('monthly_limit', after.get('monthly_limit'))}",
        ]
        if after.get("contact_email"):
            details.append(f"Owner {after['contact_email']}")
    elif action in ("invite.resent", "invite.accepted", "password_reset.sent") and after.get("email"):
        details = [f"To {after['email']}" if action != "invite.accepted" else after["email"]]
    elif action == "impersonation.ended" and after.get("how") == "logout":
        sentence = "Logged out while logged in as the owner"
    elif action == "alerts.thresholds_changed":
        details = [
            f"{_percentages(before.get('alert_thresholds'))} → {_percentages(after.get('alert_thresholds'))}"
        ]
    elif action.startswith("api_key.") and after.get("label"):
        details = [f"“{after['label']}” ({after.get('prefix', '')}…)"]
    elif action == "domain.shared":
        if after.get("all"):
            shared = "with all subaccounts, now and future"
        elif after.get("subaccounts"):
            shared = "with " + ", ".join(after["subaccounts"])
        else:
            shared = "with no subaccount"
        details = [f"{after.get('domain', '')} {shared}"]
    elif action == "domain.dkim_rotated":
        details = [f"{after.get('domain', '')}: new selector {after.get('selector', '')}"]
    elif action.startswith("domain.") and after.get("domain"):
        details = [after["domain"]]
    elif action.startswith(("suppression.", "allowlist.")):
        entry = after or before
        details = [entry.get("email", "")] + ([f"Reason: {entry['reason']}"] if entry.get("reason") else [])
    elif action == "subaccount.auto_paused" and after.get("reason"):
        details = [after["reason"][:1].upper() + after["reason"][1:]]
    elif action == "auto_pause.rates_changed":
        details = [f"{_rates(before.get('auto_pause_rates'))} → {_rates(after.get('auto_pause_rates'))}"]
    elif action == "account.renewed":
        details = [
            f"Left {before.get('master', 'the agency')}",
            f"Monthly limit {_value('monthly_limit', after.get('monthly_limit'))}",
        ]
    elif action in ("brand.changed", "profile.changed"):
        details = [
            f"{FIELD_NAMES.get(name, name)}: {_value(name, before.get(name))} → {_value(name, after.get(name))}"
            for name in after
        ]
    elif action == "team.invited":
        details = [f"{after.get('email', '')} as {after.get('role', '')}"]
    elif action == "team.role_changed":
        details = [f"{after.get('email', '')}: {before.get('role', '')} → {after.get('role', '')}"]
    elif action == "team.removed":
        details = [f"{before.get('email', '')} ({before.get('role', '')})"]
    elif action == "subaccount.deleted" and before.get("public_id"):
        details = [f"Id {before['public_id']}"]
    return Line(event=event, sentence=sentence, details=details)
