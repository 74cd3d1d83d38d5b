from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("subaccounts/", views.subaccount_list, name="subaccount_list"),
    path("subaccounts/add/", views.subaccount_create, name="subaccount_create"),
    path("subaccounts/bulk/", views.subaccount_bulk, name="subaccount_bulk"),
    path("subaccounts/bulk/<int:pk>/", views.bulk_job, name="bulk_job"),
    path("subaccounts/<int:pk>/", views.subaccount_detail, name="subaccount_detail"),
    path("subaccounts/<int:pk>/edit/", views.subaccount_edit, name="subaccount_edit"),
    path("subaccounts/<int:pk>/delete/", views.subaccount_delete, name="subaccount_delete"),
    path("subaccounts/<int:pk>/log-in-as/", views.log_in_as, name="log_in_as"),
    path("subaccounts/<int:pk>/activity/", views.activity, name="subaccount_activity"),
    *[
        path(
            f"subaccounts/<int:pk>/{action.replace('_', '-')}/",
            views.subaccount_action,
            {"action": action},
            name=f"subaccount_{action}",
        )
        for action in views.ROW_ACTIONS
    ],
    path("subaccounts/<int:pk>/alerts/", views.alert_settings, name="subaccount_alerts"),
    path("subaccounts/<int:pk>/auto-pause/", views.auto_pause_settings, name="subaccount_auto_pause"),
    path("overview/", views.overview, name="overview"),
    *[
        path(f"overview/{what}.csv", views.overview_csv, {"what": what}, name=f"overview_csv_{what}")
        for what in views.OVERVIEW_EXPORTS
    ],
    path("billing/", views.billing_page, name="billing"),
    path("billing/export.csv", views.billing_csv, name="billing_csv"),
    path("alerts/", views.alert_settings, name="alert_settings"),
    path("auto-pause/", views.auto_pause_settings, name="auto_pause"),
    path("activity/", views.activity, name="activity"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("closed/", views.closed, name="closed"),
    path("renew/", views.renew, name="renew"),
    path("invite/<str:token>/", views.invite_accept, name="invite_accept"),
    path("brand/", views.brand_settings, name="brand"),
    path("brand/<int:brand_id>/logo-<str:digest>.<str:ext>", views.brand_logo, name="brand_logo"),
    path("brand/<int:brand_id>/theme-<str:version>.css", views.brand_theme, name="brand_theme"),
    path("team/", views.team_page, name="team"),
    path("team/<int:membership_id>/role/", views.team_member_role, name="team_member_role"),
    path("team/<int:membership_id>/remove/", views.team_member_remove, name="team_member_remove"),
    path("team/<int:membership_id>/resend-invite/", views.team_member_resend, name="team_member_resend"),
    path("settings/", views.profile, name="profile"),
]
