"""View guards. A page for another kind of account is a 404, never a 403: nothing hints it exists."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect

from .models import Account


def account_required(view):
    """Logged in and a member of an account; a closed subaccount's owner only ever sees the closed page."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.account is None:
            return redirect("home")
        if request.account.status == Account.Status.CLOSED and request.account.is_subaccount:
            return redirect("accounts:closed")
        return view(request, *args, **kwargs)

    return wrapper


def master_required(view):
    @account_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.account.is_master:
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper
