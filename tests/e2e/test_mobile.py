"""At 390 px wide (a phone) every page fits the screen, the nav collapses behind a menu button, and
logging out stays within reach."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DEMO_PASSWORD, PEOPLE, PUBLIC_PAGES, hit_test, log_in, pages_of

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def _fits(page, path: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{path} is {width} px wide on a {PHONE['width']} px screen"


@pytest.mark.parametrize("person", list(PEOPLE))
def test_every_page_fits_a_phone_and_the_menu_reaches_everything(page, live_server, demo, person,
                                                                 console_errors):  # fmt: skip
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/accounts/login/")
    _fits(page, "/accounts/login/")
    log_in(page, live_server.url, PEOPLE[person], DEMO_PASSWORD)
    for path in pages_of(person, demo).values():
        page.goto(f"{live_server.url}{path}")
        _fits(page, path)
        if page.locator("table").count():  # a table scrolls inside its card, never the page
            box = page.locator("table").first.evaluate("t => t.closest('.table-wrap, .card') !== null")
            assert box, f"{path}: a table outside a card"

    # the nav is behind one button; each of its links is reachable
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Messages", exact=True)).to_be_hidden()
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    links = nav.get_by_role("link")
    for n in range(links.count()):
        link = links.nth(n)
        if link.is_visible():
            link.scroll_into_view_if_needed()
            assert hit_test(link), f"{link.inner_text()} is covered or off-screen"
    nav.get_by_role("link", name="Activity", exact=True).click()
    expect(page.get_by_role("heading", name="Activity", exact=False).first).to_be_visible()
    _fits(page, "/activity/")

    # logging out is in the menu too
    page.get_by_role("button", name="Menu").click()
    log_out = page.get_by_role("button", name="Log out")
    if not log_out.is_visible():
        nav.get_by_text(PEOPLE[person], exact=True).click()  # the user's own menu
    expect(log_out).to_be_visible()
    log_out.scroll_into_view_if_needed()
    assert hit_test(log_out)
    log_out.click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert console_errors == []


def test_the_message_filters_stack_on_a_phone(page, live_server, demo):
    page.set_viewport_size(PHONE)
    log_in(page, live_server.url, PEOPLE["customer"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/messages/")
    boxes = [page.get_by_label(label, exact=True).bounding_box() for label in ("Recipient", "Status", "Tag")]
    assert boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"], "the filters share one row"
    assert all(box["width"] > 250 for box in boxes)


def test_the_public_pages_fit_a_phone(page, live_server, console_errors):
    page.set_viewport_size(PHONE)
    for path in PUBLIC_PAGES.values():
        page.goto(f"{live_server.url}{path}")
        _fits(page, path)
    assert console_errors == []
