from django.contrib import admin

from accounts.admin import ReadOnlyAdmin

from .models import ApiKey, ArchivedMessage, ExportJob, Message, SenderDomain, Webhook, WebhookAttempt


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["label", "prefix", "account", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["label", "prefix", "account__name", "account__public_id"]
    list_select_related = ["account"]
    fields = ["account", "label", "prefix", "created_at", "last_used_at", "revoked_at"]  # never the hash
    readonly_fields = ["account", "prefix", "created_at", "last_used_at"]

    def has_add_permission(self, request) -> bool:
        return False  # a key's secret must be shown to its owner once: make keys from the dashboard


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "account", "to_email", "subject", "status", "reject_reason", "attempts"]
    list_filter = ["status", "reject_reason"]
    search_fields = ["public_id", "to_email", "from_email", "subject", "account__public_id"]
    list_select_related = ["account"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # no COUNT(*) over millions of rows
    readonly_fields = ["text", "html", "headers"]  # the body, read through its stored content


@admin.register(ArchivedMessage)
class ArchivedMessageAdmin(ReadOnlyAdmin):
    list_display = ["sent_at", "account", "to_email", "subject"]
    search_fields = ["to_email", "from_email", "subject"]
    list_select_related = ["account"]
    show_full_result_count = False
    readonly_fields = ["text", "html", "headers"]


@admin.register(ExportJob)
class ExportJobAdmin(ReadOnlyAdmin):
    """Operators see why an export failed or waits; the files themselves stay behind the tenant's view."""

    list_display = ["created_at", "account", "kind", "state", "written", "total", "error"]
    list_filter = ["state", "kind"]
    list_select_related = ["account"]


@admin.register(SenderDomain)
class SenderDomainAdmin(admin.ModelAdmin):
    list_display = ["domain", "account", "verified_at", "share_with_all_subaccounts", "last_checked_at"]
    list_filter = ["verified_at", "share_with_all_subaccounts"]
    search_fields = ["domain", "account__name"]
    list_select_related = ["account"]
    readonly_fields = ["token", "created_at", "last_checked_at", "last_error"]
    filter_horizontal = ["shared_with"]


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ["created_at", "kind", "events", "status_code", "error", "duration_ms"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    ordering = ["-created_at"]


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    """Operators see why a webhook fails and may turn one back on (clear `disabled_at`); the key and the
    cursors are delivery's, not to be edited by hand."""

    list_display = [
        "url",
        "account",
        "events_sent",
        "last_sent_at",
        "failing_since",
        "disabled_at",
        "last_error",
    ]
    list_filter = ["disabled_at", "include_subaccounts"]
    search_fields = ["url", "account__name", "account__public_id"]
    list_select_related = ["account"]
    readonly_fields = [
        "account", "auth_key", "created_at", "last_sent_at", "batches_sent", "events_sent", "last_error",
        "message_cursor", "account_cursor", "attempts", "claimed_until",
    ]  # fmt: skip
    inlines = [WebhookAttemptInline]

    def has_add_permission(self, request) -> bool:
        return False  # added through the dashboard or the API, which check the URL first
