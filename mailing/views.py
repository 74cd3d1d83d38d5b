"""Pages of the mailing app: API keys (and, as they come, messages, domains and the archive)."""

from django.conf import settings
from django.contrib import messages as flash
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.decorators import account_required
from accounts.errors import DomainError, ValidationError
from accounts.impersonation import real_user

from . import keys
from .models import ApiKey


@account_required
def api_keys(request):
    new_secret = None
    error = None
    if request.method == "POST":
        try:
            api_key, new_secret = keys.create_api_key(
                actor=request.user, account=request.account, label=request.POST.get("label", ""),
                real_actor=real_user(request),
            )  # fmt: skip
        except ValidationError as exc:
            error = exc.message
        except DomainError as exc:
            flash.error(request, exc.message)
        else:
            flash.success(request, f"Key “{api_key.label}” created. Copy it now: it will not be shown again.")
    context = {
        "smtp": {
            "host": settings.SMTP_PUBLIC_HOST or request.get_host().split(":")[0],
            "port": settings.SMTP_PORT,
        },
        "keys": ApiKey.objects.for_account(request.account),
        "new_secret": new_secret,
        "label_error": error,
        "nav": "api_keys",
    }
    return render(request, "mailing/api_keys.html", context)


@require_POST
@account_required
def api_key_revoke(request, pk: int):
    try:
        api_key = keys.revoke_api_key(
            actor=request.user, account=request.account, key_id=pk, real_actor=real_user(request)
        )
    except ApiKey.DoesNotExist:
        raise Http404("No such key.") from None
    except DomainError as exc:
        flash.error(request, exc.message)
    else:
        flash.success(request, f"Key “{api_key.label}” revoked: programs using it are refused from now on.")
    return redirect("mailing:api_keys")
