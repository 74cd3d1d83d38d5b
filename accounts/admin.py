from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.response import TemplateResponse

from . import errors, lifecycle
from .models import Account, AuditEvent, Invitation, LimitAlert, Membership, Usage, User
from .permissions import Operator
from .validation import clean_thresholds


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "account_of", "is_active", "is_staff", "last_login", "date_joined"]
    list_filter = ["is_active", "is_staff", "is_superuser"]
    search_fields = ["email", "full_name"]
    list_select_related = ["membership__account"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["full_name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]

    @admin.display(description="Account")
    def account_of(self, user: User) -> str:
        membership = getattr(user, "membership", None)
        return str(membership.account) if membership else "—"


class AccountAdminForm(forms.ModelForm):
    """The thresholds as people write them ("80, 95"), not as JSON (which showed an empty one as null)."""

    alert_thresholds = forms.CharField(
        required=False,
        label="Alert thresholds",
        help_text="Percentages of the monthly limit, comma-separated (e.g. 80, 95); 100% always alerts. "
        "Empty: on a master, the default (80, 95); on a subaccount, its master's.",
    )

    class Meta:
        model = Account
        fields = ["kind", "parent", "public_id", "name", "notes", "contact_email", "monthly_limit",
                  "hourly_limit", "archiving_enabled", "alert_thresholds", "former_parent"]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.alert_thresholds:
            self.initial["alert_thresholds"] = ", ".join(map(str, self.instance.alert_thresholds))

    def clean_alert_thresholds(self) -> list[int] | None:
        value = self.cleaned_data["alert_thresholds"].strip()
        if not value:
            return None
        try:
            return clean_thresholds(value)
        except errors.ValidationError as exc:
            raise forms.ValidationError(exc.message) from None


def _lifecycle_action(name: str, service, verb: str, done: str, consequence: str):
    """An admin action that changes subaccounts' status through their lifecycle service, as an operator
    (accounts.permissions.Operator): the same locks, state checks, held-mail release, emails and audit
    rows as the agency's own buttons. A confirmation page comes first."""

    def action(modeladmin, request, queryset):
        accounts = list(queryset.select_related("parent").order_by("name"))
        if request.POST.get("confirmed") != "yes":
            return TemplateResponse(
                request,
                "admin/accounts/account/lifecycle_confirm.html",
                {
                    **modeladmin.admin_site.each_context(request),
                    "title": f"{verb} {len(accounts)} account{'s' if len(accounts) != 1 else ''}?",
                    "accounts": accounts,
                    "action_name": name,
                    "verb": verb,
                    "consequence": consequence,
                    "opts": modeladmin.model._meta,
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                },
            )
        operator = Operator(request.user)
        changed = []
        for account in accounts:
            if not account.is_subaccount:
                modeladmin.message_user(
                    request,
                    f"{account}: only a subaccount has this lifecycle; left as it is.",
                    messages.WARNING,
                )
                continue
            try:
                service(actor=operator, master=account.parent, subaccount_id=account.pk)
            except Account.DoesNotExist:
                modeladmin.message_user(request, f"{account}: no longer exists.", messages.WARNING)
            except errors.DomainError as exc:
                modeladmin.message_user(request, f"{account}: {exc.message}", messages.ERROR)
            else:
                changed.append(account.name)
        if changed:
            modeladmin.message_user(request, f"{done}: {', '.join(changed)}.", messages.SUCCESS)
        return None

    action.__name__ = name
    return admin.action(description=f"{verb} selected subaccounts…", permissions=["change"])(action)


LIFECYCLE_ACTIONS = [
    _lifecycle_action("pause_selected", lifecycle.pause_subaccount, "Pause", "Paused",
                      "New mail they send is held (at most 72 hours) until they are resumed."),
    _lifecycle_action("resume_selected", lifecycle.resume_subaccount, "Resume", "Resumed",
                      "They send again, and mail held while paused goes out."),
    _lifecycle_action("close_selected", lifecycle.close_subaccount, "Close", "Closed",
                      "They cannot send; each owner is told by email and may renew on their own."),
    _lifecycle_action("reopen_selected", lifecycle.reopen_subaccount, "Reopen", "Reopened",
                      "They can send again."),
]  # fmt: skip


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    form = AccountAdminForm
    list_display = ["name", "public_id", "kind", "status", "agency", "monthly", "hourly"]
    list_filter = ["kind", "status", "archiving_enabled"]
    search_fields = ["name", "public_id", "contact_email", "parent__name"]
    list_select_related = ["parent"]
    autocomplete_fields = ["parent", "former_parent"]
    # The status changes only through accounts/lifecycle.py (role and state checks, held mail released,
    # emails, the audit trail): read-only here, and changed by the actions, which call those services
    # as an operator.
    actions = LIFECYCLE_ACTIONS
    readonly_fields = ["lifecycle_status", "created_at", "updated_at", "paused_at", "closed_at", "renewed_at"]
    exclude = ["status"]
    date_hierarchy = "created_at"
    inlines = [MembershipInline]

    @admin.display(description="Status")
    def lifecycle_status(self, account: Account) -> str:
        if account.pk is None:
            return "Active (new accounts start active)"
        return (
            f"{account.get_status_display()}. To change it, tick the subaccount in the list and pick "
            "Pause, Resume, Close or Reopen among the actions: they hold or release mail, send the emails "
            "and write the audit trail, as the agency's own buttons on its dashboard do."
        )

    @admin.display(description="Agency", ordering="parent__name")
    def agency(self, account: Account) -> str:
        return account.parent.name if account.parent_id else "—"

    @admin.display(description="Monthly limit", ordering="monthly_limit")
    def monthly(self, account: Account) -> str:
        return intcomma(account.monthly_limit)

    @admin.display(description="Hourly limit", ordering="hourly_limit")
    def hourly(self, account: Account) -> str:
        return intcomma(account.hourly_limit) if account.hourly_limit else "—"


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "account", "role", "created_at"]
    list_filter = ["role", "account__kind"]
    search_fields = ["user__email", "account__name", "account__public_id"]
    list_select_related = ["user", "account"]
    autocomplete_fields = ["user", "account"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "account", "created_at", "expires_at", "accepted_at", "replaced_at"]
    list_filter = ["accepted_at", "replaced_at"]
    search_fields = ["email", "account__name"]
    list_select_related = ["account"]
    readonly_fields = [
        "account",
        "user",
        "email",
        "token_hash",
        "created_at",
        "expires_at",
        "accepted_at",
        "replaced_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False  # an invite's token exists only in the email; make one from the dashboard


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "action", "account_label", "actor_label", "real_actor_label", "ip_address"]
    list_filter = ["action"]
    search_fields = ["action", "account_label", "actor_label", "real_actor_label"]
    date_hierarchy = "created_at"


@admin.register(Usage)
class UsageAdmin(ReadOnlyAdmin):
    list_display = ["account_label", "billed_to", "window", "start", "sent"]
    list_filter = ["window"]
    search_fields = ["account_label", "billed_to__name"]
    list_select_related = ["billed_to"]
    date_hierarchy = "start"


@admin.register(LimitAlert)
class LimitAlertAdmin(ReadOnlyAdmin):
    list_display = ["account", "month", "threshold", "usage_at_alert", "limit_at_alert", "created_at"]
    list_filter = ["threshold"]
    search_fields = ["account__name", "account__public_id"]
    list_select_related = ["account"]
