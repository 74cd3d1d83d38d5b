"""Pages of the mailing app: API keys (and, as they come, messages, domains and the archive)."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages as flash
from django.http import FileResponse, Http404, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_POST

from accounts.decorators import account_required, master_required
from accounts.errors import DomainError, ValidationError
from accounts.impersonation_session import real_user
from accounts.models import Account
from accounts.validation import clean_search

from . import archive, domains, exports, keys, scheduling, selectors, tasks, templates, wording
from .deliverability import suppression
from .forms import TemplateForm, WebhookForm
from .models import (
    ApiKey,
    ArchivedMessage,
    ExportJob,
    Message,
    MessageEvent,
    SenderDomain,
    Suppression,
    Template,
    Webhook,
)
from .webhooks import hooks, outbox

NEW_KEY_SESSION = "mailing_new_api_key"


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
            # Post/redirect/get: a reload must not make a second key. The secret rides in the session
            # for exactly one page view, then is gone.
            request.session[NEW_KEY_SESSION] = new_secret
            return redirect("mailing:api_keys")
    new_secret = request.session.pop(NEW_KEY_SESSION, None)
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
    if request.htmx:  # the row as it now stands; the flash comes along out of band (HtmxAnswersMiddleware)
        key = ApiKey.objects.for_account(request.account).get(pk=pk)
        return render(request, "mailing/api_keys.html#key-row", {"key": key})
    return redirect("mailing:api_keys")


class UncountedPage:
    """A page of a long, newest-first list without COUNT(*): over millions of messages a count would
    cost more than the page. Knows only whether there is a previous and a next page."""

    def __init__(self, queryset, number, size: int = 50):
        try:
            self.number = max(int(number or 1), 1)
        except ValueError:
            self.number = 1
        rows = list(queryset[(self.number - 1) * size : self.number * size + 1])
        self.object_list = rows[:size]
        self.has_next = len(rows) > size
        self.has_previous = self.number > 1
        self.next_page_number = self.number + 1
        self.previous_page_number = self.number - 1


@account_required
def message_list(request):
    filters = selectors.MessageFilters.from_query(request.GET)
    found = selectors.messages_for(request.account, filters)
    page = UncountedPage(found, request.GET.get("page"))
    context = {
        "page": page,
        "total": selectors.total_of(found),
        "filters": filters,
        "statuses": Message.Status.choices,
        "columns": _sortable_columns(request.account, filters.sort),
        "sort_choices": _sort_choices(request.account),
        "nav": "messages",
    }
    template = "mailing/message_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#message-table"
    return render(request, template, context)


SORT_LABELS = {
    "-created": "Newest first",
    "created": "Oldest first",
    "recipient": "Recipient (A–Z)",
    "-recipient": "Recipient (Z–A)",
    "subaccount": "Account (A–Z)",
    "-subaccount": "Account (Z–A)",
    "status": "Status (A–Z)",
    "-status": "Status (Z–A)",
}


def _sort_choices(account: Account) -> list[tuple[str, str]]:
    """The sorts a phone offers in the filters (the column heads, which sort on a wide screen, are hidden)."""
    return [
        (key, label) for key, label in SORT_LABELS.items() if account.is_master or "subaccount" not in key
    ]


def _sortable_columns(account: Account, sort: str) -> list[dict]:
    """The list's column heads that sort, each with the sort its link asks for (the other direction when it
    is the current one) and its aria-sort state."""
    columns = [("created", "When"), ("recipient", "Recipient"), ("status", "Status")]
    if account.is_master:
        columns.insert(2, ("subaccount", "Account"))
    heads = []
    for key, label in columns:
        first = "-created" if key == "created" else key  # newest first, A to Z
        other = first[1:] if first.startswith("-") else f"-{first}"
        current = sort in (first, other)
        heads.append(
            {
                "key": key,
                "label": label,
                "sort": other if sort == first else first,
                "aria_sort": ("descending" if sort.startswith("-") else "ascending") if current else "",
            }
        )
    return heads


@account_required
def message_export(request):
    return _export_or_offer(request, ExportJob.Kind.MESSAGES)


def _export_or_offer(request, kind: str):
    """The filtered, sorted list as CSV: streamed at once when it is small (exports.fits_inline), else a
    page offering to prepare the file in the background, so no request waits on a million rows."""
    try:
        export = exports.export_for(request.account, kind, request.GET)
    except Account.DoesNotExist:
        raise Http404("No such list.") from None
    small, counted = exports.fits_inline(export.rows)
    if small:
        response = StreamingHttpResponse(export.lines, content_type="text/csv; charset=utf-8")
        filename = exports.file_name(export.owner, kind, timezone.localdate())
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "kind": ExportJob.Kind(kind), "query": query.urlencode(), "at_least": counted,
        "back": _list_url(kind, query), "recent": request.account.export_jobs.filter(kind=kind)[:5],
        "nav": kind, "retention_days": settings.EXPORT_RETENTION_DAYS,  # the nav's names are the kinds
    }  # fmt: skip
    return render(request, "mailing/export_offer.html", context)


_EXPORT_LISTS = {
    ExportJob.Kind.MESSAGES: "mailing:message_list",
    ExportJob.Kind.SUPPRESSIONS: "mailing:suppression_list",
}


def _list_url(kind: str, query: QueryDict | dict) -> str:
    """The list page the export was made from, with its filters."""
    encoded = urlencode(dict(query.items()))
    url = reverse(_EXPORT_LISTS[kind])
    return f"{url}?{encoded}" if encoded else url


@require_POST
@account_required
def export_start(request):
    """Prepare a large export in the background; its page shows the progress and then the file."""
    try:
        job = tasks.start_export(
            actor=request.user, account=request.account, kind=request.POST.get("kind", ""),
            query=QueryDict(request.POST.get("query", "")), time_zone=timezone.get_current_timezone_name(),
            notify=real_user(request) is None,
        )  # fmt: skip
    except (ValueError, Account.DoesNotExist):
        raise Http404("No such list.") from None
    return redirect("mailing:export_job", pk=job.pk)


def _export_job(request, pk: int) -> ExportJob:
    try:
        return request.account.export_jobs.select_related("requested_by").get(pk=pk)
    except ExportJob.DoesNotExist:
        raise Http404("No such export.") from None


@account_required
def export_job(request, pk: int):
    job = _export_job(request, pk)
    context = {
        "job": job, "back": _list_url(job.kind, job.query), "query": urlencode(job.query),
        "nav": job.kind,
    }  # fmt: skip
    template = "mailing/export_job.html"
    if request.htmx:
        template += "#export-progress"
    return render(request, template, context)


@account_required
def export_download(request, pk: int):
    job = _export_job(request, pk)
    try:
        owner = exports.export_for(request.account, job.kind, job.query).owner
    except Account.DoesNotExist:  # the subaccount whose list it was is gone
        raise Http404("No such list.") from None
    try:
        opened = exports.open_export(job)
    except FileNotFoundError:
        raise Http404("This export has no file: it is not ready, it failed, or it was deleted.") from None
    name = exports.file_name(owner, job.kind, timezone.localdate(job.created_at))
    return FileResponse(opened, as_attachment=True, filename=name, content_type="text/csv; charset=utf-8")


@master_required
def subaccount_sending(request, pk: int):
    """The master's page for one subaccount loads this: its latest messages, keys and domains, read-only."""
    try:
        context = selectors.subaccount_sending(request.account, pk)
    except Account.DoesNotExist:
        raise Http404("No such subaccount.") from None
    return render(request, "mailing/partials/subaccount_sending.html", context)


@account_required
def recent_messages(request):
    """The dashboard's latest messages, loaded by htmx (the dashboard itself belongs to accounts)."""
    latest = selectors.messages_for(request.account, selectors.MessageFilters())[:10]
    return render(request, "mailing/partials/recent_messages.html", {"messages_list": latest})


@account_required
def message_detail(request, public_id: str):
    try:
        message = selectors.message_of(request.account, public_id)
    except Message.DoesNotExist:
        raise Http404("No such message.") from None
    timeline = [wording.timeline_entry(event) for event in message.events.all()]
    return render(
        request, "mailing/message_detail.html", {"message": message, "timeline": timeline, "nav": "messages"}
    )


@account_required
def archive_list(request):
    filters = selectors.MessageFilters.from_query(request.GET)
    query, query_error = clean_search(request.GET.get("q"), max_length=200)
    found = archive.archive_for(
        request.account, query=query, date_from=filters.date_from, date_to=filters.date_to
    )
    page = UncountedPage(found, request.GET.get("page"))
    context = {"page": page, "query": query, "query_error": query_error, "filters": filters, "nav": "archive"}
    template = "mailing/archive_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#archive-table"
    return render(request, template, context)


def _archived(request, pk: int) -> ArchivedMessage:
    try:
        return archive.archived_message_of(request.account, pk)
    except ArchivedMessage.DoesNotExist:
        raise Http404("No such archived message.") from None


@account_required
def archive_detail(request, pk: int):
    return render(
        request, "mailing/archive_detail.html", {"archived": _archived(request, pk), "nav": "archive"}
    )


# The customer's HTML is shown in a sandboxed iframe: no scripts, no forms, no navigation of our page,
# and a CSP of its own that forbids everything but inline styles and images.
SANDBOXED_MAIL = csp_override(
    {"default-src": ["'none'"], "style-src": ["'unsafe-inline'"], "img-src": ["data:", "https:"],
     "frame-ancestors": ["'self'"], "sandbox": [""]}
)  # fmt: skip


@account_required
@xframe_options_sameorigin
@SANDBOXED_MAIL
def archive_body(request, pk: int):
    archived = _archived(request, pk)
    if archived.html:
        return HttpResponse(archived.html, content_type="text/html; charset=utf-8")
    return HttpResponse(archived.text, content_type="text/plain; charset=utf-8")


@account_required
def domain_list(request):
    error = None
    typed = ""
    if request.method == "POST":
        try:
            added = domains.add_domain(
                actor=request.user, account=request.account, domain=request.POST.get("domain", ""),
                real_actor=real_user(request),
            )  # fmt: skip
        except ValidationError as exc:
            error = exc.message
            typed = request.POST.get("domain", "")[:253]
        except DomainError as exc:
            flash.error(request, exc.message)
        else:
            flash.success(request, f"{added.domain} added. Publish its DNS records below, then press Verify.")
            return redirect("mailing:domain_list")
    context = {
        "own": SenderDomain.objects.for_account(request.account).prefetch_related("shared_with", "dkim_keys"),
        "shared": SenderDomain.objects.usable_by(request.account).exclude(account=request.account),
        "subaccounts": _subaccounts(request),
        "domain_error": error,
        "domain_value": typed,
        "nav": "domains",
    }
    return render(request, "mailing/domains.html", context)


def _subaccounts(request) -> list[Account]:
    return list(Account.objects.subaccounts_of(request.account)) if request.account.is_master else []


def _domain_row(request, pk: int):
    """One domain's rows as they now stand, for htmx; what happened is in the flash, sent out of band."""
    sender_domain = (
        SenderDomain.objects.for_account(request.account)
        .prefetch_related("shared_with", "dkim_keys")
        .get(pk=pk)
    )
    return render(
        request,
        "mailing/domains.html#domain-row",
        {"sender_domain": sender_domain, "subaccounts": _subaccounts(request)},
    )


@require_POST
@account_required
def domain_verify(request, pk: int):
    try:
        sender_domain = domains.verify_domain(
            actor=request.user, account=request.account, domain_id=pk, real_actor=real_user(request)
        )
    except SenderDomain.DoesNotExist:
        raise Http404("No such domain.") from None
    except DomainError as exc:
        flash.error(request, exc.message)
    else:
        if sender_domain.verified_at:
            flash.success(request, f"{sender_domain.domain} is verified: you can send from it.")
        elif not request.htmx:  # an htmx answer shows why beside the domain
            flash.error(request, sender_domain.last_error)
    if request.htmx:
        return _domain_row(request, pk)
    return redirect("mailing:domain_list")


@require_POST
@account_required
def domain_rotate_dkim(request, pk: int):
    try:
        sender_domain = domains.rotate_dkim_key(
            actor=request.user, account=request.account, domain_id=pk, real_actor=real_user(request)
        )
    except SenderDomain.DoesNotExist:
        raise Http404("No such domain.") from None
    except DomainError as exc:
        flash.error(request, exc.message)
    else:
        flash.success(
            request,
            f"New DKIM key made for {sender_domain.domain}. Publish its record, then press Check records; "
            "the current key signs until then.",
        )
    if request.htmx:
        return _domain_row(request, pk)
    return redirect("mailing:domain_list")


@require_POST
@account_required
def domain_share(request, pk: int):
    if not request.account.is_master:
        raise Http404("No such page.")
    try:
        domains.share_domain(
            actor=request.user, master=request.account, domain_id=pk,
            subaccount_ids=[int(v) for v in request.POST.getlist("subaccounts") if v.isdigit()],
            all_subaccounts=request.POST.get("all_subaccounts") == "on", real_actor=real_user(request),
        )  # fmt: skip
    except SenderDomain.DoesNotExist:
        raise Http404("No such domain.") from None
    except DomainError as exc:
        flash.error(request, exc.message)
    else:
        flash.success(request, "Sharing saved.")
    return redirect("mailing:domain_list")


@require_POST
@account_required
def domain_remove(request, pk: int):
    try:
        removed = domains.remove_domain(
            actor=request.user, account=request.account, domain_id=pk, real_actor=real_user(request)
        )
    except SenderDomain.DoesNotExist:
        raise Http404("No such domain.") from None
    except DomainError as exc:
        flash.error(request, exc.message)
        if request.htmx:
            return _domain_row(request, pk)
    else:
        flash.success(request, f"{removed} removed. Mail from it is rejected from now on.")
        if request.htmx:
            return HttpResponse("")  # the domain's rows go; the flash comes out of band
    return redirect("mailing:domain_list")


# --- templates ----------------------------------------------------------------------------------------


@account_required
def template_list(request):
    context = {
        "templates": templates.templates_for(request.account, label=request.GET.get("label", "")[:100]),
        "shared": Template.objects.usable_by(request.account).exclude(account=request.account),
        "label": request.GET.get("label", ""),
        "nav": "templates",
    }
    return render(request, "mailing/template_list.html", context)


def _template_fields(form: TemplateForm) -> dict:
    return {name: form.cleaned_data[name] for name in ("subject", "from_email", "from_name", "code", "text")}


@account_required
def template_create(request):
    form = TemplateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            template = templates.add_template(
                actor=request.user, account=request.account, name=form.cleaned_data["name"],
                labels=form.cleaned_data["labels"], publish="publish" in request.POST, **_template_fields(form),
            )  # fmt: skip
        except ValidationError as exc:
            form.add_domain_error(exc)
        except DomainError as exc:
            flash.error(request, exc.message)
        else:
            flash.success(request, f"Template “{template.name}” created.")
            return redirect("mailing:template_edit", slug=template.slug)
    return render(request, "mailing/template_form.html", {"form": form, "nav": "templates"})


def _own_template(request, slug: str) -> Template:
    try:
        return templates.template_of(request.account, slug)
    except DomainError:
        raise Http404("No such template.") from None


@account_required
def template_edit(request, slug: str):
    template = _own_template(request, slug)
    initial = {
        name: getattr(template, name)
        for name in ("name", "subject", "from_email", "from_name", "code", "text")
    }
    form = TemplateForm(
        request.POST or None, initial=initial | {"labels": ", ".join(template.labels)}, editing=True
    )
    if request.method == "POST" and form.is_valid():
        try:
            templates.update_template(
                actor=request.user, account=request.account, name=template.slug, labels=form.cleaned_data["labels"],
                publish="publish" in request.POST, **_template_fields(form),
            )  # fmt: skip
        except ValidationError as exc:
            form.add_domain_error(exc)
        except DomainError as exc:
            flash.error(request, exc.message)
        else:
            flash.success(request, "Published." if "publish" in request.POST else "Draft saved.")
            return redirect("mailing:template_edit", slug=template.slug)
    context = {
        "form": form,
        "template": template,
        "subaccounts": Account.objects.subaccounts_of(request.account) if request.account.is_master else [],
        "shared_with": set(template.shared_with.values_list("pk", flat=True)),
        "nav": "templates",
    }
    return render(request, "mailing/template_form.html", context)


# The draft's HTML, shown in a sandboxed iframe with a CSP of its own, as the archive shows mail.
@account_required
@xframe_options_sameorigin
@SANDBOXED_MAIL
def template_preview(request, slug: str):
    template = _own_template(request, slug)
    return _mail_document(html=template.code, text=template.text)


# What is being typed, before it is saved: the editor posts it here into the same sandbox as it
# changes. Nothing is stored, and the length is the template's own bound.
@require_POST
@account_required
@xframe_options_sameorigin
@SANDBOXED_MAIL
def template_live_preview(request):
    return _mail_document(
        html=request.POST.get("code", "")[: templates.MAX_LENGTHS["code"]],
        text=request.POST.get("text", "")[: templates.MAX_LENGTHS["text"]],
    )


def _mail_document(*, html: str, text: str) -> HttpResponse:
    """HTML as HTML; a text-only draft as text, so a "<" in it is shown, not parsed."""
    if html:
        return HttpResponse(html, content_type="text/html; charset=utf-8")
    return HttpResponse(format_html("<pre>{}</pre>", text), content_type="text/html; charset=utf-8")


@require_POST
@account_required
def template_action(request, slug: str, action: str):
    template = _own_template(request, slug)
    try:
        if action == "publish":
            templates.publish_template(actor=request.user, account=request.account, name=template.slug)
            flash.success(request, f"“{template.name}” published: sends use it from now on.")
        elif action == "delete":
            templates.delete_template(actor=request.user, account=request.account, name=template.slug)
            flash.success(request, f"“{template.name}” deleted.")
            return redirect("mailing:template_list")
        elif action == "test":
            templates.send_test(actor=request.user, account=request.account, name=template.slug)
            flash.success(request, f"A test is on its way to {request.user.email}.")
        elif action == "share" and request.account.is_master:
            templates.share_template(
                actor=request.user, master=request.account, name=template.slug,
                subaccount_ids=[int(v) for v in request.POST.getlist("subaccounts") if v.isdigit()],
                all_subaccounts=request.POST.get("all_subaccounts") == "on",
            )  # fmt: skip
            flash.success(request, "Sharing saved.")
        else:
            raise Http404("No such action.")
    except DomainError as exc:
        flash.error(request, exc.message)
    return redirect("mailing:template_edit", slug=template.slug)


@require_POST
@account_required
def message_cancel(request, public_id: str):
    """Cancel a scheduled message before it leaves; its quota comes back."""
    if not (request.membership and request.membership.can_manage):
        raise Http404("No such page.")
    try:
        message = scheduling.cancel_scheduled(account=request.account, public_id=public_id)
    except Message.DoesNotExist:
        flash.error(request, "That message is no longer scheduled: it has left, or was cancelled.")
    else:
        flash.success(request, f"The message to {message.to_email} was cancelled; its quota is back.")
    return redirect("mailing:message_list")


# --- the suppression list -------------------------------------------------------------------------------


def _list_owner(request) -> Account:
    """Whose list: ?account=<pk> (a master choosing one of its subaccounts), else the account's own."""
    raw = request.GET.get("account", "")
    try:
        return suppression.list_owner(request.account, int(raw) if raw else None)
    except (ValueError, Account.DoesNotExist):
        raise Http404("No such list.") from None


def _suppressions_url(owner: Account, request) -> str:
    url = reverse("mailing:suppression_list")
    return url if owner.pk == request.account.pk else f"{url}?account={owner.pk}"


@account_required
def suppression_list(request):
    owner = _list_owner(request)
    add_error, typed = None, ""
    if request.method == "POST":
        typed = request.POST.get("email", "")[:254]
        try:
            added = suppression.add_suppression(
                actor=request.user, account=request.account, owner=owner, email=typed,
                comment=request.POST.get("comment", ""), real_actor=real_user(request),
            )  # fmt: skip
        except ValidationError as exc:
            add_error = exc.message
        except DomainError as exc:
            flash.error(request, exc.message)
        else:
            if added:
                flash.success(request, f"{typed.strip().lower()} added: mail to it is rejected from now on.")
            else:
                flash.error(request, f"{typed.strip()} is on the allowlist, so it is never suppressed.")
            return redirect(_suppressions_url(owner, request))
    filters = suppression.SuppressionFilters.from_query(request.GET)
    page = UncountedPage(suppression.filtered_suppressions(owner, filters), request.GET.get("page"))
    context = {
        "owner": owner,
        "page": page,
        "filters": filters,
        "reasons": Suppression.Reason.choices,
        "expiry_choices": suppression.EXPIRY_CHOICES,
        "subaccounts": _subaccounts(request),
        "add_error": add_error,
        "email_value": typed,
        "now": timezone.now(),
        "nav": "suppressions",
    }
    template = "mailing/suppressions.html"
    if request.htmx and not request.htmx.boosted:
        template += "#suppression-table"
    return render(request, template, context)


@account_required
def suppression_csv(request):
    return _export_or_offer(request, ExportJob.Kind.SUPPRESSIONS)


# --- webhooks -----------------------------------------------------------------------------------------


def _webhook_form(request, data=None, initial=None) -> WebhookForm:
    return WebhookForm(
        data, initial=initial, event_choices=hooks.event_choices(request.account),
        is_master=request.account.is_master,
    )  # fmt: skip


def _webhook_fields(form: WebhookForm) -> dict:
    return {
        "url": form.cleaned_data["url"],
        "description": form.cleaned_data["description"],
        "events": form.cleaned_data["events"],
        "include_subaccounts": form.cleaned_data.get("include_subaccounts", False),
    }


@account_required
def webhook_list(request):
    form = _webhook_form(request, request.POST or None, initial={"events": MessageEvent.Kind.values})
    if request.method == "POST" and form.is_valid():
        try:
            webhook = hooks.add_webhook(
                actor=request.user,
                account=request.account,
                real_actor=real_user(request),
                **_webhook_fields(form),
            )
        except ValidationError as exc:
            form.add_domain_error(exc)
        except DomainError as exc:
            flash.error(request, exc.message)
        else:
            flash.success(request, f"Webhook added. Events go to {webhook.url} from now on.")
            return redirect("mailing:webhook_list")
    webhooks = list(hooks.webhooks_for(request.account).prefetch_related("attempts_made"))
    context = {"webhooks": webhooks, "form": form, "nav": "webhooks"}
    return render(request, "mailing/webhooks.html", context)


def _own_webhook(request, pk: int) -> Webhook:
    try:
        return hooks.webhook_of(request.account, pk)
    except Webhook.DoesNotExist:
        raise Http404("No such webhook.") from None


@account_required
def webhook_edit(request, pk: int):
    webhook = _own_webhook(request, pk)
    initial = {
        "url": webhook.url, "description": webhook.description, "events": webhook.events,
        "include_subaccounts": webhook.include_subaccounts,
    }  # fmt: skip
    form = _webhook_form(request, request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            hooks.update_webhook(
                actor=request.user, account=request.account, webhook_id=pk, real_actor=real_user(request),
                **_webhook_fields(form),
            )  # fmt: skip
        except Webhook.DoesNotExist:
            raise Http404("No such webhook.") from None
        except ValidationError as exc:
            form.add_domain_error(exc)
        except DomainError as exc:
            flash.error(request, exc.message)
        else:
            flash.success(request, "Webhook saved.")
            return redirect("mailing:webhook_list")
    context = {"webhook": webhook, "form": form, "nav": "webhooks"}
    return render(request, "mailing/webhook_form.html", context)


WEBHOOK_ACTIONS = {"reset-key", "test", "delete"}


@require_POST
@account_required
def suppression_remove(request, pk: int):
    try:
        entry = suppression.remove_suppression(
            actor=request.user, account=request.account, suppression_id=pk, real_actor=real_user(request)
        )
    except Suppression.DoesNotExist:
        raise Http404("No such address on your lists.") from None
    except DomainError as exc:
        flash.error(request, exc.message)
        entry = suppression.entry_visible_to(request.account, pk)
        if request.htmx:  # the row as it stands; the flash comes out of band
            return render(request, "mailing/suppressions.html#suppression-row", {"entry": entry})
        return redirect(_suppressions_url(entry.account, request))
    flash.success(request, f"{entry.email} removed from the list: mail to it is accepted again.")
    if request.htmx:
        return HttpResponse("")  # the row goes; the flash comes out of band
    return redirect(_suppressions_url(entry.account, request))


def webhook_action(request, pk: int, action: str):
    """Reset the key, send a test batch, or delete; htmx gets the webhook's row back (none once deleted)."""
    if action not in WEBHOOK_ACTIONS:
        raise Http404("No such action.")
    arguments = {"actor": request.user, "account": request.account, "webhook_id": pk}
    try:
        if action == "reset-key":
            hooks.reset_webhook_key(real_actor=real_user(request), **arguments)
            flash.success(request, "New key made. Receivers must check signatures against it from now on.")
        elif action == "test":
            outcome = outbox.send_test_batch(**arguments)
            if outcome.ok:
                flash.success(request, f"Test batch accepted ({outcome.status}).")
            else:
                flash.error(request, f"Test batch failed: {outcome.error}")
        else:
            hooks.delete_webhook(real_actor=real_user(request), **arguments)
            flash.success(request, "Webhook deleted.")
            return HttpResponse("") if request.htmx else redirect("mailing:webhook_list")
    except Webhook.DoesNotExist:
        raise Http404("No such webhook.") from None
    except DomainError as exc:
        flash.error(request, exc.message)
    if request.htmx:
        webhook = _own_webhook(request, pk)
        return render(request, "mailing/webhooks.html#webhook-row", {"webhook": webhook})
    return redirect("mailing:webhook_list")
