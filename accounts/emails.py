"""The product's own emails about accounts. Each renders an HTML and a plain-text body from
templates/email/ and leaves through the default mailer, which hands it to Celery. Called after commit."""

from __future__ import annotations

from contextvars import ContextVar
from urllib.parse import urlencode

from allauth.account.forms import ResetPasswordForm
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from . import branding
from .models import Account, Brand, Membership

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


OUR_NAME = "Reseller Dashboard"


def brand_context(brand: Brand | None) -> dict:
    """What an email's frame shows: the agency's brand for its customers' emails, ours otherwise.
    Emails cannot load our stylesheet, so the colour goes into the email's own inline styles; it is a
    validated "#rrggbb" (or ours)."""
    color = branding.clean_accent_color(brand.accent_color) if brand else ""
    login = reverse("account_login")
    query = f"?{urlencode({'brand': branding.slug_of(brand)})}" if brand else ""
    return {
        "brand": brand,
        "brand_name": brand.name if brand else OUR_NAME,
        "brand_logo_url": absolute(branding.logo_path(brand)) if brand and brand.has_logo else "",
        "brand_color": color or "#0f172a",
        "brand_text_color": branding.text_color_on(color) if color else "#e2e8f0",
        "button_color": color or "#1d4ed8",
        "button_text_color": branding.text_color_on(color) if color else "#ffffff",
        "support_email": brand.support_email if brand else "",
        "brand_query": query,
        "login_url": absolute(login + query),
    }


def _send(*, template: str, subject: str, to: list[str], context: dict, brand: Brand | None = None) -> None:
    if not to:
        return
    context = {"site_url": site_url(), "subject": subject, **brand_context(brand), **context}
    message = EmailMultiAlternatives(
        subject=subject, body=render_to_string(f"email/{template}.txt", context), to=to
    )
    message.attach_alternative(render_to_string(f"email/{template}.html", context), "text/html")
    message.send()


def send_account_email(
    *, account: Account, template: str, subject: str, to: list[str], context: dict
) -> None:
    """One of our emails about `account` (templates/email/<template>.txt and .html), in the brand its
    people see: the agency's for a customer, ours otherwise."""
    _send(
        template=template, subject=subject, to=to, context=context, brand=branding.brand_for_account(account)
    )


def agency_admin_emails(master: Account) -> list[str]:
    return list(
        Membership.objects.filter(
            account=master, role__in=[Membership.Role.OWNER, Membership.Role.ADMIN], user__is_active=True
        ).values_list("user__email", flat=True)
    )


def send_invite(*, account: Account, email: str, token: str) -> None:
    """A subaccount's owner is invited by the agency, under the agency's brand; anyone else joins a team
    (the agency's, under ours, or a customer's, under its agency's brand)."""
    brand = branding.brand_for_account(account)
    brand_name = brand.name if brand else OUR_NAME
    role = (
        Membership.objects.filter(account=account, user__email=email).values_list("role", flat=True).first()
    )
    joins_team = not account.is_subaccount or role != Membership.Role.OWNER
    inviter = account if joins_team else account.parent
    context = brand_context(brand)
    path = reverse("accounts:invite_accept", kwargs={"token": token})
    _send(
        template="invite",
        subject=(
            f"{account.name} invited you to its team on {brand_name}"
            if joins_team
            else f"{inviter.name} invited you to send email with {brand_name}"
        ),
        to=[email],
        brand=brand,
        context={
            "account": account,
            "agency": inviter,
            "joins_team": joins_team,
            "role": Membership.Role(role).label.lower() if role else "",
            "url": absolute(path + context["brand_query"]),
            "valid_hours": settings.INVITE_VALID_HOURS,
        },
    )


def send_password_reset(*, email: str) -> None:
    """allauth's own reset email (single-use link, its templates), sent outside a request."""
    form = ResetPasswordForm(data={"email": email})
    if form.is_valid():
        form.save(request=None)


def send_closed_notice(*, account: Account, email: str) -> None:
    brand = branding.brand_for_account(account)
    _send(
        template="closed",
        subject=f"Your account {account.name} has been closed",
        to=[email],
        brand=brand,
        context={"account": account, "agency": account.parent, "url": brand_context(brand)["login_url"]},
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
