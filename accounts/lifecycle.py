"""Every action on a subaccount's life, one function each (DESIGN.md, "Lifecycle").

Each runs in one transaction, in this order: fetch and lock inside the tenant, permission check, state
check, write, AuditEvent, emails after commit. Another master's subaccount raises Account.DoesNotExist
(the views turn it into a 404); refusals raise the domain errors of accounts/errors.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from . import alerts, emails, invites, ratelimit, signals
from .audit import diff, record
from .errors import DomainError, InvalidTransition, PermissionDenied, ValidationError
from .models import Account, Membership, TrailingUsage, Usage, User
from .permissions import require_not_impersonating, require_role
from .validation import (
    clean_contact_email,
    clean_hourly_limit,
    clean_monthly_limit,
    clean_name,
    clean_notes,
    clean_public_id,
)

RESET_EMAILS_PER_HOUR = 5
EDITABLE_FIELDS = ("name", "public_id", "contact_email", "monthly_limit", "hourly_limit", "notes")


def generate_public_id(master: Account, name: str) -> str:
    """An id from the name ("Acme Shop" → "acme-shop"), made unique within the master with a suffix."""
    base = slugify(name)[:240] or "subaccount"
    taken = set(
        Account.objects.subaccounts_of(master)
        .filter(public_id__startswith=base)
        .values_list("public_id", flat=True)
    )
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _require_email_free(email: str, *, except_user: User | None = None) -> None:
    users = User.objects.filter(email__iexact=email)
    if except_user is not None:
        users = users.exclude(pk=except_user.pk)
    if users.exists():
        raise ValidationError(
            "This address already has a login here; each subaccount owner needs an address of their own.",
            field="contact_email",
        )


def _require_public_id_free(master: Account, public_id: str, *, except_pk: int | None = None) -> None:
    clash = Account.objects.subaccounts_of(master).filter(public_id=public_id)
    if except_pk is not None:
        clash = clash.exclude(pk=except_pk)
    if clash.exists():
        raise ValidationError(f"A subaccount with id {public_id} already exists", field="public_id")


def _invite_new_owner(subaccount: Account, email: str) -> User:
    owner = User.objects.create_user(email=email)
    Membership.objects.create(user=owner, account=subaccount, role=Membership.Role.OWNER)
    EmailAddress.objects.create(user=owner, email=email, primary=True, verified=False)
    invites.issue_invitation(account=subaccount, user=owner)
    return owner


def _locked_subaccount(master: Account, subaccount_id: int) -> Account:
    return Account.objects.subaccounts_of(master).select_for_update().get(pk=subaccount_id)


def _owner_of(account: Account) -> User | None:
    membership = (
        Membership.objects.select_related("user").filter(account=account, role=Membership.Role.OWNER).first()
    )
    return membership.user if membership else None


def _snapshot(account: Account) -> dict:
    return {
        "name": account.name,
        "public_id": account.public_id,
        "contact_email": account.contact_email,
        "monthly_limit": account.monthly_limit,
        "hourly_limit": account.hourly_limit,
        "notes": account.notes,
    }


# --- the actions ------------------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def create_subaccount(
    *,
    actor: User,
    master: Account,
    name: str,
    contact_email: str | None,
    monthly_limit: int | str | None = None,
    hourly_limit: int | str | None = None,
    public_id: str = "",
    notes: str = "",
    real_actor: User | None = None,
) -> Account:
    """Create a subaccount and its owner (no password yet) and send the owner an invite. The API may
    pass contact_email=None: the subaccount then has no owner until one is set with update_subaccount,
    and monthly_limit=None: it then gets SUBACCOUNT_DEFAULT_MONTHLY_LIMIT (Mandrill has no monthly
    quota, so its clients never send one). Raises PermissionDenied (not an owner/admin of the master),
    InvalidTransition (the master is closed) or ValidationError."""
    master = Account.objects.select_for_update().get(pk=master.pk, kind=Account.Kind.MASTER)
    require_role(actor, master, Membership.Role.ADMIN)
    if master.status == Account.Status.CLOSED:
        raise InvalidTransition("Your account is closed; it cannot create subaccounts.")
    name = clean_name(name)
    contact_email = clean_contact_email(contact_email) if contact_email is not None else ""
    if monthly_limit is None:
        monthly_limit = settings.SUBACCOUNT_DEFAULT_MONTHLY_LIMIT
    monthly_limit = clean_monthly_limit(monthly_limit)
    hourly_limit = clean_hourly_limit(hourly_limit)
    public_id = clean_public_id(public_id) if (public_id or "").strip() else generate_public_id(master, name)
    _require_public_id_free(master, public_id)
    if contact_email:
        _require_email_free(contact_email)
    try:
        with transaction.atomic():
            subaccount = Account.objects.create(
                kind=Account.Kind.SUBACCOUNT,
                parent=master,
                public_id=public_id,
                name=name,
                notes=clean_notes(notes),
                contact_email=contact_email,
                monthly_limit=monthly_limit,
                hourly_limit=hourly_limit,
                alert_thresholds=None,
            )
            if contact_email:
                _invite_new_owner(subaccount, contact_email)
    except IntegrityError:  # a concurrent create took the id or the address between our checks
        raise ValidationError(
            f"A subaccount with id {public_id} or a login for {contact_email} already exists",
            field="public_id",
        ) from None
    record(
        actor=actor,
        real_actor=real_actor,
        account=subaccount,
        action="subaccount.created",
        after=_snapshot(subaccount),
    )
    return subaccount


@transaction.atomic(durable=True)
def update_subaccount(
    *, actor: User, master: Account, subaccount_id: int, changes: dict, real_actor: User | None = None
) -> Account:
    """Change details and limits (any state but closed). A lowered limit applies to the next send.
    The contact email is the owner's login, so it changes only until the invite is accepted (the new
    address gets a new invite). Raises PermissionDenied, InvalidTransition, ValidationError."""
    subaccount = _locked_subaccount(master, subaccount_id)
    require_role(actor, master, Membership.Role.ADMIN)
    if subaccount.status == Account.Status.CLOSED:
        raise InvalidTransition(f"{subaccount.name} is closed. Reopen it to change its details.")
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    before = _snapshot(subaccount)
    cleaners = {
        "name": clean_name,
        "public_id": clean_public_id,
        "contact_email": clean_contact_email,
        "monthly_limit": clean_monthly_limit,
        "hourly_limit": clean_hourly_limit,
        "notes": clean_notes,
    }
    cleaned = {field: cleaners[field](value) for field, value in changes.items()}
    if cleaned.get("public_id", subaccount.public_id) != subaccount.public_id:
        _require_public_id_free(master, cleaned["public_id"], except_pk=subaccount.pk)
    owner = _owner_of(subaccount)
    new_email = cleaned.get("contact_email", subaccount.contact_email)
    email_changes = new_email != subaccount.contact_email
    if email_changes:
        if owner is not None and owner.has_usable_password():
            raise ValidationError(
                "The owner has accepted the invite: their contact email is their login and only they can change it.",
                field="contact_email",
            )
        _require_email_free(new_email, except_user=owner)
    for field, value in cleaned.items():
        setattr(subaccount, field, value)
    before, after = diff(before, _snapshot(subaccount))
    if not after:
        return subaccount
    subaccount.save(update_fields=[*after.keys(), "updated_at"])
    try:
        with transaction.atomic():  # a concurrent create may take the address between check and write
            if email_changes and owner is None:
                _invite_new_owner(subaccount, new_email)
            elif email_changes:
                owner.email = new_email
                owner.save(update_fields=["email"])
    except IntegrityError:
        raise ValidationError(
            "This address was just taken by another login.", field="contact_email"
        ) from None
    if email_changes and owner is not None:
        EmailAddress.objects.filter(user=owner).delete()
        EmailAddress.objects.create(user=owner, email=new_email, primary=True, verified=False)
        invites.issue_invitation(account=subaccount, user=owner)
    record(
        actor=actor,
        real_actor=real_actor,
        account=subaccount,
        action="subaccount.updated",
        before=before,
        after=after,
    )
    if "monthly_limit" in after:  # a lowered limit may put usage past a threshold already
        transaction.on_commit(lambda: alerts.check_limit_alerts(account=subaccount))
    return subaccount


@transaction.atomic(durable=True)
def resend_invite(
    *, actor: User, master: Account, subaccount_id: int, real_actor: User | None = None
) -> Account:
    """Send a fresh invite; the previous link then says it was replaced. Only until the owner accepts."""
    subaccount = _locked_subaccount(master, subaccount_id)
    require_role(actor, master, Membership.Role.ADMIN)
    if subaccount.status == Account.Status.CLOSED:
        raise InvalidTransition(f"{subaccount.name} is closed. Reopen it before inviting its owner.")
    owner = _owner_of(subaccount)
    if owner is None:
        raise InvalidTransition(f"{subaccount.name} has no owner to invite.")
    if owner.has_usable_password():
        raise InvalidTransition(
            f"{owner.email} has already accepted the invite. Send a password reset email instead."
        )
    invites.issue_invitation(account=subaccount, user=owner)
    record(
        actor=actor,
        real_actor=real_actor,
        account=subaccount,
        action="invite.resent",
        after={"email": owner.email},
    )
    return subaccount


@transaction.atomic(durable=True)
def send_password_reset_email(
    *, actor: User, master: Account, subaccount_id: int, real_actor: User | None = None
) -> Account:
    """Send the owner allauth's single-use reset link. At most RESET_EMAILS_PER_HOUR per subaccount."""
    subaccount = _locked_subaccount(master, subaccount_id)
    require_role(actor, master, Membership.Role.ADMIN)
    owner = _owner_of(subaccount)
    if owner is None:
        raise InvalidTransition(f"{subaccount.name} has no owner to send a reset link to.")
    if not ratelimit.hit(f"reset-email:{subaccount.pk}", limit=RESET_EMAILS_PER_HOUR, window_seconds=3600):
        raise PermissionDenied(
            "Too many password reset emails for this subaccount in the last hour. Try again later."
        )
    record(
        actor=actor,
        real_actor=real_actor,
        account=subaccount,
        action="password_reset.sent",
        after={"email": owner.email},
    )
    email = owner.email
    transaction.on_commit(lambda: emails.send_password_reset(email=email))
    return subaccount


@transaction.atomic(durable=True)
def set_archiving(
    *, actor: User, master: Account, subaccount_id: int, enabled: bool, real_actor: User | None = None
) -> Account:
    """Turn email archiving on or off; it applies to mail accepted from now on."""
    subaccount = _locked_subaccount(master, subaccount_id)
    require_role(actor, master, Membership.Role.ADMIN)
    if subaccount.archiving_enabled == enabled:
        return subaccount
    subaccount.archiving_enabled = enabled
    subaccount.save(update_fields=["archiving_enabled", "updated_at"])
    record(
        actor=actor,
        real_actor=real_actor,
        account=subaccount,
        action="archiving.enabled" if enabled else "archiving.disabled",
        before={"archiving_enabled": not enabled},
        after={"archiving_enabled": enabled},
    )
    return subaccount


TRACKED = {"opens": "track_opens", "clicks": "track_clicks"}


@transaction.atomic(durable=True)
def set_tracking(
    *,
    actor: User,
    master: Account,
    subaccount_id: int,
    what: str,
    enabled: bool,
    real_actor: User | None = None,
) -> Account:
    """Turn open or click tracking (`what`: "opens" or "clicks") on or off by default for the subaccount's
    mail: it applies to messages accepted from now on that do not say (`track_opens`/`track_clicks`).
    Raises Account.DoesNotExist (not this master's) or PermissionDenied (not an admin)."""
    field = TRACKED[what]
    subaccount = _locked_subaccount(master, subaccount_id)
    require_role(actor, master, Membership.Role.ADMIN)
    if getattr(subaccount, field) == enabled:
        return subaccount
    setattr(subaccount, field, enabled)
    subaccount.save(update_fields=[field, "updated_at"])
    record(
        actor=actor,
        real_actor=real_actor,
        account=subaccount,
        action=f"tracking.{what}.{'enabled' if enabled else 'disabled'}",
        before={field: not enabled},
        after={field: enabled},
    )
    return subaccount


def _transition(
    *,
    actor: User,
    master: Account,
    subaccount_id: int,
    real_actor: User | None,
    allowed_from: set[str],
    to: str,
    action: str,
    refusal: str,
    idempotent: bool = False,
) -> Account:
    """The order of every small state change: lock, role, state, change, audit. With `idempotent`,
    a subaccount already in the target state is left as it is (Mandrill's pause and resume): the check
    reads the locked row, so two racing callers cannot both change it."""
    subaccount = _locked_subaccount(master, subaccount_id)
    require_role(actor, master, Membership.Role.ADMIN)
    if idempotent and subaccount.status == to:
        return subaccount
    if subaccount.status not in allowed_from:
        raise InvalidTransition(
            refusal.format(name=subaccount.name, status=subaccount.get_status_display().lower())
        )
    before = subaccount.status
    now = timezone.now()
    subaccount.status = to
    subaccount.paused_at = now if to == Account.Status.PAUSED else None
    subaccount.closed_at = now if to == Account.Status.CLOSED else None
    subaccount.pause_reason = ""  # a person's action: whatever paused it automatically is settled
    subaccount.save(update_fields=["status", "paused_at", "closed_at", "pause_reason", "updated_at"])
    record(
        actor=actor,
        real_actor=real_actor,
        account=subaccount,
        action=action,
        before={"status": before},
        after={"status": to},
    )
    return subaccount


@transaction.atomic(durable=True)
def pause_subaccount(
    *,
    actor: User,
    master: Account,
    subaccount_id: int,
    real_actor: User | None = None,
    if_needed: bool = False,
) -> Account:
    """Stop sending; mail sent while paused is accepted and held (at most 72 h). Only from active; with
    `if_needed`, pausing a paused subaccount does nothing (the API's way)."""
    return _transition(
        actor=actor, master=master, subaccount_id=subaccount_id, real_actor=real_actor, idempotent=if_needed,
        allowed_from={Account.Status.ACTIVE}, to=Account.Status.PAUSED, action="subaccount.paused",
        refusal="{name} is {status}, not active: only an active subaccount can be paused.",
    )  # fmt: skip


@transaction.atomic(durable=True)
def resume_subaccount(
    *,
    actor: User,
    master: Account,
    subaccount_id: int,
    real_actor: User | None = None,
    if_needed: bool = False,
) -> Account:
    """Start sending again; held mail is released (by mailing, on the account_resumed signal). Only from
    paused; with `if_needed`, resuming an active subaccount does nothing (the API's way)."""
    subaccount = _transition(
        actor=actor, master=master, subaccount_id=subaccount_id, real_actor=real_actor, idempotent=if_needed,
        allowed_from={Account.Status.PAUSED}, to=Account.Status.ACTIVE, action="subaccount.resumed",
        refusal="{name} is {status}, not paused: there is nothing to resume.",
    )  # fmt: skip
    transaction.on_commit(lambda: signals.account_resumed.send(sender=Account, account=subaccount))
    return subaccount


@transaction.atomic
def pause_automatically(*, subaccount_id: int, reason: str) -> bool:
    """Pause a subaccount whose bounces or complaints passed its limits (accounts/reputation.py): no person
    acts, so no role is checked; the trail says why, and the agency's admins are told once. Returns False
    when it is not active (paused already, perhaps by a racing bounce: the locked row decides)."""
    subaccount = (
        Account.objects.select_for_update(of=("self",))
        .select_related("parent")
        .get(pk=subaccount_id, kind=Account.Kind.SUBACCOUNT)
    )
    if subaccount.status != Account.Status.ACTIVE:
        return False
    subaccount.status, subaccount.paused_at = Account.Status.PAUSED, timezone.now()
    subaccount.pause_reason = f"paused automatically: {reason}"[:300]
    subaccount.save(update_fields=["status", "paused_at", "pause_reason", "updated_at"])
    record(actor=None, account=subaccount, action="subaccount.auto_paused", before={"status": "active"},
           after={"status": "paused", "reason": f"paused automatically: {reason}"})  # fmt: skip
    transaction.on_commit(lambda: emails.send_auto_pause_notice(account=subaccount, reason=reason))
    return True


@transaction.atomic(durable=True)
def close_subaccount(
    *, actor: User, master: Account, subaccount_id: int, real_actor: User | None = None
) -> Account:
    """Stop the subaccount for good (until reopened); its owner is told and may renew it on their own."""
    subaccount = _transition(
        actor=actor, master=master, subaccount_id=subaccount_id, real_actor=real_actor,
        allowed_from={Account.Status.ACTIVE, Account.Status.PAUSED}, to=Account.Status.CLOSED,
        action="subaccount.closed", refusal="{name} is already {status}.",
    )  # fmt: skip
    owner = _owner_of(subaccount)
    if owner is not None and owner.has_usable_password():
        email = owner.email
        transaction.on_commit(lambda: emails.send_closed_notice(account=subaccount, email=email))
    return subaccount


@transaction.atomic(durable=True)
def reopen_subaccount(
    *, actor: User, master: Account, subaccount_id: int, real_actor: User | None = None
) -> Account:
    """Bring a closed subaccount back to active."""
    return _transition(
        actor=actor, master=master, subaccount_id=subaccount_id, real_actor=real_actor,
        allowed_from={Account.Status.CLOSED}, to=Account.Status.ACTIVE, action="subaccount.reopened",
        refusal="{name} is {status}, not closed: there is nothing to reopen.",
    )  # fmt: skip


@transaction.atomic(durable=True)
def renew_account(*, actor: User, real_actor: User | None = None) -> Account:
    """The owner of a closed subaccount keeps it as a standalone account: detached from the master,
    active, with the standalone free allowance. The master is told and loses all access; the history
    (audit trail, usage on the master's bills) stays. Raises PermissionDenied or InvalidTransition."""
    require_not_impersonating(real_actor, "Renewing an account")
    membership = Membership.objects.select_related("account").filter(user=actor).first()
    if membership is None:
        raise PermissionDenied("You have no account to renew.")
    account = Account.objects.select_for_update().get(pk=membership.account_id)
    if membership.role != Membership.Role.OWNER:
        raise PermissionDenied("Only the account's owner can renew it.")
    if account.kind != Account.Kind.SUBACCOUNT or account.status != Account.Status.CLOSED:
        raise InvalidTransition("Only a closed subaccount can be renewed.")
    former_master = account.parent
    public_id = account.public_id
    if Account.objects.filter(parent__isnull=True, public_id=public_id).exists():
        public_id = f"{public_id}-{account.pk}"
    now = timezone.now()
    account.kind = Account.Kind.STANDALONE
    account.parent = None
    account.former_parent = former_master
    account.public_id = public_id
    account.status = Account.Status.ACTIVE
    account.monthly_limit = settings.STANDALONE_MONTHLY_LIMIT
    account.hourly_limit = None
    account.alert_thresholds = None
    account.renewed_at = now
    account.closed_at = None
    account.save(
        update_fields=[
            "kind", "parent", "former_parent", "public_id", "status", "monthly_limit", "hourly_limit",
            "alert_thresholds", "renewed_at", "closed_at", "updated_at",
        ]
    )  # fmt: skip
    event = record(
        actor=actor,
        account=account,
        action="account.renewed",
        before={"kind": "subaccount", "master": former_master.public_id, "status": "closed"},
        after={"kind": "standalone", "status": "active", "monthly_limit": account.monthly_limit},
    )
    # The agency's trail keeps the departure, though the account is no longer theirs.
    event.master = former_master
    event.save(update_fields=["master"])
    transaction.on_commit(lambda: emails.send_renewed_notice(account=account, former_master=former_master))
    return account


@transaction.atomic(durable=True)
def delete_subaccount(
    *, actor: User, master: Account, subaccount_id: int, real_actor: User | None = None
) -> None:
    """Delete a subaccount and its people's logins (its owner's and its team's) for good. (The dashboard asks for the name to be typed
    first; that is a question for a person, asked at its edge.) Its Usage rows stay (labelled) for the
    master's bills; its audit trail stays in the master's. Raises Account.DoesNotExist, PermissionDenied."""
    require_not_impersonating(real_actor, "Deleting a subaccount")
    subaccount = _locked_subaccount(master, subaccount_id)
    require_role(actor, master, Membership.Role.ADMIN)
    label = str(subaccount)
    Usage.objects.filter(account=subaccount).update(account_label=label)
    TrailingUsage.objects.filter(account=subaccount).update(account_label=label)  # the overview's top, too
    members = list(User.objects.filter(membership__account=subaccount))  # the owner and their team
    record(actor=actor, account=subaccount, action="subaccount.deleted", before=_snapshot(subaccount))
    subaccount.delete()
    for member in members:  # a login belongs to one account: without it, it opens nothing
        if not Membership.objects.filter(user=member).exists():
            member.delete()


# --- many at once -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkOutcome:
    """What happened to one target of a bulk action: done (with its name) or refused (with why)."""

    subaccount_id: int
    done: bool
    name: str = ""
    reason: str = ""


BULK_ACTIONS = {
    "pause": lambda monthly_limit, **kw: pause_subaccount(**kw),
    "resume": lambda monthly_limit, **kw: resume_subaccount(**kw),
    "set_monthly_limit": lambda monthly_limit, **kw: update_subaccount(
        changes={"monthly_limit": monthly_limit}, **kw
    ),
}


def apply_to_many(
    *,
    actor: User,
    master: Account,
    action: str,
    subaccount_ids: Iterable[int],
    monthly_limit: int | None = None,
    real_actor: User | None = None,
    on_each: Callable[[BulkOutcome], None] | None = None,
) -> list[BulkOutcome]:
    """Apply one action to many subaccounts, each in its own transaction (through the one-target
    service, so each is locked, checked and audited alike), and return every target's outcome: one
    refusal never undoes or stops the others. Not atomic on purpose. `on_each` hears each outcome as
    it happens (a background job reports its progress with it)."""
    service = BULK_ACTIONS[action]
    outcomes = []
    for subaccount_id in subaccount_ids:
        try:
            subaccount = service(
                actor=actor, master=master, subaccount_id=subaccount_id, real_actor=real_actor,
                monthly_limit=monthly_limit,
            )  # fmt: skip
        except Account.DoesNotExist:
            outcomes.append(
                BulkOutcome(subaccount_id, done=False, reason=f"#{subaccount_id}: no such subaccount")
            )
        except DomainError as exc:
            outcomes.append(BulkOutcome(subaccount_id, done=False, reason=exc.message))
        else:
            outcomes.append(BulkOutcome(subaccount_id, done=True, name=subaccount.name))
        if on_each:
            on_each(outcomes[-1])
    return outcomes
