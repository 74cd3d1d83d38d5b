"""Request-wide context: the current account, the limits of an impersonation, and answers htmx can place."""

from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, resolve_url
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django_htmx.http import HttpResponseClientRedirect

from . import branding, impersonation_session
from .audit import client_ip
from .emails import request_origin
from .models import Membership

BRAND_SESSION_KEY = "brand"

# allauth pages that change who a user is: never open to an agency visiting as the owner.
OWNER_ONLY_URL_NAMES = ("account_change_password", "account_set_password", "account_email")


class CurrentAccountMiddleware:
    """Puts the current user's account on the request. Derived from the membership on every request,
    never cached in the session: logging in as someone else changes the user, and so the account."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = None
        if request.user.is_authenticated:
            request.membership = (
                Membership.objects.select_related("account", "account__parent")
                .filter(user=request.user)
                .first()
            )
        request.account = request.membership.account if request.membership else None
        request.brand = self._brand(request)
        token = client_ip.set(request.META.get("REMOTE_ADDR"))
        origin = request_origin.set(f"{request.scheme}://{request.get_host()}")
        try:
            return self.get_response(request)
        finally:
            request_origin.reset(origin)
            client_ip.reset(token)

    @staticmethod
    def _brand(request):
        """Whose brand this page wears (accounts/branding.py decides). A logged-in person's comes from
        their account only; a visitor's from the link they came by (`?brand=`), kept in their session
        for the rest of the login or password-reset flow."""
        if request.user.is_authenticated:
            account = request.account
            return SimpleLazyObject(lambda: branding.brand_for_account(account))
        named = request.GET.get("brand")
        if named is not None:
            brand = branding.brand_named(named)
            request.session[BRAND_SESSION_KEY] = branding.slug_of(brand)
            return brand
        slug = request.session.get(BRAND_SESSION_KEY)
        return SimpleLazyObject(lambda: branding.brand_named(slug)) if slug else None


class UserTimeZoneMiddleware:
    """Shows every date in the logged-in person's own zone (User.time_zone; UTC by default).
    After CurrentAccountMiddleware's authentication; storage and queries stay in UTC."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone_name = getattr(request.user, "time_zone", None) if request.user.is_authenticated else None
        try:
            timezone.activate(ZoneInfo(zone_name or "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            timezone.activate(ZoneInfo("UTC"))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class ImpersonationLimitsMiddleware:
    """Ends an impersonation after IMPERSONATION_MAX_MINUTES and keeps the visitor out of the owner's
    own credentials. Sits after hijack's and the messages middleware, before CurrentAccountMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.owner_only_paths = None

    def __call__(self, request):
        if impersonation_session.is_impersonating(request):
            if impersonation_session.impersonation_expired(request):
                hijacked = impersonation_session.end_impersonation(request)
                messages.info(
                    request, f"Your visit to {hijacked.email}'s dashboard ended after its time limit."
                )
                return redirect("accounts:subaccount_list")
            if request.path in self._owner_only_paths():
                messages.error(
                    request,
                    "Changing the owner's password or email is not allowed while you are logged in as them.",
                )
                return redirect("home")
        return self.get_response(request)

    def _owner_only_paths(self) -> set[str]:
        if self.owner_only_paths is None:
            self.owner_only_paths = {reverse(name) for name in OWNER_ONLY_URL_NAMES}
        return self.owner_only_paths


class HtmxAnswersMiddleware:
    """Every htmx request gets an answer htmx can place (STYLE.md, "Front end").

    - A redirect (a refusal that sends the person elsewhere, a session that ended) becomes HX-Redirect, so
      the browser loads the whole page instead of htmx swapping it into a row. A redirect to the login
      page comes back to the page the person was on, not to the action they pressed.
    - An action's fragment (any htmx POST answered with HTML) carries the flash region out of band, so
      its outcome is shown and no earlier flash outlives it.

    Detects htmx by its header, so it can sit outside django-htmx's middleware and see every redirect."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.headers.get("HX-Request") != "true" or request.headers.get("HX-Boosted") == "true":
            return response
        if response.status_code in (301, 302, 303, 307, 308) and response.has_header("Location"):
            return HttpResponseClientRedirect(self._after_login(request, response["Location"]))
        if (
            request.method == "POST"
            and response.status_code == 200
            and not response.streaming
            and response.get("Content-Type", "").startswith("text/html")
            and not response.has_header("HX-Redirect")
            and b'id="messages"' not in response.content
        ):
            response.content += render_to_string("partials/messages_oob.html", request=request).encode()
        return response

    @staticmethod
    def _after_login(request, location: str) -> str:
        login = resolve_url(settings.LOGIN_URL)
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        if urlsplit(location).path != login or not current.path or current.netloc != request.get_host():
            return location
        back = current.path + (f"?{current.query}" if current.query else "")
        return f"{login}?{urlencode({'next': back}, safe='/')}"
