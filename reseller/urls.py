from django.contrib import admin
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path, re_path

from accounts import views as account_views
from mailing import tracking_views
from mailing.api import endpoint as api
from reseller import health, metrics

admin.site.site_header = "Reseller Dashboard — operators"
admin.site.site_title = "Reseller Dashboard admin"


def favicon(request):
    """Browsers ask for /favicon.ico on pages that name no icon (the admin's, error pages)."""
    return redirect(static("favicon.ico"), permanent=True)


urlpatterns = [
    path("favicon.ico", favicon),
    # For load balancers and orchestrators: no login, no session (reseller/health.py).
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # For Prometheus, behind a bearer token (reseller/metrics.py).
    path("metrics", metrics.scrape, name="metrics"),
    # In the mail itself, for recipients: no login, no CSRF, signed tokens (mailing/tracking_views.py).
    path("t/", include((tracking_views.urlpatterns, "tracking"))),
    path("", account_views.home, name="home"),
    path("", include("accounts.urls")),
    path("", include("mailing.urls")),
    path("accounts/", include("allauth.urls")),
    path("hijack/", include("hijack.urls")),
    path("admin/", admin.site.urls),
    # Mandrill's wire format: any 1.x version, with or without an output-format suffix.
    re_path(
        r"^api/1\.\d+/(?P<group>[a-z0-9_-]+)/(?P<call>[a-z0-9_-]+?)(?:\.(?P<output_format>[a-z]+))?/?$",
        api.endpoint,
    ),
    re_path(r"^api/(?P<path>.*)$", api.not_a_call),
]
