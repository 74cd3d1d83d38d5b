"""django-allauth hooks: no public sign-up, and links built by accounts.emails.site_url (SITE_URL, or
in development the address being visited) so that emails sent outside a request (Celery, the API,
management commands) point at the right host."""

from urllib.parse import quote

from allauth.account.adapter import DefaultAccountAdapter
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse

from . import branding, emails
from .models import Membership


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return False

    def get_reset_password_from_key_url(self, key: str) -> str:
        path = reverse("account_reset_password_from_key", kwargs={"uidb36": "UID", "key": "KEY"})
        return emails.site_url() + path.replace("UID-KEY", quote(key))

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """allauth's emails (the password reset) wear the brand of the person's agency, and their links
        lead to that agency's login pages."""
        user = context.get("user")
        membership = (
            Membership.objects.select_related("account").filter(user=user).first()
            if user is not None
            else None
        )
        brand = branding.brand_for_account(membership.account if membership else None)
        framed = {**emails.brand_context(brand), **context}
        if brand and framed.get("password_reset_url"):
            framed["password_reset_url"] += framed["brand_query"]
        super().send_mail(template_prefix, email, framed)

    def respond_password_reset_link_used(self) -> HttpResponse:
        """The answer to a post of a reset link that another post consumed a moment earlier: the page
        allauth shows for any used or expired link (see accounts.forms.ResetPasswordKeyForm)."""
        return render(self.request, "account/password_reset_from_key.html", {"token_fail": True})  # nosec B105 - a template flag, not a password

    def set_password(self, user, password: str) -> None:
        # Every allauth flow that sets a password comes through here: refuse it for a visiting agency.
        if self.request is not None and self.request.session.get("hijack_history"):
            raise DjangoPermissionDenied(
                "Changing the password is not allowed while you are logged in as someone else."
            )
        super().set_password(user, password)
