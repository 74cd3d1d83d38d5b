"""A receiver built on django-anymail, as an application on Mandrill would mount it."""

from anymail.webhooks.mandrill import MandrillCombinedWebhookView
from django.urls import path

urlpatterns = [path("anymail/mandrill/", MandrillCombinedWebhookView.as_view())]
