from django.urls import path

from . import views

app_name = "mailing"

urlpatterns = [
    path("api-keys/", views.api_keys, name="api_keys"),
    path("api-keys/<int:pk>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("messages/", views.message_list, name="message_list"),
    path("messages/recent/", views.recent_messages, name="recent_messages"),
    path("messages/export.csv", views.message_export, name="message_export"),
    path("exports/", views.export_start, name="export_start"),
    path("exports/<int:pk>/", views.export_job, name="export_job"),
    path("exports/<int:pk>/download/", views.export_download, name="export_download"),
    path("subaccounts/<int:pk>/sending/", views.subaccount_sending, name="subaccount_sending"),
    path("messages/<str:public_id>/", views.message_detail, name="message_detail"),
    path("messages/<str:public_id>/cancel/", views.message_cancel, name="message_cancel"),
    path("domains/", views.domain_list, name="domain_list"),
    path("domains/<int:pk>/verify/", views.domain_verify, name="domain_verify"),
    path("domains/<int:pk>/share/", views.domain_share, name="domain_share"),
    path("domains/<int:pk>/rotate-dkim/", views.domain_rotate_dkim, name="domain_rotate_dkim"),
    path("domains/<int:pk>/remove/", views.domain_remove, name="domain_remove"),
    path("suppressions/", views.suppression_list, name="suppression_list"),
    path("suppressions/export.csv", views.suppression_csv, name="suppression_csv"),
    path("suppressions/<int:pk>/remove/", views.suppression_remove, name="suppression_remove"),
    path("archive/", views.archive_list, name="archive_list"),
    path("archive/<int:pk>/", views.archive_detail, name="archive_detail"),
    path("archive/<int:pk>/body/", views.archive_body, name="archive_body"),
    path("templates/", views.template_list, name="template_list"),
    path("templates/add/", views.template_create, name="template_create"),
    path("template-preview/", views.template_live_preview, name="template_live_preview"),
    path("templates/<str:slug>/", views.template_edit, name="template_edit"),
    path("templates/<str:slug>/preview/", views.template_preview, name="template_preview"),
    path("templates/<str:slug>/<str:action>/", views.template_action, name="template_action"),
    path("webhooks/", views.webhook_list, name="webhook_list"),
    path("webhooks/<int:pk>/", views.webhook_edit, name="webhook_edit"),
    path("webhooks/<int:pk>/<str:action>/", views.webhook_action, name="webhook_action"),
]
