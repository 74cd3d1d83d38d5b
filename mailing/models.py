"""What is sent: API keys, messages (one row per recipient, each pointing at its content, stored once)
and the archive."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account, User


def new_public_id() -> str:
    return uuid.uuid4().hex


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def for_account(self, account: Account) -> ApiKeyQuerySet:
        return self.filter(account=account)


class ApiKey(models.Model):
    """A program's credential for one account. Only the SHA-256 of the secret is stored; the secret is
    shown once, when the key is made."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    label = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The first characters of the key, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.label} ({self.prefix}…)"


def _canonical(value) -> bytes:
    # Keys sorted: PostgreSQL's jsonb keeps no key order, so a body read back gives the digest it had.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


def attachments_digest(attachments: list) -> str:
    """SHA-256 (hex) of the attachments: hashed once per call, however many recipients' bodies hold them."""
    return hashlib.sha256(_canonical(attachments)).hexdigest()


def content_digest(*, text: str, html: str, headers: dict, attachments_digest: str) -> str:
    """SHA-256 (hex) of a canonical serialisation of a body (its attachments by their digest): equal
    bodies, equal digests."""
    return hashlib.sha256(_canonical([text, html, headers, attachments_digest])).hexdigest()


class MessageContent(models.Model):
    """A message's body (text, HTML, headers, attachments), stored once and shared by every recipient
    row that has it: a call to 100 recipients writes it once, and identical calls of the same account
    share it (content-addressed by `digest`, per account: never shared across tenants). Rows no message
    or archived copy points at any more are purged (mailing/bodies.py)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="message_contents")
    digest = models.CharField(max_length=64, help_text="content_digest() of the four parts.")
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    attachments = models.JSONField(default=list, blank=True, help_text="[{name, type, content (base64)}]")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "digest"], name="message_content_per_account")
        ]
        indexes = [models.Index(fields=["created_at"], name="message_content_created")]

    def __str__(self) -> str:
        return f"content {self.digest[:12]} of account {self.account_id}"


class BodyFields:
    """`text`, `html`, `headers` and `attachments` read through `content` (empty when there is none: a
    rejected message stores no body). Read-only: a body is written once, by the accept path. Load
    `select_related("content")` wherever many rows are read with their bodies."""

    @property
    def text(self) -> str:
        return self.content.text if self.content_id else ""

    @property
    def html(self) -> str:
        return self.content.html if self.content_id else ""

    @property
    def headers(self) -> dict:
        return self.content.headers if self.content_id else {}

    @property
    def attachments(self) -> list:
        return self.content.attachments if self.content_id else []


class MessageQuerySet(models.QuerySet["Message"]):
    def for_account(self, account: Account) -> MessageQuerySet:
        """A subaccount sees its own messages; a master its own and its subaccounts'."""
        if account.is_master:
            # A semi-join rather than an OR across a join: newest-first pages walk the created_at index.
            agency = Account.objects.filter(Q(pk=account.pk) | Q(parent=account)).values("pk")
            return self.filter(account_id__in=agency)
        return self.filter(account=account)


class Message(BodyFields, models.Model):
    """One recipient's copy of a sent email, from acceptance to delivery; its body is its `content`."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        QUEUED = "queued", "Queued"
        HELD = "held", "Held (sending paused)"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        REJECTED = "rejected", "Rejected"
        BOUNCED = "bounced", "Bounced"
        FAILED = "failed", "Failed"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="messages")
    # Random 128 bits, so unique in practice; the database cannot enforce it alone on a table partitioned
    # by month (a unique index must hold the partition key), so it is an index (mailing/partitions.py).
    public_id = models.CharField(
        max_length=32, db_index=True, default=new_public_id, help_text="Mandrill's _id."
    )
    from_email = models.EmailField(max_length=254)
    from_name = models.CharField(max_length=255, blank=True)
    to_email = models.EmailField(max_length=254)
    to_name = models.CharField(max_length=255, blank=True)
    to_type = models.CharField(max_length=3, default="to")
    subject = models.CharField(max_length=998, blank=True)
    # No foreign-key constraint: PostgreSQL would check every recipient row against the content table at
    # commit (a trigger, a lookup and a row lock per row: 100 for a call to 100 recipients, all on the
    # same row). The link is kept by the accept path instead, which locks each content it reuses until
    # it commits, and by the purge, which deletes only contents nothing points at (mailing/bodies.py).
    # Indexed: the purge asks whether any message still points at a content.
    content = models.ForeignKey(
        MessageContent,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        help_text="The body; none for a rejected message.",
    )
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    template = models.CharField(
        max_length=255, blank=True, help_text="The slug of the template it was sent with."
    )
    shown_to = models.JSONField(
        default=list,
        blank=True,
        help_text="preserve_recipients: the To list every copy shows ([{email, name}]).",
    )
    shown_cc = models.JSONField(default=list, blank=True, help_text="preserve_recipients: the Cc list shown.")
    bcc_address = models.CharField(
        max_length=254, blank=True, help_text="Gets a copy of this recipient's mail."
    )
    important = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    reject_reason = models.CharField(max_length=40, blank=True)
    queued_reason = models.CharField(max_length=40, blank=True)
    archive = models.BooleanField(default=False, help_text="Archiving was on when the message was accepted.")
    attempts = models.PositiveSmallIntegerField(default=0)
    claim = models.UUIDField(null=True, blank=True, help_text="The delivery run that holds the message.")
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    send_at = models.DateTimeField(null=True, blank=True, help_text="Scheduled: when it is to leave (UTC).")
    last_error = models.TextField(blank=True)
    # Open and click tracking (mailing/tracking/): what was asked at accept time, the links a click may
    # lead to (the redirect goes only to one of these, by index), and what recipients did.
    track_opens = models.BooleanField(default=False)
    track_clicks = models.BooleanField(default=False)
    url_strip_qs = models.BooleanField(
        default=False, help_text="Clicks are reported without the link's query string."
    )
    tracked_links = models.JSONField(
        default=list, blank=True, help_text="The links rewritten for click tracking, by index."
    )
    opens = models.PositiveIntegerField(
        default=0, help_text="Opens by people (prefetching bots not counted)."
    )
    clicks = models.PositiveIntegerField(default=0, help_text="Clicks by people (link scanners not counted).")
    first_opened_at = models.DateTimeField(null=True, blank=True)
    first_clicked_at = models.DateTimeField(null=True, blank=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at"], name="message_account_created"),
            models.Index(fields=["-created_at"], name="message_created"),
            models.Index(fields=["account", "status", "-created_at"], name="message_account_status"),
            models.Index(
                fields=["status", "next_attempt_at"],
                name="message_pending",
                condition=Q(status__in=["scheduled", "queued", "held", "sending"]),
            ),
            # messages/search's template: and templates/time-series
            models.Index(
                fields=["account", "template", "-created_at"],
                name="message_template",
                condition=~Q(template=""),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "scheduled",
                        "queued",
                        "held",
                        "sending",
                        "sent",
                        "rejected",
                        "bounced",
                        "failed",
                    ]
                ),
                name="message_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject!r} to {self.to_email} ({self.status})"


class ArchivedMessage(BodyFields, models.Model):
    """A copy of a sent message, kept for the retention period when archiving was on: its envelope, and
    its body by pointing at the message's content (not a copy of it)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="archived_messages")
    # No foreign-key constraint: messages live in monthly partitions, which a constraint cannot point
    # into (mailing/partitions.py); Django still clears the link when a message is deleted.
    message = models.ForeignKey(
        Message, null=True, on_delete=models.SET_NULL, related_name="archived_copies", db_constraint=False
    )
    from_email = models.EmailField(max_length=254)
    to_email = models.EmailField(max_length=254)
    subject = models.CharField(max_length=998, blank=True)
    # No constraint, as on Message.content (the archive is partitioned by month too).
    content = models.ForeignKey(
        MessageContent,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["-sent_at"]
        indexes = [models.Index(fields=["account", "-sent_at"], name="archive_account_sent")]

    def __str__(self) -> str:
        return f"{self.subject!r} to {self.to_email}"


def own_or_shared_with(account: Account) -> Q:
    """Rows of `account`, and of its master where shared with it (chosen, or all subaccounts): how sender
    domains and templates reach an agency's customers."""
    own = Q(account=account)
    if account.is_subaccount:
        own |= Q(account_id=account.parent_id) & (Q(share_with_all_subaccounts=True) | Q(shared_with=account))
    return own


class SenderDomainQuerySet(models.QuerySet["SenderDomain"]):
    def for_account(self, account: Account) -> SenderDomainQuerySet:
        return self.filter(account=account)

    def usable_by(self, account: Account) -> SenderDomainQuerySet:
        """Verified domains `account` may send from: its own, and those its master shares with it."""
        return self.filter(own_or_shared_with(account), verified_at__isnull=False).distinct()


class SenderDomain(models.Model):
    """A domain an account sends from, proven by a DNS TXT record holding its token."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="sender_domains")
    domain = models.CharField(max_length=253)
    token = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    share_with_all_subaccounts = models.BooleanField(
        default=False, help_text="A master's domain, usable by all its subaccounts, present and future."
    )
    shared_with = models.ManyToManyField(Account, blank=True, related_name="shared_sender_domains")
    dns_checks = models.JSONField(
        default=dict, blank=True, help_text="The last check of each record: {dkim|spf|dmarc: {valid, error}}."
    )

    objects = SenderDomainQuerySet.as_manager()

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(fields=["account", "domain"], name="sender_domain_unique_per_account")
        ]

    def __str__(self) -> str:
        return self.domain

    @property
    def record_name(self) -> str:
        return f"_reseller-verify.{self.domain}"

    @property
    def record_value(self) -> str:
        return f"reseller-verify={self.token}"


class IdempotentCall(models.Model):
    """A send made with an Idempotency-Key: a repeat of the same key (by the same account, within
    IDEMPOTENCY_HOURS) gets this answer again and stores nothing. Written in the accept transaction, so
    the answer exists exactly when the messages do."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="idempotent_calls")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the request, to refuse a reused key.")
    answer = models.JSONField(default=list)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "key"], name="idempotent_call_per_account")]

    def __str__(self) -> str:
        return f"{self.key} ({self.created_at:%Y-%m-%d %H:%M})"


class TemplateQuerySet(models.QuerySet["Template"]):
    def for_account(self, account: Account) -> TemplateQuerySet:
        """The account's own templates (what it manages)."""
        return self.filter(account=account)

    def usable_by(self, account: Account) -> TemplateQuerySet:
        """Templates `account` may send with: its own, and those its master shares with it."""
        return self.filter(own_or_shared_with(account)).distinct()


class Template(models.Model):
    """A message an account sends again and again, with merge tags: a draft that is edited and a
    published copy that sends (Mandrill's `publish_*` fields). Its fields are the message's defaults."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="templates")
    name = models.CharField(max_length=255)
    slug = models.SlugField(max_length=255, allow_unicode=True)
    labels = models.JSONField(default=list, blank=True)
    code = models.TextField(blank=True, help_text="The draft's HTML, with mc:edit regions and merge tags.")
    text = models.TextField(blank=True)
    subject = models.CharField(max_length=998, blank=True)
    from_email = models.CharField(max_length=254, blank=True)
    from_name = models.CharField(max_length=255, blank=True)
    publish_code = models.TextField(null=True, blank=True)
    publish_text = models.TextField(null=True, blank=True)
    publish_subject = models.CharField(max_length=998, null=True, blank=True)
    publish_from_email = models.CharField(max_length=254, null=True, blank=True)
    publish_from_name = models.CharField(max_length=255, null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    share_with_all_subaccounts = models.BooleanField(
        default=False,
        help_text="A master's template: every subaccount, present and future, may send with it.",
    )
    shared_with = models.ManyToManyField(Account, blank=True, related_name="shared_templates")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    draft_updated_at = models.DateTimeField(default=timezone.now)

    objects = TemplateQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["account", "slug"], name="template_slug_per_account"),
            models.UniqueConstraint(fields=["account", "name"], name="template_name_per_account"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_published(self) -> bool:
        return self.published_at is not None


class DkimKey(models.Model):
    """A sending domain's DKIM key pair. The newest key not retired signs; an older one stays until
    retired so that mail signed with it verifies while receivers' DNS caches catch up after a rotation.
    The private key is encrypted at rest (mailing/deliverability/signing.py)."""

    domain = models.ForeignKey(SenderDomain, on_delete=models.CASCADE, related_name="dkim_keys")
    selector = models.CharField(max_length=63)
    private_key = models.TextField(help_text="PEM, encrypted with DKIM_ENCRYPTION_KEY.")
    public_key = models.TextField(
        help_text="Base64 of the DER SubjectPublicKeyInfo, as the DNS record holds it."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(
        null=True, blank=True, help_text="When a check first found its DNS record."
    )
    retired_at = models.DateTimeField(null=True, blank=True, help_text="Replaced by a newer published key.")

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "selector"], name="dkim_selector_per_domain")
        ]

    def __str__(self) -> str:
        return f"{self.selector}._domainkey.{self.domain.domain}"

    @property
    def record_name(self) -> str:
        return str(self)

    @property
    def record_value(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_key}"


class Suppression(models.Model):
    """An address an account does not send to (Mandrill's rejects, the denylist): added by a hard bounce,
    a complaint, an unsubscribe, repeated soft bounces (for a while) or by hand. Addresses are stored in
    lower case. A send to it is rejected with `reason` and costs no quota; the allowlist wins."""

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard-bounce", "Hard bounce"
        SOFT_BOUNCE = "soft-bounce", "Soft bounces"
        SPAM = "spam", "Spam complaint"
        UNSUB = "unsub", "Unsubscribed"
        CUSTOM = "custom", "Added by hand"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="suppressions")
    email = models.CharField(max_length=254)
    reason = models.CharField(max_length=12, choices=Reason.choices)
    detail = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_event_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Soft bounces expire; the rest never do."
    )

    class Meta:
        ordering = ["-last_event_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["account", "email"], name="suppression_per_account")]

    def __str__(self) -> str:
        return f"{self.email} ({self.reason})"

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())


class AllowlistEntry(models.Model):
    """An address an account always sends to, whatever bounced or complained: it is never suppressed."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="allowlist")
    email = models.CharField(max_length=254)
    detail = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email"]
        constraints = [models.UniqueConstraint(fields=["account", "email"], name="allowlist_per_account")]

    def __str__(self) -> str:
        return self.email


class MessageEvent(models.Model):
    """Something that happened to a message after it was accepted (Mandrill's event names). Pages count
    Usage, never these rows; they are the message's timeline and, later, what webhooks deliver."""

    class Kind(models.TextChoices):
        SEND = "send", "Delivered"
        DEFERRAL = "deferral", "Deferred"
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        SOFT_BOUNCE = "soft_bounce", "Soft bounce"
        REJECT = "reject", "Rejected"
        SPAM = "spam", "Marked as spam"
        UNSUB = "unsub", "Unsubscribed"
        OPEN = "open", "Opened"
        CLICK = "click", "Clicked"

    # No foreign-key constraint, as on ArchivedMessage.message: messages are partitioned by month.
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events", db_constraint=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="message_events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    created_at = models.DateTimeField(default=timezone.now)
    diagnostic = models.CharField(max_length=1000, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["message", "created_at"], name="event_message"),
            models.Index(fields=["account", "-created_at"], name="event_account_created"),
            # webhooks read an account's events in id order, after their cursor
            models.Index(fields=["account", "id"], name="event_account_id"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.message_id}"


class WebhookQuerySet(models.QuerySet["Webhook"]):
    def for_account(self, account: Account) -> WebhookQuerySet:
        return self.filter(account=account)


def new_webhook_key() -> str:
    """22 URL-safe characters, like Mandrill's keys (ASCII: receivers such as anymail encode it so)."""
    return secrets.token_urlsafe(16)[:22]


class Webhook(models.Model):
    """Where an account wants its events POSTed, in Mandrill's format and signature. Delivery walks two
    cursors, one over MessageEvent ids and one over the audit trail's ids (account events), so a webhook
    owes exactly the events after them; nothing is copied per webhook."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="webhooks")
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="Mandrill's event names, and our account.* ones.")
    include_subaccounts = models.BooleanField(
        default=False, help_text="A master's webhook: its subaccounts' message events too."
    )
    auth_key = models.CharField(max_length=22, default=new_webhook_key)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sent_at = models.DateTimeField(null=True, blank=True, help_text="The last successful POST.")
    batches_sent = models.PositiveIntegerField(default=0)
    events_sent = models.PositiveBigIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    message_cursor = models.BigIntegerField(default=0, help_text="The last MessageEvent id delivered.")
    account_cursor = models.BigIntegerField(default=0, help_text="The last AuditEvent id delivered.")
    failing_since = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Failed POSTs of the batch now owed.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True, help_text="A worker is posting until then.")
    disabled_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.url} ({self.account})"


class WebhookAttempt(models.Model):
    """One POST of a batch (or a check, or a test): what the page shows as the last deliveries. Purged
    after WEBHOOK_ATTEMPT_RETENTION_DAYS."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="attempts_made")
    created_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=10, default="batch", help_text="batch, test or check")
    events = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["webhook", "-created_at"], name="webhook_attempt_recent")]

    def __str__(self) -> str:
        return f"{self.kind} to webhook {self.webhook_id}: {self.error or self.status_code}"

    @property
    def ok(self) -> bool:
        return not self.error


class ExportJob(models.Model):
    """A CSV export too large to download while the page waits: a worker writes the file (the exports
    storage), reporting how many rows it has written, and the page polls it and then offers the file.
    The query is the list page's own, replayed in the requester's time zone so the file holds exactly the
    rows the page showed. Files and rows are purged after EXPORT_RETENTION_DAYS."""

    class Kind(models.TextChoices):
        MESSAGES = "messages", "Messages"
        SUPPRESSIONS = "suppressions", "Suppressions"

    class State(models.TextChoices):
        QUEUED = "queued", "Waiting for a worker"
        RUNNING = "running", "Writing"
        FINISHED = "finished", "Ready"
        FAILED = "failed", "Failed"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="export_jobs")
    requested_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    # Email the requester when the file is ready (not when an agency asked while logged in as a customer:
    # the customer did not ask, and the agency is watching the page).
    notify = models.BooleanField(default=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    query = models.JSONField(default=dict, blank=True, help_text="The list page's filters")
    time_zone = models.CharField(max_length=64, default="UTC")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    total = models.PositiveIntegerField(null=True, blank=True, help_text="Rows to write, counted at start")
    written = models.PositiveIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["account", "-created_at"], name="export_job_account_recent"),
            models.Index(fields=["state", "created_at"], name="export_job_state_age"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} export {self.pk} of account {self.account_id}: {self.state}"

    @property
    def percent(self) -> int:
        if self.state == self.State.FINISHED:
            return 100
        return min(99, 100 * self.written // self.total) if self.total else 0

    @property
    def in_progress(self) -> bool:
        return self.state in (self.State.QUEUED, self.State.RUNNING)
