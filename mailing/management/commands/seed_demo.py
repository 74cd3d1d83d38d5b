"""Demo data for `make run`: an agency with staff of each role, subaccounts in every state, usage (one
near its limit), a few hundred messages, archived copies and an API key. Idempotent: running it again
changes nothing and prints the same logins. (It lives in mailing because it seeds both apps.)"""

from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts import invites, lifecycle
from accounts.alerts import scan_limit_alerts
from accounts.impersonation import record_visit_ended, record_visit_started
from accounts.models import Account, AuditEvent, Membership, Usage, User
from accounts.quota import hour_start, month_start
from accounts.tokens import hash_secret
from mailing import bodies
from mailing.deliverability import signing
from mailing.models import ApiKey, ArchivedMessage, Message, MessageEvent, SenderDomain, Suppression

# The demo's published password (the command refuses production).
PASSWORD = "demo-pass-2026"  # nosec B105
OPERATOR = "operator@reseller.test"
MASTER = {
    "public_id": "northwind",
    "name": "Northwind Digital",
    "email": "owner@northwind.test",
    "limit": 500_000,
}
STAFF = [("admin@northwind.test", Membership.Role.ADMIN), ("viewer@northwind.test", Membership.Role.VIEWER)]
# (id, name, owner email, status (reached through the lifecycle services), accepted the invite, monthly
# limit, hourly limit, sent this month)
SUBACCOUNTS = [
    ("acme-shop", "Acme Shop", "owner@acme.test", Account.Status.ACTIVE, True, 50_000, 2_000, 12_400),
    (
        "evergreen-books",
        "Evergreen Books",
        "owner@evergreen.test",
        Account.Status.ACTIVE,
        True,
        10_000,
        None,
        8_930,
    ),
    ("blue-bakery", "Blue Bakery", "owner@bluebakery.test", Account.Status.ACTIVE, False, 5_000, 500, 0),
    (
        "cobalt-clinic",
        "Cobalt Clinic",
        "owner@cobalt.test",
        Account.Status.PAUSED,
        True,
        20_000,
        1_000,
        3_150,
    ),
    ("delta-dental", "Delta Dental", "owner@delta.test", Account.Status.CLOSED, True, 8_000, None, 410),
]
# Limits the history then changes (through the service), so the activity page shows the change.
INITIAL_LIMITS = {"evergreen-books": 8_000}
OTHER_MASTER = {
    "public_id": "southwind",
    "name": "Southwind Media",
    "email": "owner@southwind.test",
    "limit": 100_000,
}


def _user(email: str, *, password: str | None, **extra) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=password, **extra)
    if password:
        EmailAddress.objects.get_or_create(
            user=user, email=email, defaults={"primary": True, "verified": True}
        )
    return user


def _master(spec: dict) -> Account:
    master, _ = Account.objects.get_or_create(
        parent=None, public_id=spec["public_id"],
        defaults={"kind": Account.Kind.MASTER, "name": spec["name"], "contact_email": spec["email"],
                  "monthly_limit": spec["limit"], "alert_thresholds": [80, 95]},
    )  # fmt: skip
    owner = _user(spec["email"], password=PASSWORD)
    Membership.objects.get_or_create(user=owner, defaults={"account": master, "role": Membership.Role.OWNER})
    return master


DEMO_API_KEY = "md-demo-acme-shop-key-not-for-production"
RECIPIENTS = ["ana", "ben", "chloe", "dev", "emma", "farid", "gus", "hana", "ivan", "jade"]
SUBJECTS = ["Your order #{n} has shipped", "Receipt for order #{n}", "Reset your password", "Welcome aboard!",
            "Your weekly summary", "Appointment reminder #{n}"]  # fmt: skip


def _seed_messages(master: Account, now) -> None:
    """A sample of each sending subaccount's recent mail in every state (the counts live in Usage)."""
    if Message.objects.filter(account__parent=master).exists():
        return
    statuses = [Message.Status.SENT] * 8 + [Message.Status.QUEUED, Message.Status.FAILED]
    for sub in Account.objects.subaccounts_of(master).exclude(status=Account.Status.CLOSED):
        if not Usage.objects.filter(account=sub, window=Usage.Window.MONTH).exists():
            continue
        held = sub.status == Account.Status.PAUSED
        body = bodies.body(
            text="Hello,\n\nThanks for being a customer.\n",
            html="<p>Hello,</p><p>Thanks for being a customer.</p>",
            headers={},
            attachments=[],
        )
        [content_id] = bodies.store(sub.pk, [body], now=now)
        rows = []
        for n in range(120):
            status = Message.Status.HELD if held and n < 5 else statuses[n % len(statuses)]
            created = now - timedelta(minutes=37 * n)
            rows.append(
                Message(
                    account=sub,
                    from_email=f"hello@{sub.public_id}.example",
                    from_name=sub.name,
                    to_email=f"{RECIPIENTS[n % len(RECIPIENTS)]}{n}@customer.example",
                    subject=SUBJECTS[n % len(SUBJECTS)].format(n=1000 + n),
                    content_id=content_id,
                    tags=[["order", "transactional"], ["password"], ["newsletter"]][n % 3],
                    status=status,
                    queued_reason="sending-paused" if status == Message.Status.HELD else "",
                    last_error="SMTPRecipientsRefused: 550 5.1.1 mailbox unavailable"
                    if status == Message.Status.FAILED
                    else "",
                    archive=sub.archiving_enabled,
                    attempts=1,
                    next_attempt_at=created,
                    sent_at=created if status == Message.Status.SENT else None,
                )
            )
        created_rows = Message.objects.bulk_create(rows)
        Message.objects.filter(pk__in=[row.pk for row in created_rows]).update(
            created_at=F("next_attempt_at")
        )
        _seed_outcomes(sub, created_rows)
        if sub.archiving_enabled:
            ArchivedMessage.objects.bulk_create(
                ArchivedMessage(
                    account=sub,
                    message=row,
                    from_email=row.from_email,
                    to_email=row.to_email,
                    subject=row.subject,
                    content_id=row.content_id,
                    sent_at=row.sent_at,
                )
                for row in created_rows
                if row.status == Message.Status.SENT
            )


def _seed_outcomes(sub: Account, rows: list[Message]) -> None:
    """The events a sample message's page shows, and the suppressions its bounces left behind."""
    events = []
    for row in rows:
        if row.status == Message.Status.SENT:
            events.append(
                MessageEvent(message=row, account=sub, kind=MessageEvent.Kind.SEND, created_at=row.sent_at)
            )
        elif row.status == Message.Status.FAILED:
            events.append(
                MessageEvent(
                    message=row, account=sub, kind=MessageEvent.Kind.HARD_BOUNCE, created_at=row.next_attempt_at,
                    diagnostic=row.last_error, data={"status": "5.1.1", "smtp_code": 550},
                )
            )  # fmt: skip
            Suppression.objects.get_or_create(
                account=sub, email=row.to_email.lower(),
                defaults={"reason": Suppression.Reason.HARD_BOUNCE, "detail": row.last_error,
                          "created_at": row.next_attempt_at, "last_event_at": row.next_attempt_at},
            )  # fmt: skip
    MessageEvent.objects.bulk_create(events)


def _seed_domains(master: Account, now) -> None:
    """Verified sending domains: each subaccount's own, and the agency's shared with all of them.
    ("demo" is the DNS record's token, not a secret: bandit's B105 is marked on that line.)"""
    for account in [master, *Account.objects.subaccounts_of(master)]:
        sender_domain, created = SenderDomain.objects.get_or_create(
            account=account, domain=f"{account.public_id}.example",
            defaults={"token": "demo", "verified_at": now, "share_with_all_subaccounts": account.is_master},  # nosec B105
        )  # fmt: skip
        if created:  # the DKIM record the domain page asks to publish
            signing.generate_key(sender_domain)


def _seed_api_key(account: Account) -> None:
    ApiKey.objects.get_or_create(
        key_hash=hash_secret(DEMO_API_KEY),
        defaults={"account": account, "label": "Demo key", "prefix": DEMO_API_KEY[:10]},
    )


def _seed_usage(sub: Account, master: Account, sent: int, now) -> None:
    """This month's usage, spread over working hours of the days so far, so that the month's row,
    the hourly rows and the charts agree."""
    label = str(sub)
    Usage.objects.create(account=sub, billed_to=master, account_label=label, window=Usage.Window.MONTH,
                         start=month_start(now), sent=sent)  # fmt: skip
    this_hour = hour_start(now)
    hours = [
        hour
        for day in range(now.day)
        for hour in (month_start(now) + timedelta(days=day, hours=h) for h in range(9, 17))
        if hour < this_hour
    ] + [this_hour]
    weights = [1 + (i * 7919) % 5 for i in range(len(hours))]
    shares = [sent * w // sum(weights) for w in weights]
    shares[-1] += sent - sum(shares)
    Usage.objects.bulk_create(
        Usage(
            account=sub,
            billed_to=master,
            account_label=label,
            window=Usage.Window.HOUR,
            start=hour,
            sent=share,
            **_outcomes(share, i),
            # what recipients did with it: about 40 % opened, 10 % clicked (demo figures)
            unique_opens=share * 2 // 5,
            opens=share * 2 // 5 + share // 8,
            unique_clicks=share // 10,
            clicks=share // 10 + share // 40,
        )
        for i, (hour, share) in enumerate(zip(hours, shares, strict=True))
        if share
    )


def _outcomes(sent: int, i: int) -> dict[str, int]:
    """What became of an hour's mail in the demo: about 1.5 % hard bounces, 0.5 % soft, a complaint now
    and then, the rest delivered (so the charts and reputations have something to show)."""
    hard, soft = sent * 3 // 200, sent // 200
    complained = 1 if sent >= 50 and i % 97 == 0 else 0
    return {
        "delivered": sent - hard - soft,
        "hard_bounced": hard,
        "soft_bounced": soft,
        "complained": complained,
    }


def _seed_history(master: Account, created: set[str], now) -> None:
    """Some history for the activity pages, made the way people make it: through the services, so each
    event is the one the product writes (pause and close through accounts/lifecycle.py). Only for
    subaccounts this run created, so a second run adds nothing. Then spread over the past days."""
    owner = User.objects.get(email=MASTER["email"])
    admin = User.objects.get(email="admin@northwind.test")
    subs = {sub.public_id: sub for sub in Account.objects.subaccounts_of(master)}
    kwargs = {"master": master}
    if "acme-shop" in created:
        lifecycle.set_archiving(actor=admin, subaccount_id=subs["acme-shop"].pk, enabled=True, **kwargs)
        acme_owner = User.objects.get(email="owner@acme.test")
        record_visit_started(hijacker=admin, hijacked=acme_owner)
        record_visit_ended(hijacker=admin, hijacked=acme_owner)
    if "evergreen-books" in created:
        lifecycle.update_subaccount(actor=owner, subaccount_id=subs["evergreen-books"].pk,
                                    changes={"monthly_limit": 10_000}, **kwargs)  # fmt: skip
    if "blue-bakery" in created:
        lifecycle.resend_invite(actor=admin, subaccount_id=subs["blue-bakery"].pk, **kwargs)
    if "cobalt-clinic" in created:
        lifecycle.pause_subaccount(actor=admin, subaccount_id=subs["cobalt-clinic"].pk, **kwargs)
    if "delta-dental" in created:
        lifecycle.close_subaccount(actor=owner, subaccount_id=subs["delta-dental"].pk, **kwargs)
    if created:
        events = AuditEvent.objects.filter(master=master).order_by("-created_at", "-id")
        for n, event_id in enumerate(events.values_list("pk", flat=True)):
            AuditEvent.objects.filter(pk=event_id).update(created_at=now - timedelta(hours=5 + 7 * n))


class Command(BaseCommand):
    help = "Create the demo agency, its staff and subaccounts (idempotent) and print the logins."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            # The demo's superuser password and API key are public: never in a real deployment.
            raise CommandError(
                "seed_demo makes accounts with published passwords: not with DJANGO_ENV=production."
            )
        now = timezone.now()
        with transaction.atomic():
            master, created = self._seed_accounts(now)
        _seed_history(master, created, now)  # the services open their own transactions
        with transaction.atomic():
            _seed_messages(master, now)
            _seed_domains(master, now)
            _seed_api_key(Account.objects.get(parent=master, public_id="acme-shop"))
        scan_limit_alerts()  # Evergreen Books is past 80%: the agency's alert shows on its overview
        self._print_logins()

    def _seed_accounts(self, now) -> tuple[Account, set[str]]:
        """The people and accounts, every subaccount active at first (history changes some); returns the
        master and the ids of the subaccounts made now."""
        _user(OPERATOR, password=PASSWORD, is_staff=True, is_superuser=True)
        master = _master(MASTER)
        for email, role in STAFF:
            Membership.objects.get_or_create(
                user=_user(email, password=PASSWORD), defaults={"account": master, "role": role}
            )
        made = set()
        for public_id, name, email, _status, accepted, monthly, hourly, sent in SUBACCOUNTS:
            sub, created = Account.objects.get_or_create(
                parent=master, public_id=public_id,
                defaults={"kind": Account.Kind.SUBACCOUNT, "name": name, "contact_email": email,
                          "monthly_limit": INITIAL_LIMITS.get(public_id, monthly), "hourly_limit": hourly},
            )  # fmt: skip
            if not created:
                continue
            made.add(public_id)
            owner = _user(email, password=PASSWORD if accepted else None)
            Membership.objects.create(user=owner, account=sub, role=Membership.Role.OWNER)
            if not accepted:
                EmailAddress.objects.create(user=owner, email=email, primary=True, verified=False)
                invites.issue_invitation(account=sub, user=owner)
            if sent:
                _seed_usage(sub, master, sent, now)
        _master(OTHER_MASTER)
        return master, made

    def _print_logins(self):
        self.stdout.write(
            self.style.SUCCESS("Demo data ready. Log in at http://127.0.0.1:8000/ with password " + PASSWORD)
        )
        rows = [
            (MASTER["email"], "agency owner (Northwind Digital)"),
            ("admin@northwind.test", "agency admin"),
            ("viewer@northwind.test", "agency viewer (read-only)"),
            ("owner@acme.test", "subaccount owner (Acme Shop)"),
            ("owner@evergreen.test", "subaccount owner near its monthly limit"),
            ("owner@delta.test", "owner of a closed subaccount (can renew)"),
            (OTHER_MASTER["email"], "another agency (Southwind Media)"),
            (OPERATOR, "operator: the Django admin at /admin/"),
        ]
        for email, what in rows:
            self.stdout.write(f"  {email:<28} {what}")
        self.stdout.write(f"API / SMTP (127.0.0.1:2525, make smtpd): username acme-shop, key {DEMO_API_KEY}")
