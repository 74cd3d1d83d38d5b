"""Puts the current user's account on the request. Derived from the membership on every request,
never cached in the session: logging in as someone else changes the user, and so the account."""

from .audit import client_ip
from .models import Membership


class CurrentAccountMiddleware:
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
