"""Sending domains: an account proves it owns a domain by publishing a TXT record with a token, looked
up with dnspython against the resolver in settings. Mail from a domain the account may not use is
rejected (`unsigned`, Mandrill's word). A master may share a verified domain with its subaccounts."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import dns.exception
import dns.resolver
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import record
from accounts.errors import ValidationError
from accounts.models import Account, Membership, User
from accounts.permissions import require_role
from reseller.process_cache import TTLCache

from .deliverability import signing
from .models import SenderDomain

DOMAIN_PATTERN = re.compile(r"(?=.{1,253}$)(?!-)([a-z0-9-]{1,63}(?<!-)\.)+[a-z]{2,63}")


def clean_domain(value: str) -> str:
    domain = (value or "").strip().lower().rstrip(".")
    if domain.startswith(("http://", "https://")) or "@" in domain or not DOMAIN_PATTERN.fullmatch(domain):
        raise ValidationError(
            "Enter a domain name such as mail.example.com (no http://, no @).", field="domain"
        )
    return domain


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().lower().rstrip(".")


# Domains an account was found allowed to send from lately, by (account, domain), for
# API_KEY_CACHE_SECONDS: every accept asks, and the answer rarely changes. Only "yes" is kept, so a domain
# just verified or shared is usable at once; one removed, unshared or failing verification stops within
# the TTL.
_allowed: TTLCache[bool] = TTLCache(lambda: settings.API_KEY_CACHE_SECONDS)


def may_send_from(account: Account, address: str) -> bool:
    """Whether `account` may send mail whose From is `address` (or any subdomain of a verified domain).
    A "yes" is remembered by this process for API_KEY_CACHE_SECONDS (`_allowed`)."""
    if not settings.REQUIRE_VERIFIED_SENDING_DOMAIN:
        return True
    domain = domain_of(address)
    if _allowed.get((account.pk, domain)):
        return True
    verified = SenderDomain.objects.usable_by(account).values_list("domain", flat=True)
    allowed = any(domain == d or domain.endswith("." + d) for d in verified)
    if allowed:
        _allowed.put((account.pk, domain), True)
    return allowed


def forget_allowed_domains() -> None:
    """Drop this process's remembered answers (tests; a process that must see a change at once)."""
    _allowed.clear()


@transaction.atomic(durable=True)
def add_domain(*, actor: User, account: Account, domain: str, real_actor: User | None = None) -> SenderDomain:
    require_role(actor, account, Membership.Role.ADMIN)
    domain = clean_domain(domain)
    try:
        with transaction.atomic():
            sender_domain = SenderDomain.objects.create(
                account=account, domain=domain, token=secrets.token_hex(16)
            )
    except IntegrityError:
        raise ValidationError(f"{domain} is already on your list.", field="domain") from None
    signing.generate_key(sender_domain)
    record(
        actor=actor, real_actor=real_actor, account=account, action="domain.added", after={"domain": domain}
    )
    return sender_domain


def lookup_txt(name: str) -> list[str]:
    """The TXT strings at `name`, from the resolver in settings (tests point it at a local server)."""
    resolver = dns.resolver.Resolver(configure=not settings.DNS_RESOLVER_NAMESERVERS)
    if settings.DNS_RESOLVER_NAMESERVERS:
        resolver.nameservers = settings.DNS_RESOLVER_NAMESERVERS
        resolver.port = settings.DNS_RESOLVER_PORT
    resolver.lifetime = settings.DNS_RESOLVER_TIMEOUT
    answer = resolver.resolve(name, "TXT")
    return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer]


def _txt(name: str) -> tuple[list[str], str]:
    """The TXT strings at `name`, or none and why (the error a person reads beside the record)."""
    try:
        return lookup_txt(name), ""
    except dns.resolver.NXDOMAIN:
        return [], f"No TXT record at {name} yet. DNS changes can take a while to appear."
    except dns.resolver.NoAnswer:
        return [], f"{name} exists but has no TXT record."
    except (dns.exception.Timeout, dns.resolver.NoNameservers):
        return [], LOOKUP_TIMED_OUT
    except dns.exception.DNSException as exc:
        return [], f"The DNS lookup failed: {exc}"[:300]


LOOKUP_TIMED_OUT = "The DNS lookup timed out. Try again in a minute."


def _result(*, error: str | None, found: bool) -> dict:
    """One check as dns_checks stores it: valid or not, why, and in one word what the page says
    (`valid`; `missing`: no such record; `wrong`: a record that does not say what it must; `unknown`:
    the lookup itself failed)."""
    if not error:
        return {"valid": True, "error": None, "state": "valid"}
    if error == LOOKUP_TIMED_OUT or error.startswith("The DNS lookup failed"):
        state = "unknown"
    else:
        state = "wrong" if found else "missing"
    return {"valid": False, "error": error, "state": state}


def _normalised(record: str) -> str:
    return "".join(record.split()).lower()


def spf_record(sender_domain: SenderDomain) -> str:
    return f"v=spf1 include:{settings.SPF_INCLUDE} ~all"


def dmarc_record(sender_domain: SenderDomain) -> str:
    return f"v=DMARC1; p=none; rua=mailto:dmarc@{sender_domain.domain}"


def check_dkim(sender_domain: SenderDomain) -> dict:
    key = signing.newest_key(sender_domain) or signing.generate_key(sender_domain)
    values, error = _txt(key.record_name)
    if error:
        return _result(error=error, found=False)
    if not any(_normalised(key.public_key) in _normalised(value) for value in values):
        return _result(error=f"The TXT record at {key.record_name} does not hold this key (p=…).", found=True)
    signing.mark_published(key)
    return _result(error=None, found=True)


def check_spf(sender_domain: SenderDomain) -> dict:
    values, error = _txt(sender_domain.domain)
    spf = [value for value in values if value.lower().startswith("v=spf1")]
    if not spf:
        return _result(error=error or f"{sender_domain.domain} has no SPF record (v=spf1 …).", found=False)
    if len(spf) > 1:
        return _result(error="There is more than one SPF record: receivers then ignore them all.", found=True)
    if f"include:{settings.SPF_INCLUDE}".lower() not in spf[0].lower().split():
        return _result(error=f"The SPF record does not include:{settings.SPF_INCLUDE}.", found=True)
    return _result(error=None, found=True)


def check_dmarc(sender_domain: SenderDomain) -> dict:
    values, error = _txt(f"_dmarc.{sender_domain.domain}")
    if not any(value.startswith("v=DMARC1") for value in values):
        return _result(
            error=error or "The record doesn't begin with a valid version tag (v=DMARC1).", found=bool(values)
        )
    return _result(error=None, found=True)


def verify_domain(
    *, actor: User, account: Account, domain_id: int, real_actor: User | None = None
) -> SenderDomain:
    """Look the token up in DNS now. Returns the domain, verified or with `last_error` saying why not.
    Raises SenderDomain.DoesNotExist (not this account's) or PermissionDenied."""
    sender_domain = SenderDomain.objects.for_account(account).get(pk=domain_id)
    require_role(actor, account, Membership.Role.ADMIN)
    values, error = _txt(sender_domain.record_name)
    if not error and sender_domain.record_value not in values:
        error = f"The TXT record at {sender_domain.record_name} does not hold {sender_domain.record_value}."
    with transaction.atomic():
        sender_domain.dns_checks = {
            "dkim": check_dkim(sender_domain), "spf": check_spf(sender_domain), "dmarc": check_dmarc(sender_domain)
        }  # fmt: skip
        sender_domain.last_checked_at = timezone.now()
        sender_domain.last_error = error
        newly_verified = not error and sender_domain.verified_at is None
        if newly_verified:
            sender_domain.verified_at = sender_domain.last_checked_at
        sender_domain.save(update_fields=["last_checked_at", "last_error", "verified_at", "dns_checks"])
        if newly_verified:
            record(actor=actor, real_actor=real_actor, account=account, action="domain.verified",
                   after={"domain": sender_domain.domain})  # fmt: skip
        elif error and sender_domain.verified_at is None:
            # In the trail (and so to the agency's webhooks, `domain.verification_failed`): why it failed.
            record(actor=actor, real_actor=real_actor, account=account, action="domain.verification_failed",
                   after={"domain": sender_domain.domain, "error": error})  # fmt: skip
    return sender_domain


@transaction.atomic(durable=True)
def share_domain(
    *, actor: User, master: Account, domain_id: int, subaccount_ids: list[int], all_subaccounts: bool,
    real_actor: User | None = None,
) -> SenderDomain:  # fmt: skip
    """Let chosen subaccounts (or all, present and future) send from one of the master's verified domains."""
    sender_domain = SenderDomain.objects.for_account(master).select_for_update().get(pk=domain_id)
    require_role(actor, master, Membership.Role.ADMIN)
    if sender_domain.verified_at is None:
        raise ValidationError("Verify the domain before sharing it.", field="domain")
    chosen = list(Account.objects.subaccounts_of(master).filter(pk__in=subaccount_ids))
    sender_domain.share_with_all_subaccounts = all_subaccounts
    sender_domain.save(update_fields=["share_with_all_subaccounts"])
    sender_domain.shared_with.set(chosen)
    record(
        actor=actor, real_actor=real_actor, account=master, action="domain.shared",
        after={"domain": sender_domain.domain, "all": all_subaccounts, "subaccounts": [a.public_id for a in chosen]},
    )  # fmt: skip
    return sender_domain


@transaction.atomic(durable=True)
def remove_domain(*, actor: User, account: Account, domain_id: int, real_actor: User | None = None) -> str:
    """Stop sending from a domain: mail from it is rejected from now on. Returns the domain's name.
    Raises SenderDomain.DoesNotExist (not this account's) or PermissionDenied."""
    sender_domain = SenderDomain.objects.for_account(account).get(pk=domain_id)
    require_role(actor, account, Membership.Role.ADMIN)
    record(
        actor=actor,
        real_actor=real_actor,
        account=account,
        action="domain.removed",
        after={"domain": sender_domain.domain},
    )
    sender_domain.delete()
    return sender_domain.domain


# --- the records a domain page asks to publish, and their last check ----------------------------------

STATE_WORDS = {
    "valid": "Valid",
    "missing": "Missing",
    "wrong": "Wrong",
    "unknown": "Could not check",
    "unchecked": "Not checked yet",
}


@dataclass(frozen=True)
class DnsRecord:
    """One TXT record to publish, with what the last check found."""

    key: str  # ownership | dkim | spf | dmarc
    title: str
    purpose: str
    name: str
    value: str
    state: str  # a key of STATE_WORDS
    error: str

    @property
    def state_words(self) -> str:
        return STATE_WORDS[self.state]


def _checked(check: dict | None) -> tuple[str, str]:
    if not check:
        return "unchecked", ""
    if check.get("valid"):
        return "valid", ""
    error = check.get("error") or ""
    # rows checked before states were stored: a missing record says so in its error
    state = check.get("state") or ("missing" if "No TXT record" in error or "has no" in error else "wrong")
    return state, error


def _ownership(sender_domain: SenderDomain) -> tuple[str, str]:
    if sender_domain.last_checked_at is None:
        return ("valid", "") if sender_domain.verified_at else ("unchecked", "")
    if not sender_domain.last_error:
        return "valid", ""
    error = sender_domain.last_error
    if error == LOOKUP_TIMED_OUT or error.startswith("The DNS lookup failed"):
        return "unknown", error
    return ("wrong" if "does not hold" in error else "missing"), error


def records_to_publish(sender_domain: SenderDomain) -> list[DnsRecord]:
    """The four TXT records of a domain, in the order to publish them, each with its last check
    (SenderDomain.dns_checks). Reads `dkim_keys` through the prefetch cache when the page prefetched it."""
    checks = sender_domain.dns_checks or {}
    key = next((k for k in sender_domain.dkim_keys.all() if k.retired_at is None), None)
    spf_purpose = (
        "Allows our servers to send for the domain. Already have an SPF record? Add "
        f"include:{settings.SPF_INCLUDE} to it instead: a domain may have only one."
    )
    dmarc_purpose = (
        "Our recommendation to start: reports only (p=none). Tighten it to quarantine or reject once the "
        "reports show only your own mail."
    )
    wanted = [
        ("ownership", "Ownership", "Proves the domain is yours; sending from it needs this one.",
         sender_domain.record_name, sender_domain.record_value, _ownership(sender_domain)),
        ("dkim", "DKIM", "The public key receivers check our signature with.",
         key.record_name if key else "", key.record_value if key else "", _checked(checks.get("dkim"))),
        ("spf", "SPF", spf_purpose, sender_domain.domain, spf_record(sender_domain), _checked(checks.get("spf"))),
        ("dmarc", "DMARC", dmarc_purpose, f"_dmarc.{sender_domain.domain}", dmarc_record(sender_domain),
         _checked(checks.get("dmarc"))),
    ]  # fmt: skip
    return [
        DnsRecord(key=k, title=title, purpose=purpose, name=name, value=value, state=state, error=error)
        for k, title, purpose, name, value, (state, error) in wanted
        if name
    ]


@transaction.atomic(durable=True)
def rotate_dkim_key(
    *, actor: User, account: Account, domain_id: int, real_actor: User | None = None
) -> SenderDomain:
    """Make a new DKIM key (a new selector) for one of the account's domains. The current key goes on
    signing until a check finds the new key's record, then retires (signing.mark_published), so mail is
    signed throughout. Raises SenderDomain.DoesNotExist (not this account's) or PermissionDenied."""
    sender_domain = SenderDomain.objects.for_account(account).select_for_update().get(pk=domain_id)
    require_role(actor, account, Membership.Role.ADMIN)
    key = signing.generate_key(sender_domain, selector=signing.unused_selector(sender_domain))
    checks = dict(sender_domain.dns_checks or {})
    checks.pop("dkim", None)  # the last check was of the old key's record
    sender_domain.dns_checks = checks
    sender_domain.save(update_fields=["dns_checks"])
    record(
        actor=actor, real_actor=real_actor, account=account, action="domain.dkim_rotated",
        after={"domain": sender_domain.domain, "selector": key.selector},
    )  # fmt: skip
    return sender_domain
