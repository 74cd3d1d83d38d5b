from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views

admin.site.site_header = "Reseller Dashboard — operators"
admin.site.site_title = "Reseller Dashboard admin"

urlpatterns = [
    path("", account_views.home, name="home"),
    path("", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("hijack/", include("hijack.urls")),
    path("admin/", admin.site.urls),
]
