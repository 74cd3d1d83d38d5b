"""The whole story, as an agency and its customer live it, in two browsers."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Account, Membership
from tests.e2e.conftest import log_in
from tests.factories import PASSWORD, MasterFactory, MembershipFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _row(page, name: str):
    return page.locator("tr", has=page.get_by_role("link", name=name, exact=True))


def _row_action(page, name: str, label: str):
    row = _row(page, name)
    row.get_by_role("button", name=f"More actions for {name}").click()
    row.get_by_role("button", name=label).click()


def test_add_invite_accept_manage_close_renew(browser, page, live_server, mailoutbox, shot):
    master = MasterFactory(name="Northwind Digital")
    owner = MembershipFactory(
        account=master, role=Membership.Role.OWNER, user__email="owner@northwind.test"
    ).user
    log_in(page, live_server.url, owner.email, PASSWORD)

    # the master adds a subaccount (first with an empty form: errors beside the fields)
    page.get_by_role("button", name="Add subaccount").first.click()
    shot(page, "add-subaccount")
    page.get_by_role("button", name="Add subaccount").click()
    expect(page.get_by_text("This field is required.").first).to_be_visible()
    shot(page, "add-subaccount-errors")
    page.get_by_label("Name").fill("Acme Shop")
    page.get_by_label("Contact email").fill("owner@acme.test")
    page.get_by_label("Monthly email limit").fill("5000")
    page.get_by_role("button", name="Add subaccount").click()
    expect(page.get_by_text("An invite is on its way to owner@acme.test")).to_be_visible()
    expect(_row(page, "Acme Shop").get_by_text("Invited")).to_be_visible()

    # the customer opens the invite in their own browser and sets a password
    invite = next(m for m in mailoutbox if m.to == ["owner@acme.test"])
    link = re.search(r"http://\S+/invite/\S+/", invite.body).group(0)
    customer = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    customer.goto(link)
    expect(customer.get_by_role("heading", name="Welcome to Acme Shop")).to_be_visible()
    shot(customer, "invite-accept")
    customer.get_by_label("Choose a password").fill("a-long-secret-2026")
    customer.get_by_label("Type it again").fill("a-long-secret-2026")
    customer.get_by_role("button", name="Set password and log in").click()
    expect(customer.get_by_role("heading", name="Acme Shop")).to_be_visible()
    expect(customer.get_by_text("managed by Northwind Digital")).to_be_visible()
    customer.goto(link)
    expect(customer.get_by_role("heading", name="This invitation has already been used")).to_be_visible()
    shot(customer, "invite-invalid")

    # back as the master: edit the quota
    page.goto(f"{live_server.url}/subaccounts/")
    row = _row(page, "Acme Shop")
    row.get_by_role("button", name="More actions for Acme Shop").click()
    row.get_by_role("link", name="Edit details").click()
    page.get_by_label("Monthly email limit").fill("8000")
    shot(page, "edit-subaccount")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("8,000 emails")).to_be_visible()
    shot(page, "subaccount-detail")

    # archiving is one click, swapped in place by htmx (no page load)
    page.goto(f"{live_server.url}/subaccounts/")
    page.evaluate("window.__noReload = true")
    _row_action(page, "Acme Shop", "Email archiving: turn on")
    expect(page.get_by_text("Acme Shop: email archiving is on.")).to_be_visible()
    assert page.evaluate("window.__noReload") is True
    assert Account.objects.get(name="Acme Shop").archiving_enabled

    _row_action(page, "Acme Shop", "Pause sending")
    expect(_row(page, "Acme Shop").get_by_text("Paused")).to_be_visible()
    _row_action(page, "Acme Shop", "Resume sending")
    expect(_row(page, "Acme Shop").get_by_text("Active", exact=True)).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    _row_action(page, "Acme Shop", "Close subaccount")
    expect(_row(page, "Acme Shop").get_by_text("Closed")).to_be_visible()
    assert page.evaluate("window.__noReload") is True

    # the customer now sees only the closed page, and renews
    customer.goto(f"{live_server.url}/")
    expect(customer.get_by_role("heading", name="This account is closed")).to_be_visible()
    shot(customer, "closed")
    customer.get_by_role("button", name="Renew My Account").click()
    expect(customer.get_by_text("is now your own account")).to_be_visible()
    expect(customer.get_by_text("managed by")).to_have_count(0)

    # and the agency no longer has it
    page.goto(f"{live_server.url}/subaccounts/")
    expect(page.get_by_role("link", name="Acme Shop", exact=True)).to_have_count(0)
