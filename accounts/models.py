"""Who, and how much they may send: users, accounts (the tenants), memberships, invites, the audit trail,
usage counters and limit alerts. Business rules live in the service modules, not here."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in, by email. Belongs to at most one account (see Membership)."""

    email = models.EmailField("email address", max_length=254, unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Operators of the email service (the admin).")
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        help_text="The zone the dashboard shows this person's dates in (IANA name).",
    )
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower()


class AccountQuerySet(models.QuerySet["Account"]):
    def subaccounts_of(self, master: Account) -> AccountQuerySet:
        """The only way into a master's subaccounts: the tenant is part of the query."""
        return self.filter(parent=master, kind=Account.Kind.SUBACCOUNT)


class Account(models.Model):
    """The tenant. A master resells to subaccounts; a standalone account stands on its own
    (a renewed former subaccount, or a direct customer)."""

    class Kind(models.TextChoices):
        MASTER = "master", "Master"
        SUBACCOUNT = "subaccount", "Subaccount"
        STANDALONE = "standalone", "Standalone"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        CLOSED = "closed", "Closed"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="subaccounts"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    public_id = models.CharField(
        "id",
        max_length=255,
        help_text="The subaccount id programs use (Mandrill's `id`): unique within its master.",
    )
    name = models.CharField(max_length=255)
    notes = models.TextField(blank=True)
    contact_email = models.EmailField(max_length=254, help_text="The owner's login address.")
    monthly_limit = models.PositiveIntegerField(help_text="Emails per calendar month (UTC).")
    hourly_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Emails per hour; empty: none."
    )
    archiving_enabled = models.BooleanField(default=False)
    # Mandrill's account settings: whether a message that does not say (`track_opens`/`track_clicks`
    # left out) gets a tracking pixel and rewritten links. Off unless the account asks: it changes the mail.
    track_opens = models.BooleanField(default=False, help_text="Track opens when a message does not say.")
    track_clicks = models.BooleanField(default=False, help_text="Track clicks when a message does not say.")
    auto_pause_rates = models.JSONField(
        null=True,
        blank=True,
        help_text="Hard-bounce and complaint rates (percent) past which a subaccount is paused by itself: "
        '{"hard_bounce": 5, "complaint": 0.1}. On a master: its default; on a subaccount: an override.',
    )
    alert_thresholds = models.JSONField(
        null=True,
        blank=True,
        help_text="Percentages of the monthly limit that trigger an alert. On a master: its default; "
        "on a subaccount: an override (empty: the master's).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(
        max_length=300,
        blank=True,
        help_text="Why it was paused automatically (bounces, complaints); empty when a person paused it.",
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    renewed_at = models.DateTimeField(null=True, blank=True)
    former_parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="renewed_subaccounts",
        help_text="The master a renewed account used to belong to (its billing history stays there).",
    )

    objects = AccountQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind="subaccount", parent__isnull=False)
                    | (~Q(kind="subaccount") & Q(parent__isnull=True))
                ),
                name="account_subaccount_has_parent_master_has_none",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["master", "subaccount", "standalone"]), name="account_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["active", "paused", "closed"]), name="account_status_valid"
            ),
            models.CheckConstraint(condition=Q(monthly_limit__gt=0), name="account_monthly_limit_positive"),
            models.CheckConstraint(
                condition=Q(hourly_limit__isnull=True) | Q(hourly_limit__gt=0),
                name="account_hourly_limit_positive",
            ),
            models.CheckConstraint(condition=~Q(public_id=""), name="account_public_id_not_empty"),
            models.UniqueConstraint(
                fields=["parent", "public_id"],
                condition=Q(parent__isnull=False),
                name="account_public_id_unique_per_master",
            ),
            models.UniqueConstraint(
                fields=["public_id"],
                condition=Q(parent__isnull=True),
                name="account_public_id_unique_top_level",
            ),
        ]
        indexes = [
            models.Index(fields=["parent", "status", "name"], name="account_parent_status_name"),
            models.Index(fields=["parent", "created_at"], name="account_parent_created"),
            # the overview's near-limit widget: the agency's smallest monthly limit, in one probe
            models.Index(fields=["parent", "monthly_limit"], name="account_parent_limit"),
            # the subaccount list's default order, so a page is read from the index, not sorted
            models.Index(fields=["parent", "name", "id"], name="account_parent_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"

    @property
    def is_master(self) -> bool:
        return self.kind == self.Kind.MASTER

    @property
    def is_subaccount(self) -> bool:
        return self.kind == self.Kind.SUBACCOUNT

    @property
    def billing_account_id(self) -> int:
        """Whose bill a send lands on: a subaccount's usage is its master's."""
        return self.parent_id if self.parent_id else self.pk


class Membership(models.Model):
    """How a user belongs to an account, and what they may do there."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        VIEWER = "viewer", "Viewer"

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="membership")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=8, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # An agency may have several owners (its team page keeps at least one: accounts/team.py); a
        # subaccount keeps the one owner its contact email names, a rule of the same service.
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["owner", "admin", "viewer"]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} of {self.account}"

    @property
    def can_manage(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.ADMIN)


class Invitation(models.Model):
    """A set-your-password link for a subaccount's owner. Only the token's hash is stored; a resend
    replaces the previous invitation, and accepting consumes it with one conditional UPDATE."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="invitations")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(
        max_length=254, help_text="The address the link was sent to; it must still match."
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    replaced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(replaced_at__isnull=True),
                name="invitation_not_both_accepted_and_replaced",
            ),
        ]
        indexes = [models.Index(fields=["account", "-created_at"], name="invitation_account_created")]

    def __str__(self) -> str:
        return f"Invitation for {self.email}"


class AuditEvent(models.Model):
    """What happened to an account, who did it and, when impersonating, who really did it.
    `master` is the agency whose trail this belongs to, so it survives the subaccount's deletion."""

    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    real_actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=254, blank=True, help_text="Who, as they were then.")
    real_actor_label = models.CharField(max_length=254, blank=True)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    account_label = models.CharField(max_length=600, blank=True)
    master = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.CASCADE, related_name="agency_audit_events"
    )
    action = models.CharField(max_length=64)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at"], name="audit_account_created"),
            models.Index(fields=["master", "-created_at"], name="audit_master_created"),
        ]

    def __str__(self) -> str:
        return f"{self.action} on {self.account_label} by {self.actor_label}"

    @property
    def changed_fields(self) -> list[tuple[str, object, object]]:
        keys = list(dict.fromkeys([*self.before.keys(), *self.after.keys()]))
        return [(key, self.before.get(key), self.after.get(key)) for key in keys]


class UsageCounters(models.Model):
    """What is counted for an account over a window: an hour or a month (Usage), a day (DailyUsage),
    a preset range (TrailingUsage). One definition, so the rollups add up the same columns."""

    sent = models.PositiveIntegerField(default=0, help_text="Accepted and counted against the limit.")
    rejected = models.PositiveIntegerField(default=0, help_text="Refused at once (over the limit).")
    failed = models.PositiveIntegerField(default=0, help_text="Accepted, then failed for good at delivery.")
    delivered = models.PositiveIntegerField(default=0, help_text="Taken by the receiving server.")
    hard_bounced = models.PositiveIntegerField(default=0)
    soft_bounced = models.PositiveIntegerField(default=0)
    complained = models.PositiveIntegerField(default=0, help_text="Marked as spam by the recipient.")
    opens = models.PositiveIntegerField(
        default=0, help_text="Opens by people (prefetching bots not counted)."
    )
    unique_opens = models.PositiveIntegerField(default=0, help_text="Messages opened at least once.")
    clicks = models.PositiveIntegerField(default=0, help_text="Clicks by people (link scanners not counted).")
    unique_clicks = models.PositiveIntegerField(default=0, help_text="Messages clicked at least once.")
    unsubs = models.PositiveIntegerField(default=0, help_text="Recipients who unsubscribed.")

    class Meta:
        abstract = True


class Usage(UsageCounters):
    """Emails counted against one window of an account's allowance: the summary every page and bill
    reads. Reserved with conditional UPDATEs in accounts/quota.py. Rows outlive their account (the
    master's bill needs them), so the account link is nullable and its label is kept."""

    class Window(models.TextChoices):
        MONTH = "month", "Month"
        HOUR = "hour", "Hour"

    account = models.ForeignKey(Account, null=True, on_delete=models.SET_NULL, related_name="usage")
    billed_to = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        related_name="billed_usage",
        help_text="The account whose bill this is.",
    )
    account_label = models.CharField(max_length=600, blank=True, help_text="Kept for deleted accounts.")
    window = models.CharField(max_length=5, choices=Window.choices)
    start = models.DateTimeField(help_text="Start of the window, UTC.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "billed_to", "window", "start"], name="usage_one_row_per_window"
            ),
            models.CheckConstraint(condition=Q(window__in=["month", "hour"]), name="usage_window_valid"),
        ]
        indexes = [
            # the bill and the overview's "top senders": one month's rows of one master, biggest first;
            # carrying the account, the list's sort by this month's usage and the near-limit widget read
            # the index alone (the same one index a reservation updates, a few bytes wider)
            models.Index(
                fields=["billed_to", "window", "start", "-sent"],
                include=["account"],
                name="usage_billing_by_sent_cover",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_label}: {self.sent} in {self.window} from {self.start:%Y-%m-%d %H:%M}"


class DailyUsage(UsageCounters):
    """An agency's hourly Usage windows added up per closed UTC day (accounts/rollup.py): what the
    overview's chart reads for a long range instead of thousands of hourly rows a day. One row per
    (bill, day) over every account billed to it, rolled up only once the day is over, so the accept path
    never writes here; a late change to a rolled-up day's hour is applied here too, in step (quota.py)."""

    billed_to = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="daily_usage")
    day = models.DateField(help_text="A UTC day.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["billed_to", "day"], name="daily_usage_one_row_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.billed_to_id}: {self.sent} on {self.day:%Y-%m-%d}"


class TrailingUsage(UsageCounters):
    """Each account's figures over a preset range (the last 7, 30 or 90 days) ending today: its closed
    days through `through` (rebuilt by the rollup when a day closes) and today's hours before the mark's
    `hours_folded_until` (added every hour). The overview's top subaccounts and its CSV add only the
    hours since then to these, instead of reading every hour of the range, or of today. Deleted accounts
    are told apart by their kept label, as their hourly rows are."""

    account = models.ForeignKey(Account, null=True, on_delete=models.SET_NULL, related_name="+")
    billed_to = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="trailing_usage")
    account_label = models.CharField(max_length=600, blank=True, help_text="Set for deleted accounts only.")
    days = models.PositiveSmallIntegerField(help_text="The preset: the range's length, today included.")
    through = models.DateField(help_text="The last closed UTC day counted (yesterday when built).")

    class Meta:
        indexes = [
            # the top senders of a preset: one bill's rows, biggest first
            models.Index(fields=["billed_to", "days", "through", "-sent"], name="trailing_usage_by_sent"),
            # today's senders' rows, added to today's hours
            models.Index(fields=["account", "days", "through"], name="trailing_usage_account"),
        ]
        constraints = [
            # One row per live account and preset: the hourly fold and late writers add to it in place
            # (deleted accounts' rows are written only by the rollup, which holds its lock exclusively).
            models.UniqueConstraint(
                fields=["account", "billed_to", "days", "through"],
                condition=Q(account__isnull=False),
                name="trailing_usage_one_row_per_account",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id or self.account_label}: {self.sent} in {self.days} days to {self.through}"


class UsageRollup(models.Model):
    """The mark that a UTC day's hourly Usage has been rolled up into DailyUsage for every bill: readers
    use the day rows only for marked days (a day without the mark is read from its hours)."""

    day = models.DateField(unique=True)
    rolled_up_at = models.DateTimeField(default=timezone.now)
    trailing_built = models.BooleanField(
        default=False, help_text="TrailingUsage through this day is built (for the latest closed day)."
    )
    hours_folded_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="On the trailing mark: today's hours before this instant are added to TrailingUsage.",
    )

    def __str__(self) -> str:
        return f"rolled up {self.day:%Y-%m-%d}"


class LimitAlert(models.Model):
    """One row per threshold crossed per month: the guarantee of one alert email each."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="limit_alerts")
    month = models.DateField(help_text="First day of the month, UTC.")
    threshold = models.PositiveSmallIntegerField(help_text="Percent of the monthly limit.")
    usage_at_alert = models.PositiveIntegerField(default=0)
    limit_at_alert = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "month", "threshold"], name="limit_alert_once_per_month"
            ),
        ]
        indexes = [
            # The overview's latest alerts of an agency: walked newest first, each alert's subaccount
            # checked by its key, stopping at the eighth (rather than joining every subaccount).
            models.Index(fields=["-created_at"], name="limit_alert_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.account} passed {self.threshold}% in {self.month:%Y-%m}"


class BulkJob(models.Model):
    """A bulk action over more subaccounts than a request should wait for: a worker runs it (through the
    same one-target services) and the page polls its progress. Outcomes are kept in short: counts, the
    first names done and the first refusals, enough for the page that reports them."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="bulk_jobs")
    started_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    real_actor = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=40)
    monthly_limit = models.PositiveIntegerField(null=True, blank=True)
    subaccount_ids = models.JSONField(default=list)
    total = models.PositiveIntegerField()
    done = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    done_names = models.JSONField(default=list, blank=True)
    refusals = models.JSONField(default=list, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RUNNING)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "-created_at"], name="bulk_job_account_created")]

    def __str__(self) -> str:
        return f"{self.action} on {self.total} subaccounts of {self.account_id}: {self.state}"

    @property
    def handled(self) -> int:
        return self.done + self.refused

    @property
    def percent(self) -> int:
        return 100 * self.handled // self.total if self.total else 100


class Brand(models.Model):
    """A master's own brand, shown to its customers (their dashboards, their login page, the emails they
    get) instead of ours. The logo lives in the row: it is small (LOGO_MAX_BYTES), every process and host
    reads the same bytes without shared storage, it is backed up with the account, and no file name ever
    comes from a user. Only bytes re-encoded by accounts/branding.py are stored."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="brand")
    name = models.CharField(max_length=100)
    accent_color = models.CharField(max_length=7, blank=True, help_text="#rrggbb; empty: ours.")
    support_email = models.EmailField(max_length=254, blank=True)
    logo = models.BinaryField(null=True, blank=True, editable=False)
    logo_type = models.CharField(max_length=16, blank=True, help_text="image/png, image/jpeg or image/webp.")
    logo_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the logo: its URL.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(accent_color="") | Q(accent_color__regex=r"^#[0-9a-f]{6}$"),
                name="brand_accent_color_hex",
            ),
            models.CheckConstraint(
                condition=Q(logo_type__in=["", "image/png", "image/jpeg", "image/webp"]),
                name="brand_logo_type_allowed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (brand of {self.account})"

    @property
    def has_logo(self) -> bool:
        return bool(self.logo_hash)

    @property
    def logo_extension(self) -> str:
        return {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}.get(self.logo_type, "")

    @property
    def theme_version(self) -> str:
        """A short name for the colour, for the theme stylesheet's cacheable URL."""
        return (self.accent_color or "default").lstrip("#")
