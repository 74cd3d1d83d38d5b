import pytest
from playwright.sync_api import expect

from accounts.models import Membership
from tests.e2e.conftest import log_in
from tests.factories import PASSWORD, MasterFactory, MembershipFactory, subaccount_with_owner

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_master_logs_in_sees_the_list_and_logs_out(page, live_server, shot):
    master = MasterFactory(name="Northwind Digital")
    owner = MembershipFactory(
        account=master, role=Membership.Role.OWNER, user__email="owner@northwind.test"
    ).user
    page.goto(f"{live_server.url}/accounts/login/")
    shot(page, "login")
    # an empty agency sees what to do first
    log_in(page, live_server.url, owner.email, PASSWORD)
    expect(page.get_by_role("heading", name="No subaccounts yet")).to_be_visible()
    shot(page, "subaccount-list-empty")
    for name in ("Acme Shop", "Blue Bakery", "Cobalt Clinic"):
        subaccount_with_owner(master, name=name)
    page.reload()
    expect(page.get_by_role("link", name="Acme Shop")).to_be_visible()
    expect(page.get_by_role("link", name="Cobalt Clinic")).to_be_visible()
    shot(page, "subaccount-list")
    page.locator("header details.dropdown summary").click()
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    page.goto(f"{live_server.url}/subaccounts/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_a_wrong_password_says_so(page, live_server):
    owner = MembershipFactory(role=Membership.Role.OWNER).user
    log_in(page, live_server.url, owner.email, "not-the-password")
    expect(page.get_by_text("not correct")).to_be_visible()


def test_password_reset_page(page, live_server, shot):
    page.goto(f"{live_server.url}/accounts/password/reset/")
    expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    shot(page, "password-reset")
