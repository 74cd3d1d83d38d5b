"""The product's own emails about accounts. Each renders an HTML and a plain-text body from
templates/email/ and leaves through the default mailer, which hands it to Celery. Called after commit."""

from __future__ import annotations

from contextvars import ContextVar

from allauth.account.forms import ResetPasswordForm
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from .models import Account, Membership

# The address the site is being visited at ("http://127.0.0.1:8001"), set per request by
# CurrentAccountMiddleware: emails are sent by services, which never see the request.
request_origin: ContextVar[str | None] = ContextVar("request_origin", default=None)


def site_url() -> str:
    """Where links in emails point. In production always SITE_URL (required there): a Host header is the
    client's to forge, and links in mail must not follow it. In development, the address of the request
    being served, when there is one, so the links work on whatever port runserver listens on; outside a
    request (Celery, commands) SITE_URL."""
    origin = request_origin.get()
    if origin and not settings.PRODUCTION:
        return origin
    return settings.SITE_URL


def absolute(path: str) -> str:
    return site_url() + path


def _send(*, template: str, subject: str, to: list[str], context: dict) -> None:
    if not to:
        return
    context = {"site_url": site_url(), "subject": subject, **context}
    message = EmailMultiAlternatives(
        subject=subject, body=render_to_string(f"email/{template}.txt", context), to=to
    )
    message.attach_alternative(render_to_string(f"email/{template}.html", context), "text/html")
    message.send()


def agency_admin_emails(master: Account) -> list[str]:
    return list(
        Membership.objects.filter(
            account=master, role__in=[Membership.Role.OWNER, Membership.Role.ADMIN], user__is_active=True
        ).values_list("user__email", flat=True)
    )


def send_invite(*, account: Account, email: str, token: str) -> None:
    _send(
        template="invite",
        subject=f"{account.parent.name} invited you to send email with Reseller Dashboard",
        to=[email],
        context={
            "account": account,
            "agency": account.parent,
            "url": absolute(reverse("accounts:invite_accept", kwargs={"token": token})),
            "valid_hours": settings.INVITE_VALID_HOURS,
        },
    )


def send_password_reset(*, email: str) -> None:
    """allauth's own reset email (single-use link, its templates), sent outside a request."""
    form = ResetPasswordForm(data={"email": email})
    if form.is_valid():
        form.save(request=None)


def send_closed_notice(*, account: Account, email: str) -> None:
    _send(
        template="closed",
        subject=f"Your account {account.name} has been closed",
        to=[email],
        context={"account": account, "agency": account.parent, "url": absolute(reverse("account_login"))},
    )


def send_renewed_notice(*, account: Account, former_master: Account) -> None:
    _send(
        template="renewed",
        subject=f"{account.name} renewed as a standalone account",
        to=agency_admin_emails(former_master),
        context={"account": account, "agency": former_master, "url": absolute(reverse("accounts:activity"))},
    )


def send_auto_pause_notice(*, account: Account, reason: str) -> None:
    _send(
        template="auto_paused",
        subject=f"{account.name} was paused automatically",
        to=agency_admin_emails(account.parent),
        context={
            "account": account,
            "reason": reason,
            "url": absolute(reverse("accounts:subaccount_detail", kwargs={"pk": account.pk})),
        },
    )


def send_limit_alert(*, account: Account, alert) -> None:
    percent = alert.usage_at_alert * 100 // max(alert.limit_at_alert, 1)
    _send(
        template="limit_alert",
        subject=f"{account.name} has used {percent}% of its monthly email limit",
        to=agency_admin_emails(account.parent),
        context={
            "account": account,
            "alert": alert,
            "percent": percent,
            "url": absolute(reverse("accounts:subaccount_detail", kwargs={"pk": account.pk})),
        },
    )
