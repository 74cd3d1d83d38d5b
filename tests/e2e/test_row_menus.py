"""A row's Actions menu shows whole, over the table's edges, and closes with Escape."""

import pytest
from playwright.sync_api import expect

from accounts.models import Membership
from tests.e2e.conftest import hit_test, log_in
from tests.factories import PASSWORD, MasterFactory, MembershipFactory, subaccount_with_owner

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_first_and_last_rows_menus_are_whole_and_escape_closes_them(page, live_server):
    master = MasterFactory(name="Northwind Digital")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    names = [f"Customer {letter}" for letter in "ABC"]
    for name in names:
        subaccount_with_owner(master, name=name)
    page.set_viewport_size({"width": 1280, "height": 1400})  # the whole list fits: no page scrolling
    log_in(page, live_server.url, owner.email, PASSWORD)
    page.goto(f"{live_server.url}/subaccounts/")
    for name in (names[0], names[-1]):
        row = page.locator("tr", has=page.get_by_role("link", name=name, exact=True))
        row.get_by_role("button", name=f"More actions for {name}").click()
        for item in ("Edit details", "Activity", "Delete"):
            link = row.get_by_role("link", name=item, exact=True)
            expect(link).to_be_visible()
            assert hit_test(link), f"{item} of {name}'s menu is clipped or covered"
        pause = row.get_by_role("button", name="Pause sending")
        assert hit_test(pause), f"Pause sending of {name}'s menu is clipped or covered"
        page.keyboard.press("Escape")
        expect(row.get_by_role("link", name="Delete", exact=True)).to_be_hidden()


def test_the_detail_pages_menu_is_whole_too(page, live_server):
    master = MasterFactory(name="Northwind Digital")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    sub, _ = subaccount_with_owner(master, name="Acme Shop")
    log_in(page, live_server.url, owner.email, PASSWORD)
    page.goto(f"{live_server.url}/subaccounts/{sub.pk}/")
    page.get_by_role("button", name="More actions for Acme Shop").click()
    delete = page.get_by_role("link", name="Delete", exact=True)
    expect(delete).to_be_visible()
    assert hit_test(delete)
    page.keyboard.press("Escape")
    expect(delete).to_be_hidden()
