"""Paging through a filtered list keeps the filter: messages, the archive and the subaccount list."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Membership
from tests.e2e.conftest import DEMO_PASSWORD, PEOPLE, log_in, wait_for_htmx
from tests.factories import PASSWORD, MasterFactory, MembershipFactory, SubaccountFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _query(page) -> dict:
    return {key: values[0] for key, values in parse_qs(urlsplit(page.url).query).items()}


@pytest.mark.parametrize(
    ("path", "search_label"), [("/messages/", None), ("/archive/", "Search subject, sender, recipient")]
)
def test_older_pages_keep_the_date_filter(page, live_server, demo, path, search_label):
    since = (timezone.now() - timedelta(days=2)).date().isoformat()
    log_in(page, live_server.url, PEOPLE["customer"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}{path}?date_from={since}")
    if search_label:
        page.get_by_label(search_label).fill("customer.example")
        expect(page).to_have_url(re.compile(r"q=customer\.example"))
        wait_for_htmx(page)
    page.get_by_role("link", name="Older →").click()
    expect(page.get_by_role("link", name="← Newer")).to_be_visible()
    query = _query(page)
    assert query.get("date_from") == since and query.get("page") == "2"
    if search_label:
        assert query.get("q") == "customer.example"
    expect(page.get_by_label("From", exact=True)).to_have_value(since)
    page.get_by_role("link", name="← Newer").click()
    assert _query(page).get("date_from") == since


def test_the_subaccount_list_keeps_search_status_and_sort_across_pages(page, live_server):
    master = MasterFactory(name="Northwind Digital")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    for n in range(30):
        SubaccountFactory(parent=master, name=f"Shop {n:02}", status="paused" if n % 10 else "active")
    log_in(page, live_server.url, owner.email, PASSWORD)
    page.goto(f"{live_server.url}/subaccounts/")
    page.get_by_label("Status").select_option(label="Paused")
    page.get_by_label("Sort by").select_option(label="Name (Z–A)")
    page.get_by_label("Search").fill("shop")
    expect(page).to_have_url(re.compile(r"q=shop&status=paused&sort=-name"))  # the table was fetched again
    wait_for_htmx(page)
    expect(page.get_by_text("1–25 of 27")).to_be_visible()
    page.get_by_role("link", name="Next →").click()
    expect(page.get_by_text("26–27 of 27")).to_be_visible()
    assert _query(page).items() >= {"q": "shop", "status": "paused", "sort": "-name", "page": "2"}.items()
    expect(page.get_by_label("Status")).to_have_value("paused")
