"""The product's emails about accounts: each has a text and an HTML part, and its links are absolute,
built from SITE_URL (they are sent from Celery, outside any request)."""

import re

import pytest
from django.urls import reverse

from accounts.lifecycle import close_subaccount, create_subaccount, renew_account, send_password_reset_email
from accounts.models import Account, Membership
from tests.factories import MasterFactory, MembershipFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db

SITE = "https://dash.example.com"


@pytest.fixture(autouse=True)
def _site_url(settings):
    settings.SITE_URL = SITE


def _links(text: str) -> list[str]:
    return re.findall(r"https?://[^\s\"<>]+", text)


def _assert_two_parts_with_link(message, link: str) -> None:
    ((html, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    assert message.body.strip() and "<p>" not in message.body
    assert link in message.body
    assert f'href="{link}"' in html
    assert html.lstrip().startswith("<!doctype html>")
    for url in _links(message.body) + _links(html):
        assert url.startswith(SITE + "/"), url


def test_the_invite_email(mailoutbox, django_capture_on_commit_callbacks):
    master = MasterFactory(name="Northwind")
    with django_capture_on_commit_callbacks(execute=True):
        create_subaccount(
            actor=MembershipFactory(account=master).user,
            master=master,
            name="Acme Shop",
            contact_email="owner@acme.test",
            monthly_limit=10,
        )
    (message,) = mailoutbox
    (link,) = set(_links(message.body))
    assert link.startswith(SITE + "/invite/")
    _assert_two_parts_with_link(message, link)
    assert message.subject == "Northwind invited you to send email with Reseller Dashboard"


def test_the_password_reset_email(mailoutbox, django_capture_on_commit_callbacks):
    sub, owner = subaccount_with_owner()
    with django_capture_on_commit_callbacks(execute=True):
        send_password_reset_email(
            actor=MembershipFactory(account=sub.parent).user, master=sub.parent, subaccount_id=sub.pk
        )
    (message,) = mailoutbox
    assert message.to == [owner.email]
    (link,) = set(_links(message.body))
    assert link.startswith(SITE + "/accounts/password/reset/key/")
    _assert_two_parts_with_link(message, link)


def test_the_closed_email(mailoutbox, django_capture_on_commit_callbacks):
    sub, owner = subaccount_with_owner(name="Acme Shop")
    with django_capture_on_commit_callbacks(execute=True):
        close_subaccount(
            actor=MembershipFactory(account=sub.parent).user, master=sub.parent, subaccount_id=sub.pk
        )
    (message,) = mailoutbox
    assert message.to == [owner.email]
    _assert_two_parts_with_link(message, SITE + reverse("account_login"))
    assert sub.parent.name in message.body


def test_the_closed_email_is_not_sent_to_an_owner_who_never_accepted(
    mailoutbox, django_capture_on_commit_callbacks
):
    sub, _owner = subaccount_with_owner(accepted=False)
    with django_capture_on_commit_callbacks(execute=True):
        close_subaccount(
            actor=MembershipFactory(account=sub.parent).user, master=sub.parent, subaccount_id=sub.pk
        )
    assert mailoutbox == []


def test_the_renewed_email(mailoutbox, django_capture_on_commit_callbacks):
    master = MasterFactory()
    admin = MembershipFactory(account=master, role=Membership.Role.ADMIN).user
    _sub, owner = subaccount_with_owner(master, name="Acme Shop", status=Account.Status.CLOSED)
    with django_capture_on_commit_callbacks(execute=True):
        renew_account(actor=owner)
    (message,) = mailoutbox
    assert message.to == [admin.email]
    assert message.subject == "Acme Shop renewed as a standalone account"
    _assert_two_parts_with_link(message, SITE + reverse("accounts:activity"))


def test_links_follow_the_request_in_development_and_site_url_in_production(settings):
    from accounts.emails import request_origin, site_url

    settings.SITE_URL = "https://mail.example.com"
    token = request_origin.set("http://127.0.0.1:8001")
    try:
        settings.PRODUCTION = False
        assert site_url() == "http://127.0.0.1:8001"
        settings.PRODUCTION = True  # a Host header is the client's: never the links in production
        assert site_url() == "https://mail.example.com"
    finally:
        request_origin.reset(token)
    settings.PRODUCTION = False
    assert site_url() == "https://mail.example.com"  # outside a request (Celery, commands)
