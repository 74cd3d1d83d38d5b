"""`senders/*` and `users/senders`: sending domains (Mandrill's domain object, with our DKIM, SPF and
DMARC checks) and the sender addresses an account has used."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.errors import ValidationError

from .. import domains, selectors
from ..deliverability import signing
from ..models import Message, SenderDomain
from .objects import empty_stats, time_series_row
from .registry import api_call
from .wire import ApiError, Call, mandrill_time

DOMAIN_CHARS = 253


def domain_object(sender_domain: SenderDomain) -> dict:
    checks = sender_domain.dns_checks or {}

    def check(name: str) -> dict:
        found = checks.get(name) or {"valid": False, "error": "Not checked yet: call senders/check-domain."}
        return {"valid": found["valid"], "valid_after": None, "error": found["error"]}

    dkim = check("dkim")
    return {
        "domain": sender_domain.domain,
        "created_at": mandrill_time(sender_domain.created_at),
        "last_tested_at": mandrill_time(sender_domain.last_checked_at),
        "spf": check("spf"),
        "dkim": dkim,
        "dkim2": dkim,
        "dmarc": {"valid": check("dmarc")["valid"], "error": check("dmarc")["error"]},
        "verified_at": mandrill_time(sender_domain.verified_at),
        "valid_signing": bool(sender_domain.verified_at) and signing.active_key(sender_domain) is not None,
        "verify_txt_key": sender_domain.token,
    }


def _own_domain(call: Call, *, add: bool = False) -> SenderDomain:
    name = domains.clean_domain(call.string("domain", required=True, max_length=DOMAIN_CHARS))
    found = SenderDomain.objects.for_account(call.account).filter(domain=name).first()
    if found is None and add:
        found = domains.add_domain(actor=call.caller, account=call.account, domain=name)
    if found is None:
        raise ApiError("Unknown_Domain", f'No such domain "{name}"', 8)
    return found


@api_call("senders", "domains")
def list_domains(call: Call) -> Any:
    return [domain_object(d) for d in SenderDomain.objects.for_account(call.account).order_by("domain")]


@api_call("senders", "add-domain")
def add_domain(call: Call) -> Any:
    return domain_object(_own_domain(call, add=True))


@api_call("senders", "check-domain")
def check_domain(call: Call) -> Any:
    """Look every record up again (adding the domain first if it is new, as Mandrill does)."""
    sender_domain = _own_domain(call, add=True)
    return domain_object(
        domains.verify_domain(actor=call.caller, account=call.account, domain_id=sender_domain.pk)
    )


@api_call("senders", "verify-domain")
def verify_domain(call: Call) -> Any:
    """Mandrill mails a link to a mailbox of the domain; we verify ownership by a DNS TXT record instead."""
    sender_domain = domains.verify_domain(
        actor=call.caller, account=call.account, domain_id=_own_domain(call, add=True).pk
    )
    if sender_domain.verified_at is None:
        raise ValidationError(
            f"This server verifies domains by DNS: publish a TXT record at {sender_domain.record_name} holding "
            f"{sender_domain.record_value}, then call senders/check-domain. ({sender_domain.last_error})"
        )
    return {"status": "already_verified", "domain": sender_domain.domain, "email": None}


def _senders(call: Call, address: str = ""):
    found = Message.objects.for_account(call.account)
    if address:
        found = found.filter(from_email__iexact=address)
    return (
        found.order_by()
        .values("from_email")
        .annotate(
            sent=Count("pk", filter=~Q(status=Message.Status.REJECTED)),
            rejects=Count("pk", filter=Q(status=Message.Status.REJECTED)),
            hard_bounces=Count("pk", filter=Q(status=Message.Status.BOUNCED)),
            opens=Coalesce(Sum("opens"), 0),
            unique_opens=Count("pk", filter=Q(first_opened_at__isnull=False)),
            clicks=Coalesce(Sum("clicks"), 0),
            unique_clicks=Count("pk", filter=Q(first_clicked_at__isnull=False)),
            created_at=Min("created_at"),
        )
    )


def sender_object(row: dict) -> dict:
    return empty_stats() | {
        "address": row["from_email"],
        "created_at": mandrill_time(row["created_at"]),
        "sent": row["sent"],
        "rejects": row["rejects"],
        "hard_bounces": row["hard_bounces"],
        **{name: row[name] for name in ("opens", "unique_opens", "clicks", "unique_clicks")},
    }


@api_call("senders", "list")
def list_senders(call: Call) -> Any:
    return [sender_object(row) for row in _senders(call).order_by("from_email")[:1000]]


@api_call("users", "senders")
def user_senders(call: Call) -> Any:
    return list_senders(call)


@api_call("senders", "info")
def info(call: Call) -> Any:
    address = call.string("address", required=True, max_length=254)
    row = _senders(call, address).first()
    if row is None:
        raise ApiError("Unknown_Sender", f'No such sender "{address}"', 2)
    sender = sender_object(row)
    counted = {name: sender[name] for name in empty_stats()}
    return sender | {"stats": {"today": empty_stats(), "last_30_days": counted}}


@api_call("senders", "time-series")
def time_series(call: Call) -> Any:
    address = call.string("address", required=True, max_length=254)
    since = timezone.now() - timedelta(days=30)
    sent = Message.objects.for_account(call.account).filter(from_email__iexact=address, created_at__gte=since)
    if not sent.exists():
        raise ApiError("Unknown_Sender", f'No such sender "{address}"', 2)
    return [time_series_row(row) for row in selectors.search_time_series(sent)]
