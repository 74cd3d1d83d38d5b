"""Pages of the accounts app. Thin: parse, call one service or selector, render. Another tenant's
object is a 404; a refusal is a message beside what the user was doing."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect
from hijack.views import AcquireUserView

from . import (
    alerts,
    billing,
    branding,
    emails,
    impersonation,
    invites,
    lifecycle,
    people,
    reports,
    reputation,
    selectors,
    tasks,
    team,
)
from .activity import ActivityFilters, action_choices, activity_for, people_in
from .activity import describe as describe_event
from .decorators import account_required, master_required
from .errors import DomainError, ValidationError
from .forms import (
    AlertThresholdsForm,
    AutoPauseForm,
    BrandForm,
    BulkActionForm,
    ChangeRoleForm,
    DateRangeForm,
    DeleteSubaccountForm,
    InviteMemberForm,
    ProfileForm,
    SetPasswordForm,
    SubaccountForm,
)
from .impersonation_session import is_impersonating, real_user
from .models import Account, Brand, BulkJob, Membership, User
from .validation import clean_search

PAGE_SIZE = 25
SORT_CHOICES = [
    ("name", "Name (A–Z)"),
    ("-name", "Name (Z–A)"),
    ("-created", "Newest first"),
    ("created", "Oldest first"),
    ("id", "Id"),
    ("status", "Status"),
    ("-usage", "Most sent this month"),
    ("-monthly_limit", "Highest monthly limit"),
]


@login_required
def home(request):
    """Everyone lands here after login and goes to the page their account kind starts on."""
    account = request.account
    if account is None:
        if request.user.is_staff:  # the service's own operators work in the admin
            return redirect("admin:index")
        return render(request, "accounts/no_account.html")
    if account.is_master:
        return redirect("accounts:subaccount_list")
    if account.status == Account.Status.CLOSED and account.is_subaccount:
        return redirect("accounts:closed")
    return redirect("accounts:dashboard")


def _list_context(request) -> dict:
    query, query_error = clean_search(request.GET.get("q"), max_length=255)
    status = request.GET.get("status", "")
    sort = request.GET.get("sort", "name")
    page = selectors.subaccounts_page(
        request.account,
        query=query,
        status=status,
        sort=sort,
        number=request.GET.get("page"),
        per_page=PAGE_SIZE,
    )
    reputation.attach_health(page.object_list)
    return {
        "page": page,
        "auto_paused": selectors.auto_paused_subaccounts(request.account),
        "query": query,
        "query_error": query_error,
        "status": status,
        "sort": sort,
        "statuses": Account.Status.choices,
        "sort_choices": SORT_CHOICES,
        "has_any": bool(page.object_list) or Account.objects.subaccounts_of(request.account).exists(),
        "nav": "subaccounts",
    }


@master_required
def subaccount_list(request):
    template = "accounts/subaccount_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#subaccount-table"
    return render(request, template, _list_context(request))


def _get_subaccount(request, pk: int) -> Account:
    try:
        return selectors.subaccount_of(request.account, pk)
    except Account.DoesNotExist:
        raise Http404("No such subaccount.") from None


@master_required
def subaccount_detail(request, pk: int):
    """The drill-down: one customer's usage, figures, reputation, settings and activity. Its messages,
    keys and domains belong to mailing, whose partial the page loads (accounts never imports mailing)."""
    try:
        context = selectors.subaccount_page(request.account, pk)
    except Account.DoesNotExist:
        raise Http404("No such subaccount.") from None
    context["activity"] = [describe_event(event) for event in context.pop("events")]
    return render(request, "accounts/subaccount_detail.html", {**context, "nav": "subaccounts"})


@master_required
def subaccount_create(request):
    form = SubaccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            subaccount = lifecycle.create_subaccount(
                actor=request.user, master=request.account, real_actor=real_user(request), **form.cleaned_data
            )
        except ValidationError as exc:
            form.add_domain_error(exc)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request, f"{subaccount.name} created. An invite is on its way to {subaccount.contact_email}."
            )
            return redirect(reverse("accounts:subaccount_list") + f"#sub-{subaccount.pk}")
    return render(request, "accounts/subaccount_form.html", {"form": form, "nav": "subaccounts"})


@master_required
def subaccount_edit(request, pk: int):
    subaccount = _get_subaccount(request, pk)
    initial = {field: getattr(subaccount, field) for field in lifecycle.EDITABLE_FIELDS}
    email_locked = subaccount.invite_accepted
    form = SubaccountForm(
        request.POST or None, initial=initial, subaccount=subaccount, email_locked=email_locked
    )
    if request.method == "POST" and form.is_valid():
        changes = {field: form.cleaned_data[field] for field in form.changed_data}
        try:
            lifecycle.update_subaccount(
                actor=request.user,
                master=request.account,
                subaccount_id=pk,
                changes=changes,
                real_actor=real_user(request),
            )
        except ValidationError as exc:
            form.add_domain_error(exc)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request, f"{form.cleaned_data['name']} saved." if changes else "Nothing changed."
            )
            return redirect("accounts:subaccount_detail", pk=pk)
    return render(
        request, "accounts/subaccount_form.html", {"form": form, "sub": subaccount, "nav": "subaccounts"}
    )


# One POST endpoint per row action; each calls one service function.
ROW_ACTIONS = {
    "pause": (lifecycle.pause_subaccount, "{name}: sending paused. New mail is held until you resume."),
    "resume": (lifecycle.resume_subaccount, "{name}: sending resumed."),
    "close": (
        lifecycle.close_subaccount,
        "{name} closed. It cannot send; its owner can renew it on their own.",
    ),
    "reopen": (lifecycle.reopen_subaccount, "{name} reopened."),
    "resend_invite": (
        lifecycle.resend_invite,
        "A new invite is on its way to {email}. The previous link no longer works.",
    ),
    "password_reset": (
        lifecycle.send_password_reset_email,
        "A password reset email is on its way to {email}.",
    ),
    "archiving_on": (
        lambda **kw: lifecycle.set_archiving(enabled=True, **kw),
        "{name}: email archiving is on.",
    ),
    "archiving_off": (
        lambda **kw: lifecycle.set_archiving(enabled=False, **kw),
        "{name}: email archiving is off.",
    ),
    "open_tracking_on": (
        lambda **kw: lifecycle.set_tracking(what="opens", enabled=True, **kw),
        "{name}: opens are tracked in mail that does not say otherwise.",
    ),
    "open_tracking_off": (
        lambda **kw: lifecycle.set_tracking(what="opens", enabled=False, **kw),
        "{name}: opens are no longer tracked unless a message asks.",
    ),
    "click_tracking_on": (
        lambda **kw: lifecycle.set_tracking(what="clicks", enabled=True, **kw),
        "{name}: clicks are tracked in mail that does not say otherwise.",
    ),
    "click_tracking_off": (
        lambda **kw: lifecycle.set_tracking(what="clicks", enabled=False, **kw),
        "{name}: clicks are no longer tracked unless a message asks.",
    ),
}


@require_POST
@master_required
def subaccount_action(request, pk: int, action: str):
    service, success = ROW_ACTIONS[action]
    try:
        subaccount = service(
            actor=request.user, master=request.account, subaccount_id=pk, real_actor=real_user(request)
        )
    except Account.DoesNotExist:
        raise Http404("No such subaccount.") from None
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, success.format(name=subaccount.name, email=subaccount.contact_email))
    if request.POST.get("from") == "detail":
        url = reverse("accounts:subaccount_detail", kwargs={"pk": pk})
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    if request.htmx:
        return render(
            request,
            "accounts/partials/subaccount_row.html",
            {"sub": reputation.attach_health([_get_subaccount(request, pk)])[0], "oob_messages": True},
        )
    return redirect(reverse("accounts:subaccount_list") + f"#sub-{pk}")


@master_required
def subaccount_delete(request, pk: int):
    subaccount = _get_subaccount(request, pk)
    form = DeleteSubaccountForm(request.POST or None, subaccount_name=subaccount.name)
    if request.method == "POST" and form.is_valid():
        try:
            lifecycle.delete_subaccount(
                actor=request.user, master=request.account, subaccount_id=pk, real_actor=real_user(request)
            )
        except Account.DoesNotExist:
            raise Http404("No such subaccount.") from None
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{subaccount.name} was deleted for good.")
            return redirect("accounts:subaccount_list")
    return render(
        request, "accounts/subaccount_delete.html", {"sub": subaccount, "form": form, "nav": "subaccounts"}
    )


def _back_to_list(request):
    """The list as it was filtered when the bulk form was sent."""
    kept = {key: request.POST[key] for key in ("q", "status", "sort") if request.POST.get(key)}
    url = reverse("accounts:subaccount_list")
    return redirect(f"{url}?{urlencode(kept)}" if kept else url)


@require_POST
@master_required
def subaccount_bulk(request):
    """Apply one action to many subaccounts and report every outcome (the service runs each alone)."""
    form = BulkActionForm(request.POST)
    if not form.is_valid():
        for error in [
            *form.non_field_errors(),
            *form.errors.get("monthly_limit", []),
            *form.errors.get("action", []),
        ]:
            messages.error(request, error)
        return _back_to_list(request)
    data = form.cleaned_data
    if data["all_matching"]:
        targets = selectors.subaccounts_for_master(
            request.account, query=data["q"], status=data["status"]
        ).values_list("pk", flat=True)
    else:
        targets = data["selected"]
    targets = list(targets)
    job = {
        "actor": request.user, "master": request.account, "action": data["action"], "subaccount_ids": targets,
        "monthly_limit": data["monthly_limit"], "real_actor": real_user(request),
    }  # fmt: skip
    if len(targets) > settings.BULK_INLINE_MAX:
        try:
            started = tasks.start_bulk_job(**job)
        except DomainError as exc:
            messages.error(request, exc.message)
            return _back_to_list(request)
        return redirect("accounts:bulk_job", pk=started.pk)
    outcomes = lifecycle.apply_to_many(**job)
    done = [outcome.name for outcome in outcomes if outcome.done]
    refused = [outcome.reason for outcome in outcomes if not outcome.done]
    label = dict(BulkActionForm.base_fields["action"].choices)[data["action"]]
    if done:
        messages.success(
            request, f"{label}: done for {len(done)} — {', '.join(done[:20])}{'…' if len(done) > 20 else ''}."
        )
    for reason in refused[:20]:
        messages.error(request, f"{label} refused: {reason}")
    if len(refused) > 20:
        messages.error(request, f"…and {len(refused) - 20} more refused.")
    return _back_to_list(request)


@master_required
def bulk_job(request, pk: int):
    """A bulk action running in a worker: a progress bar that polls itself until the job is done, then
    what was done and what was refused."""
    try:
        job = request.account.bulk_jobs.get(pk=pk)
    except BulkJob.DoesNotExist:
        raise Http404("No such job.") from None
    context = {
        "job": job,
        "label": dict(BulkActionForm.base_fields["action"].choices).get(job.action, job.action),
        "nav": "subaccounts",
    }
    template = "accounts/bulk_job.html"
    if request.htmx and not request.htmx.boosted:
        template += "#job-progress"
    return render(request, template, context)


@account_required
def activity(request, pk: int | None = None):
    """The audit trail: the agency's (or one subaccount's, for the master), or the account's own."""
    if pk is not None:
        if not request.account.is_master:
            raise Http404("No such page.")
        subject = _get_subaccount(request, pk)
    else:
        subject = request.account
    filters = ActivityFilters.from_query(request.GET)
    page = Paginator(activity_for(subject, filters, zone=timezone.get_current_timezone()), 50).get_page(
        request.GET.get("page")
    )
    context = {
        "page": page,
        "lines": [describe_event(event) for event in page.object_list],
        "subject": subject,
        "filters": filters,
        "actions": action_choices(),
        "people": people_in(subject),
        "nav": "activity",
    }
    template = "accounts/activity.html"
    if request.htmx and not request.htmx.boosted:
        template += "#activity-table"
    return render(request, template, context)


@account_required
def dashboard(request):
    if request.account.is_master:
        return redirect("accounts:subaccount_list")
    account = selectors.with_usage(
        Account.objects.filter(pk=request.account.pk).select_related("parent")
    ).get()
    context = {
        "account": account,
        "limit_warning": selectors.limit_warning(account),
        "daily": selectors.daily_sent(account),
        "outcomes": selectors.outcomes_this_month(account),
        "smtp_host": settings.SMTP_PUBLIC_HOST or request.get_host().split(":")[0],
        "smtp_port": settings.SMTP_PORT,
        "nav": "dashboard",
    }
    return render(request, "accounts/dashboard.html", context)


@login_required
def closed(request):
    account = request.account
    if account is None or account.status != Account.Status.CLOSED or not account.is_subaccount:
        return redirect("home")
    return render(request, "accounts/closed.html", {"account": account})


@require_POST
@login_required
def renew(request):
    try:
        account = lifecycle.renew_account(actor=request.user, real_actor=real_user(request))
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("home")
    messages.success(request, f"Welcome back: {account.name} is now your own account and can send again.")
    return redirect("accounts:dashboard")


def invite_accept(request, token: str):
    """GET shows the set-password form; only POST consumes the invite."""
    lookup = invites.look_up(token)
    if lookup.state is not invites.InviteState.VALID:
        return _invite_invalid(request, lookup.state)
    form = SetPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = invites.accept_invite(token=token, password=form.cleaned_data["password1"])
        except invites.InviteNotUsable as exc:
            return _invite_invalid(request, exc.state)
        except ValidationError as exc:
            form.add_error("password1", exc.message)
        else:
            if request.user.is_authenticated:  # someone else was logged in in this browser
                logout(request)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome! Your password is set and you are logged in.")
            return redirect("home")
    return render(request, "accounts/invite_accept.html", {"form": form, "invitation": lookup.invitation})


def _invite_invalid(request, state: invites.InviteState):
    status = 404 if state is invites.InviteState.UNKNOWN else 410
    return render(request, "accounts/invite_invalid.html", {"state": state.value}, status=status)


@require_POST
@master_required
def log_in_as(request, pk: int):
    """Log in as the subaccount's owner, through django-hijack, after our own check with a readable refusal."""
    subaccount = _get_subaccount(request, pk)
    reason = impersonation.refusal_reason(
        hijacker=request.user,
        hijacked=User.objects.filter(pk=subaccount.owner_id).first(),
        already_impersonating=is_impersonating(request),
    )
    if reason:
        messages.error(request, reason)
        return redirect(reverse("accounts:subaccount_list") + f"#sub-{pk}")
    request.POST = request.POST.copy()
    request.POST["user_pk"] = str(subaccount.owner_id)
    request.POST["next"] = reverse("accounts:dashboard")
    return AcquireUserView.as_view()(request)


@master_required
def overview(request):
    """This month at a glance, and the agency's sending over a chosen range (7, 30, 90 days or from-to)."""
    form = DateRangeForm(request.GET or None)
    span = form.span
    daily, month_days = reports.range_and_month(request.account, span)
    context = selectors.master_overview(request.account, month_days=month_days)
    context["activity"] = [describe_event(event) for event in context.pop("events")]
    context |= {
        "range_form": form,
        "span": span,
        "daily": daily,
        "range_totals": reports.totals(daily),
        "top": _with_health(reports.top_subaccounts(request.account, span)),
        "export_query": urlencode(
            {"range": span.preset, "date_from": span.first.isoformat(), "date_to": span.last.isoformat()}
        ),
        "nav": "overview",
    }
    return render(request, "accounts/overview.html", context)


def _with_health(rows: list[dict]) -> list[dict]:
    """Each current subaccount's 30-day reputation beside its figures: one query for the lot."""
    found = reputation.health_of([row["account_id"] for row in rows if row["state"] == "current"])
    return [row | {"health": found.get(row["account_id"])} for row in rows]


OVERVIEW_EXPORTS = {
    "days": (reports.daily_csv, "sending-by-day"),
    "subaccounts": (reports.subaccounts_csv, "by-subaccount"),
}


@master_required
def overview_csv(request, what: str):
    """The overview's range as CSV (streamed: a range over 100,000 subaccounts is never held whole). A
    range that cannot be used goes back to the overview, which says why beside the field."""
    form = DateRangeForm(request.GET)
    if not form.is_valid():
        return redirect(f"{reverse('accounts:overview')}?{request.GET.urlencode()}")
    span = form.span
    lines, name = OVERVIEW_EXPORTS[what]
    response = StreamingHttpResponse(lines(request.account, span), content_type="text/csv; charset=utf-8")
    filename = f"{request.account.public_id}-{name}-{span.first:%Y-%m-%d}-to-{span.last:%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@master_required
def billing_page(request):
    month = billing.parse_month(request.GET.get("month"))
    try:
        page = int(request.GET.get("page", 1))
    except ValueError:
        page = 1
    context = {
        "bill": billing.bill_for_month(request.account, month, page=page),
        "months": billing.months_billed(request.account),
        "nav": "billing",
    }
    return render(request, "accounts/billing.html", context)


@master_required
def billing_csv(request):
    month = billing.parse_month(request.GET.get("month"))
    response = HttpResponse(billing.bill_csv(request.account, month), content_type="text/csv; charset=utf-8")
    filename = f"{request.account.public_id}-usage-{month:%Y-%m}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@master_required
def alert_settings(request, pk: int | None = None):
    """The master's default near-limit thresholds, or (with pk) one subaccount's override."""
    subject = _get_subaccount(request, pk) if pk is not None else request.account
    form = AlertThresholdsForm(
        request.POST or None, initial={"thresholds": ", ".join(map(str, subject.alert_thresholds or []))}
    )
    if request.method == "POST" and form.is_valid():
        try:
            alerts.set_alert_thresholds(
                actor=request.user,
                master=request.account,
                subaccount_id=pk,
                thresholds=form.cleaned_data["thresholds"],
                real_actor=real_user(request),
            )
        except ValidationError as exc:
            form.add_error("thresholds", exc.message)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Alert thresholds saved.")
            return (
                redirect("accounts:subaccount_detail", pk=pk) if pk else redirect("accounts:alert_settings")
            )
    at = [f"{threshold}%" for threshold in sorted({*alerts.thresholds_for(subject), 100})]
    context = {
        "form": form,
        "subject": subject,
        "alerts_now": f"{', '.join(at[:-1])} and {at[-1]}" if len(at) > 1 else at[0],
        "nav": "alerts" if pk is None else "subaccounts",
    }
    return render(request, "accounts/alert_settings.html", context)


# --- the agency's brand ------------------------------------------------------------------------------------


@master_required
def brand_settings(request):
    """The Brand page: owners and admins change it; viewers see it."""
    brand = Brand.objects.filter(account=request.account).first()
    initial = (
        {"name": brand.name, "accent_color": brand.accent_color, "support_email": brand.support_email}
        if brand
        else {"name": request.account.name}
    )
    form = BrandForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["logo"]
        try:
            branding.set_brand(
                actor=request.user,
                master=request.account,
                name=form.cleaned_data["name"],
                accent_color=form.cleaned_data["accent_color"],
                support_email=form.cleaned_data["support_email"],
                logo=upload.read(branding.LOGO_MAX_BYTES + 1) if upload else None,
                remove_logo=form.cleaned_data["remove_logo"],
                real_actor=real_user(request),
            )
        except ValidationError as exc:
            form.add_domain_error(exc)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Brand saved. Your customers see it from their next page.")
            return redirect("accounts:brand")
    context = {
        "form": form,
        "saved_brand": brand,
        "login_link": emails.absolute(  # as the emails write it: SITE_URL, never the Host header
            reverse("account_login") + "?" + urlencode({"brand": request.account.public_id})
        ),
        "nav": "brand",
    }
    return render(request, "accounts/brand.html", context, status=400 if form.errors else 200)


def _brand_or_404(brand_id: int) -> Brand:
    brand = Brand.objects.filter(pk=brand_id).first()
    if brand is None:
        raise Http404("No such brand.")
    return brand


@require_GET
def brand_logo(request, brand_id: int, digest: str, ext: str):
    """A brand's logo, from our own view: public (login pages show it), named by its hash so it is
    cached for good; its type is ours (the re-encoded image's), never the uploader's, and not sniffed."""
    brand = _brand_or_404(brand_id)
    if not brand.has_logo or digest != brand.logo_hash[:16] or ext != brand.logo_extension:
        raise Http404("No such logo.")
    response = HttpResponse(bytes(brand.logo), content_type=brand.logo_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = f'inline; filename="logo.{ext}"'
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@require_GET
def brand_theme(request, brand_id: int, version: str):
    """The brand's colour as a stylesheet: the CSP allows stylesheets from us only, never inline."""
    brand = _brand_or_404(brand_id)
    if version != brand.theme_version:
        raise Http404("No such theme.")
    response = HttpResponse(branding.theme_css(brand), content_type="text/css; charset=utf-8")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


# --- the team ----------------------------------------------------------------------------------------------


def _team_context(request, invite_form=None) -> dict:
    actor_role = request.membership.role if request.membership else None
    grantable = team.roles_grantable_by(actor_role, request.account)
    invite_form = invite_form or InviteMemberForm()
    invite_form.fields["role"].choices = [(r, Membership.Role(r).label) for r in grantable]
    members = team.team_of(request.account)
    owners = [member for member in members if member.role == Membership.Role.OWNER]
    return {
        "members": members,
        "sole_owner_id": owners[0].pk if len(owners) == 1 else None,
        "invite_form": invite_form,
        "grantable": [(r, Membership.Role(r).label) for r in grantable],
        "may_manage": bool(grantable),
        "actor_role": actor_role,
        "nav": "team",
    }


@account_required
def team_page(request):
    form = InviteMemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team.invite_member(
                actor=request.user,
                account=request.account,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                real_actor=real_user(request),
            )
        except ValidationError as exc:
            form.add_domain_error(exc)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"An invite is on its way to {form.cleaned_data['email']}.")
            return redirect("accounts:team")
    return render(
        request, "accounts/team.html", _team_context(request, form), status=400 if form.errors else 200
    )


@require_POST
@account_required
def team_member_role(request, membership_id: int):
    form = ChangeRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose owner, admin or viewer.")
        return redirect("accounts:team")
    try:
        member = team.change_role(
            actor=request.user,
            account=request.account,
            membership_id=membership_id,
            role=form.cleaned_data["role"],
            real_actor=real_user(request),
        )
    except Membership.DoesNotExist:
        raise Http404("No such member.") from None
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{member.user.email} is now {member.get_role_display().lower()}.")
    return redirect("accounts:team")


@require_POST
@account_required
def team_member_remove(request, membership_id: int):
    try:
        member = Membership.objects.select_related("user").get(account=request.account, pk=membership_id)
        team.remove_member(
            actor=request.user,
            account=request.account,
            membership_id=membership_id,
            real_actor=real_user(request),
        )
    except Membership.DoesNotExist:
        raise Http404("No such member.") from None
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("accounts:team")
    if member.user_id == request.user.pk:
        return redirect("account_login")
    messages.success(request, f"{member.user.email} no longer has access.")
    return redirect("accounts:team")


@require_POST
@account_required
def team_member_resend(request, membership_id: int):
    try:
        member = team.resend_member_invite(
            actor=request.user,
            account=request.account,
            membership_id=membership_id,
            real_actor=real_user(request),
        )
    except Membership.DoesNotExist:
        raise Http404("No such member.") from None
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"A new invite is on its way to {member.user.email}. The previous link no longer works."
        )
    return redirect("accounts:team")


# --- the person's own settings -----------------------------------------------------------------------------


@login_required
def profile(request):
    """The person's own settings: their name and the time zone their dates are shown in."""
    form = ProfileForm(
        request.POST or None,
        initial={"full_name": request.user.full_name, "time_zone": request.user.time_zone},
    )
    if request.method == "POST" and form.is_valid():
        try:
            people.update_profile(
                user=request.user,
                full_name=form.cleaned_data["full_name"],
                time_zone=form.cleaned_data["time_zone"],
                real_actor=real_user(request),
            )
        except ValidationError as exc:
            form.add_domain_error(exc)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Settings saved.")
            return redirect("accounts:profile")
    return render(
        request, "accounts/profile.html", {"form": form, "nav": "profile"}, status=400 if form.errors else 200
    )


def _number(value: float) -> str:
    return f"{value:g}"  # 4.0 → "4", 0.1 → "0.1": percentages as people write them


def _numbers(limits: dict) -> dict[str, str]:
    return {name: _number(value) for name, value in limits.items()}


@master_required
def auto_pause_settings(request, pk: int | None = None):
    """The master's auto-pause limits for all its subaccounts, or (with pk) one subaccount's override."""
    subject = _get_subaccount(request, pk) if pk is not None else request.account
    own = subject.auto_pause_rates or {}
    form = AutoPauseForm(
        request.POST or None,
        initial={name: _number(own[name]) for name in AutoPauseForm.base_fields if name in own},
    )
    fallback = reputation.DEFAULT_RATES | (
        (request.account.auto_pause_rates or {}) if subject.is_subaccount else {}
    )
    for name, field in form.fields.items():  # what an empty field means
        field.widget.attrs["placeholder"] = _number(fallback[name])
    if request.method == "POST" and form.is_valid():
        try:
            reputation.set_auto_pause_rates(
                actor=request.user, master=request.account, subaccount_id=pk, rates=form.cleaned_data,
                real_actor=real_user(request),
            )  # fmt: skip
        except ValidationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Auto-pause limits saved.")
            return redirect("accounts:subaccount_detail", pk=pk) if pk else redirect("accounts:auto_pause")
    context = {
        "form": form,
        "subject": subject,
        "limits": _numbers(
            reputation.limits_for(subject) if subject.is_subaccount else reputation.DEFAULT_RATES | own
        ),
        "defaults": _numbers(reputation.DEFAULT_RATES),
        "agency_limits": _numbers(reputation.DEFAULT_RATES | (request.account.auto_pause_rates or {})),
        "health": reputation.attach_health([subject])[0].health if subject.is_subaccount else None,
        "nav": "alerts" if pk is None else "subaccounts",
    }
    return render(request, "accounts/auto_pause_settings.html", context)
