"""Request-wide context: the current account, and the limits of an impersonation."""

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse

from . import impersonation_session
from .audit import client_ip
from .models import Membership

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
        token = client_ip.set(request.META.get("REMOTE_ADDR"))
        try:
            return self.get_response(request)
        finally:
            client_ip.reset(token)


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
