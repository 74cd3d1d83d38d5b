"""Every htmx action answers with a fragment, a refusal that says why, or a whole-page redirect: never a
page inside a row. And nobody sees a button they may not use."""

import pytest
from playwright.sync_api import expect

from accounts.models import Membership
from mailing.keys import create_api_key
from mailing.models import SenderDomain
from tests.e2e.conftest import DEMO_PASSWORD, PEOPLE, log_in
from tests.factories import PASSWORD, MasterFactory, MembershipFactory, subaccount_with_owner

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _one_page(page) -> None:
    """Exactly one page: one top bar, one footer, one h1, no document nested in another."""
    expect(page.locator("header.topbar")).to_have_count(1)
    expect(page.locator("footer")).to_have_count(1)
    expect(page.locator("h1")).to_have_count(1)


def test_a_viewer_sees_no_button_they_cannot_use(page, live_server, demo):
    log_in(page, live_server.url, PEOPLE["viewer"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/subaccounts/")
    expect(page.get_by_role("link", name="Acme Shop", exact=True)).to_be_visible()
    for name in ("Add subaccount", "Apply to selected", "Log in as", "Actions"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
        expect(page.get_by_role("link", name=name)).to_have_count(0)
    page.goto(f"{live_server.url}/domains/")
    expect(page.get_by_role("heading", name="Sending domains")).to_be_visible()
    for name in ("Add domain", "Verify", "Remove", "Save sharing"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    expect(page.get_by_role("checkbox")).to_have_count(0)
    page.goto(f"{live_server.url}/api-keys/")
    for name in ("Create API key", "Revoke"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)


@pytest.fixture
def owner_on_stale_pages(page, live_server):
    """An agency owner with pages open, whose role is then lowered to viewer behind their back."""
    master = MasterFactory(name="Northwind Digital")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    subaccount_with_owner(master, name="Acme Shop")
    SenderDomain.objects.create(account=master, domain="northwind.example", token="t")
    create_api_key(actor=owner, account=master, label="CRM")
    log_in(page, live_server.url, owner.email, PASSWORD)

    def open_then_demote(path: str) -> None:
        Membership.objects.filter(user=owner).update(role=Membership.Role.OWNER)
        page.goto(f"{live_server.url}{path}")
        Membership.objects.filter(user=owner).update(role=Membership.Role.VIEWER)

    return open_then_demote


def test_refusals_of_htmx_actions_are_fragments_that_say_why(page, live_server, owner_on_stale_pages):
    open_then_demote = owner_on_stale_pages
    open_then_demote("/domains/")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("Only an owner or admin of Northwind Digital can do that.")).to_be_visible()
    _one_page(page)
    expect(page.get_by_role("heading", name="northwind.example")).to_be_visible()

    open_then_demote("/domains/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove").click()
    expect(page.get_by_text("Only an owner or admin of Northwind Digital can do that.")).to_be_visible()
    _one_page(page)
    assert SenderDomain.objects.filter(domain="northwind.example").exists()


def test_refused_row_actions_and_revokes_stay_one_page(page, live_server, owner_on_stale_pages):
    open_then_demote = owner_on_stale_pages
    open_then_demote("/api-keys/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("Only an owner or admin of Northwind Digital can do that.")).to_be_visible()
    _one_page(page)

    open_then_demote("/subaccounts/")
    row = page.locator("tr", has=page.get_by_role("link", name="Acme Shop", exact=True))
    row.get_by_role("button", name="More actions for Acme Shop").click()
    row.get_by_role("button", name="Pause sending").click()
    expect(page.get_by_text("Only an owner or admin of Northwind Digital can do that.")).to_be_visible()
    _one_page(page)


def test_an_htmx_action_after_the_session_ended_goes_to_the_login_page(
    page, live_server, owner_on_stale_pages
):
    page.goto(f"{live_server.url}/domains/")
    page.context.clear_cookies(name="sessionid")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/domains/")
    _one_page(page)
