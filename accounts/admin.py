from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import Account, AuditEvent, Invitation, LimitAlert, Membership, Usage, User


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


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "public_id",
        "kind",
        "status",
        "parent",
        "monthly_limit",
        "hourly_limit",
        "archiving_enabled",
        "created_at",
    ]
    list_filter = ["kind", "status", "archiving_enabled"]
    search_fields = ["name", "public_id", "contact_email", "parent__name"]
    list_select_related = ["parent"]
    autocomplete_fields = ["parent", "former_parent"]
    readonly_fields = ["created_at", "updated_at", "paused_at", "closed_at", "renewed_at"]
    date_hierarchy = "created_at"
    inlines = [MembershipInline]


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
