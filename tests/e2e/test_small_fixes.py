"""Small things a new user tripped over: domain form errors, sharing, Verify, stale flashes, CSP,
the forgotten-password link, the favicon and the links in emails."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Membership
from mailing.keys import create_api_key
from mailing.models import SenderDomain
from tests.e2e.conftest import DEMO_PASSWORD, PEOPLE, log_in
from tests.factories import PASSWORD, MasterFactory, MembershipFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_domain_error_sits_below_the_input_and_keeps_what_was_typed(page, live_server, demo):
    log_in(page, live_server.url, PEOPLE["agency owner"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/domains/")
    field = page.get_by_label("Add a domain")
    field.fill("https://not a domain")
    page.get_by_role("button", name="Add domain").click()
    error = page.get_by_text("Enter a domain name such as mail.example.com")
    expect(error).to_be_visible()
    expect(field).to_have_value("https://not a domain")
    assert field.bounding_box()["y"] + field.bounding_box()["height"] <= error.bounding_box()["y"]


def test_sharing_lists_every_subaccount_by_its_whole_name(page, live_server, demo):
    log_in(page, live_server.url, PEOPLE["agency owner"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/domains/")
    share = page.locator("form", has=page.get_by_role("button", name="Save sharing")).first
    for name in ("Acme Shop", "Evergreen Books", "Cobalt Clinic"):
        box = share.get_by_role("checkbox", name=name, exact=True)
        expect(box).to_be_visible()
        label = box.locator("xpath=..")
        assert label.evaluate("l => l.scrollWidth <= l.clientWidth + 1"), f"{name} is cut"
    share.get_by_role("checkbox", name="Evergreen Books", exact=True).check()
    share.get_by_role("checkbox", name="all subaccounts, now and future").uncheck()
    share.get_by_role("button", name="Save sharing").click()
    expect(page.get_by_text("Sharing saved.")).to_be_visible()
    domain = SenderDomain.objects.get(account=demo["master"])
    assert [a.name for a in domain.shared_with.all()] == ["Evergreen Books"]


def test_verify_is_offered_only_until_a_domain_is_verified_and_no_flash_goes_stale(
    page, live_server, settings
):
    settings.DNS_RESOLVER_NAMESERVERS = ["127.0.0.1"]
    settings.DNS_RESOLVER_PORT = 9  # nothing answers: the lookup fails at once
    settings.DNS_RESOLVER_TIMEOUT = 1.0
    master = MasterFactory(name="Northwind Digital")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    SenderDomain.objects.create(account=master, domain="verified.example", token="t",
                                verified_at="2026-01-01T00:00:00Z")  # fmt: skip
    log_in(page, live_server.url, owner.email, PASSWORD)
    page.goto(f"{live_server.url}/domains/")
    page.get_by_label("Add a domain").fill("new.example")
    page.get_by_role("button", name="Add domain").click()
    added = page.get_by_text("new.example added.")
    expect(added).to_be_visible()
    verified_row = page.locator(
        "section.domain-card", has=page.get_by_role("heading", name="verified.example")
    )
    expect(verified_row.get_by_text("Verified", exact=True)).to_be_visible()
    expect(verified_row.get_by_role("button", name="Verify")).to_have_count(0)
    new_row = page.locator("section.domain-card", has=page.get_by_role("heading", name="new.example"))
    new_row.get_by_role("button", name="Verify").click()
    expect(new_row.locator(".errortext").first).to_be_visible(
        timeout=15_000
    )  # four lookups, each may wait out its timeout
    expect(added).to_have_count(0)  # the flash about adding is gone once something else happened


def test_removing_a_domain_and_revoking_a_key_break_no_csp_rule(page, live_server, console_errors):
    master = MasterFactory(name="Northwind Digital")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    SenderDomain.objects.create(account=master, domain="old.example", token="t")
    SenderDomain.objects.create(account=master, domain="keep.example", token="t")
    create_api_key(actor=owner, account=master, label="Old CRM")
    log_in(page, live_server.url, owner.email, PASSWORD)
    page.goto(f"{live_server.url}/domains/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("section.domain-card", has_text="old.example").get_by_role("button", name="Remove").click()
    expect(page.get_by_text("old.example removed")).to_be_visible()
    expect(page.locator("section.domain-card", has_text="old.example")).to_have_count(0)
    expect(page.locator("section.domain-card", has_text="keep.example")).to_have_count(1)
    page.goto(f"{live_server.url}/api-keys/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator(".badge", has_text="Revoked")).to_be_visible()
    page.wait_for_timeout(200)
    assert console_errors == []


def test_the_forgotten_password_link_stays_when_login_fails(page, live_server):
    user = MembershipFactory(role=Membership.Role.OWNER).user
    page.goto(f"{live_server.url}/accounts/login/")
    expect(page.get_by_role("link", name="Forgot your password?")).to_be_visible()
    log_in(page, live_server.url, user.email, "wrong-password-0")
    expect(page.get_by_text("not correct")).to_be_visible()
    expect(page.get_by_role("link", name="Forgot your password?")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_value(user.email)
    page.get_by_label("Password").fill("")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("This field is required.")).to_be_visible()
    expect(page.get_by_role("link", name="Forgot your password?")).to_be_visible()


def test_there_is_a_favicon(page, live_server):
    response = page.request.get(f"{live_server.url}/favicon.ico")
    assert response.status == 200
    assert response.headers["content-type"].startswith("image/")


def test_email_links_follow_the_address_the_site_is_visited_at(page, live_server, settings, mailoutbox):
    settings.SITE_URL = "http://127.0.0.1:8000"  # the default, which this test server does not listen on
    master = MasterFactory(name="Northwind Digital")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    log_in(page, live_server.url, owner.email, PASSWORD)
    page.goto(f"{live_server.url}/subaccounts/add/")
    page.get_by_label("Name").fill("Acme Shop")
    page.get_by_label("Contact email").fill("owner@acme.test")
    page.get_by_label("Monthly email limit").fill("5000")
    page.get_by_role("button", name="Add subaccount").click()
    expect(page.get_by_text("An invite is on its way to owner@acme.test")).to_be_visible()
    invite = next(m for m in mailoutbox if m.to == ["owner@acme.test"])
    link = re.search(r"http://\S+/invite/\S+/", invite.body).group(0)
    assert link.startswith(live_server.url + "/"), link
    page.goto(link)
    expect(page.get_by_role("heading", name="Welcome to Acme Shop")).to_be_visible()
