"""Templates: an account's reusable messages, with Mandrill's calls (add, update, publish, delete, list)
and one thing no peer offers: a master shares its templates with chosen or all subaccounts, so an agency
keeps one "password reset" for every customer.

A template has a draft (what is edited) and a published copy (what sends). Its subject, sender and
bodies are defaults: what the message sets wins. Each function is one transaction, checks the actor's
role inside the account, and writes the audit trail.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.text import slugify

from accounts.audit import record
from accounts.errors import DuplicateTemplate, UnknownTemplate, ValidationError
from accounts.models import Account, Membership, User
from accounts.permissions import ApiCaller, require_role
from accounts.validation import UNSTORABLE_HELP, is_storable

from . import merge
from .models import Template
from .outgoing import OutgoingMessage, Recipient, RecipientResult
from .selectors import list_contains
from .sending import accept_messages

MAX_LABELS = 10
MAX_LABEL_CHARS = 100
DRAFT_FIELDS = ("code", "text", "subject", "from_email", "from_name")
MAX_LENGTHS = {
    "name": 255,
    "subject": 998,
    "from_email": 254,
    "from_name": 255,
    "code": 5_000_000,
    "text": 5_000_000,
}

Actor = User | ApiCaller


def clean_labels(labels: Any) -> list[str]:
    if labels is None:
        return []
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ValidationError("Labels are a list of strings.", field="labels")
    cleaned = sorted({label.strip().lower() for label in labels if label.strip()})
    if len(cleaned) > MAX_LABELS or any(len(label) > MAX_LABEL_CHARS for label in cleaned):
        raise ValidationError(
            f"At most {MAX_LABELS} labels of at most {MAX_LABEL_CHARS} characters each.", field="labels"
        )
    return cleaned


def _clean_fields(fields: dict[str, Any]) -> dict[str, str]:
    cleaned = {}
    for name, value in fields.items():
        value = "" if value is None else value
        if not isinstance(value, str):
            raise ValidationError(f"The template's {name} must be a string.", field=name)
        if len(value) > MAX_LENGTHS[name]:
            raise ValidationError(
                f"The template's {name} is longer than {MAX_LENGTHS[name]} characters.", field=name
            )
        if not is_storable(value):
            raise ValidationError(f"The template's {name} {UNSTORABLE_HELP}.", field=name)
        cleaned[name] = value
    return cleaned


def slug_for(name: str) -> str:
    """Mandrill's slug: lower case, words joined by hyphens ("Password Reset" → "password-reset")."""
    return slugify(name, allow_unicode=True)[:255]


def _named(queryset: QuerySet[Template], name: str) -> Template:
    """By slug or by name, as Mandrill accepts either (the slug is preferred)."""
    found = queryset.filter(Q(slug=name) | Q(name=name)).order_by("-slug").first()
    if found is None:
        raise UnknownTemplate(name)
    return found


def template_of(account: Account, name: str) -> Template:
    """One of the account's own templates. Raises UnknownTemplate (also for another tenant's)."""
    return _named(Template.objects.for_account(account), name)


def template_for_sending(account: Account, name: str) -> Template:
    """The template `account` sends with: its own first, else one its master shares with it."""
    usable = Template.objects.usable_by(account)
    own = usable.filter(account=account)
    try:
        return _named(own, name)
    except UnknownTemplate:
        return _named(usable, name)


def templates_for(account: Account, *, label: str = "") -> QuerySet[Template]:
    templates = Template.objects.for_account(account)
    if label:
        templates = templates.filter(list_contains("labels", label.strip().lower()))
    return templates.order_by("name")


def _publish(template: Template) -> None:
    """Copy the draft to the published fields; a draft saved and published at once is not "changed"."""
    for name in DRAFT_FIELDS:
        setattr(template, f"publish_{name}", getattr(template, name))
    template.published_at = max(timezone.now(), template.draft_updated_at)


@transaction.atomic(durable=True)
def add_template(
    *, actor: Actor, account: Account, name: str, labels: Any = None, publish: bool = True, **fields: Any
) -> Template:
    """Create a template (published at once unless publish=False, as Mandrill's default). Raises
    PermissionDenied, ValidationError, DuplicateTemplate."""
    require_role(actor, account, Membership.Role.ADMIN)
    name = _clean_fields({"name": name})["name"].strip()
    slug = slug_for(name)
    if not name or not slug:
        raise ValidationError("A template needs a name with at least one letter or digit.", field="name")
    template = Template(
        account=account, name=name, slug=slug, labels=clean_labels(labels), **_clean_fields(fields)
    )
    if publish:
        _publish(template)
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:
        raise DuplicateTemplate(name) from None
    record(actor=actor, account=account, action="template.added", after={"name": name, "published": publish})
    return template


@transaction.atomic(durable=True)
def update_template(
    *, actor: Actor, account: Account, name: str, publish: bool = True, labels: Any = None, **fields: Any
) -> Template:
    """Change the draft (fields given as None stay as they are) and, unless publish=False, publish it.
    Raises UnknownTemplate, PermissionDenied, ValidationError."""
    template = _named(Template.objects.for_account(account).select_for_update(), name)
    require_role(actor, account, Membership.Role.ADMIN)
    changes = _clean_fields({key: value for key, value in fields.items() if value is not None})
    for key, value in changes.items():
        setattr(template, key, value)
    if labels is not None:
        template.labels = clean_labels(labels)
    if changes:
        template.draft_updated_at = timezone.now()
    if publish:
        _publish(template)
    template.save()
    record(actor=actor, account=account, action="template.updated",
           after={"name": template.name, "changed": sorted(changes), "published": publish})  # fmt: skip
    return template


@transaction.atomic(durable=True)
def publish_template(*, actor: Actor, account: Account, name: str) -> Template:
    template = _named(Template.objects.for_account(account).select_for_update(), name)
    require_role(actor, account, Membership.Role.ADMIN)
    _publish(template)
    template.save(update_fields=[*(f"publish_{n}" for n in DRAFT_FIELDS), "published_at", "updated_at"])
    record(actor=actor, account=account, action="template.published", after={"name": template.name})
    return template


@transaction.atomic(durable=True)
def delete_template(*, actor: Actor, account: Account, name: str) -> Template:
    """Delete for good; returns the template as it was (Mandrill answers with it)."""
    template = _named(Template.objects.for_account(account).select_for_update(), name)
    require_role(actor, account, Membership.Role.ADMIN)
    record(actor=actor, account=account, action="template.deleted", before={"name": template.name})
    deleted_pk = template.pk
    template.delete()
    template.pk = deleted_pk
    return template


@transaction.atomic(durable=True)
def share_template(
    *, actor: Actor, master: Account, name: str, subaccount_ids: list[int], all_subaccounts: bool
) -> Template:
    """Let chosen subaccounts (or all, present and future) send with one of the master's templates."""
    if not master.is_master:
        raise ValidationError("Only an agency can share its templates.")
    template = _named(Template.objects.for_account(master).select_for_update(), name)
    require_role(actor, master, Membership.Role.ADMIN)
    chosen = list(Account.objects.subaccounts_of(master).filter(pk__in=subaccount_ids))
    template.share_with_all_subaccounts = all_subaccounts
    template.save(update_fields=["share_with_all_subaccounts", "updated_at"])
    template.shared_with.set(chosen)
    record(actor=actor, account=master, action="template.shared",
           after={"name": template.name, "all": all_subaccounts, "subaccounts": [a.public_id for a in chosen]})  # fmt: skip
    return template


def send_test(*, actor: User, account: Account, name: str) -> list[RecipientResult]:
    """Send the draft to the person asking, as the account sends (it counts like any send), so they see
    it as a recipient will. Raises ValidationError when it cannot go (no From, a refusal)."""
    template = template_of(account, name)
    require_role(actor, account, Membership.Role.ADMIN)
    if not template.from_email:
        raise ValidationError("Give the template a From address before sending a test.", field="from_email")
    message = OutgoingMessage(
        from_email=template.from_email, from_name=template.from_name, subject=f"[Test] {template.subject}",
        html=template.code, text=template.text, recipients=[Recipient(email=actor.email)], tags=["template-test"],
        template=template.slug,
    )  # fmt: skip
    results = accept_messages(account=account, message=message)
    if results[0].status not in ("queued", "sent"):
        raise ValidationError(f"The test was not sent: {results[0].reject_reason or results[0].status}.")
    return results


def message_from_template(
    template: Template, message: OutgoingMessage, template_content: Any
) -> OutgoingMessage:
    """`messages/send-template`: the template's published HTML with its mc:edit regions filled from
    `template_content`, and its subject, sender and text wherever the message leaves them empty (what the
    message sets wins). Raises ValidationError for a template never published or content that does not fit."""
    if not template.is_published:
        raise ValidationError(
            f'The template "{template.name}" has not been published yet.', field="template_name"
        )
    try:
        html = merge.fill_editable_regions(template.publish_code or "", template_content or [])
    except merge.MergeError as exc:
        raise ValidationError(f"template_content: {exc.message}", field="template_content") from None
    return replace(
        message,
        html=html,
        text=message.text or template.publish_text or "",
        subject=message.subject or template.publish_subject or "",
        from_email=message.from_email or template.publish_from_email or "",
        from_name=message.from_name or template.publish_from_name or "",
        template=template.slug,
    )
