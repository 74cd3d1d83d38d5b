"""A customer near their monthly limit is told so in numbers and in words."""

import pytest
from playwright.sync_api import expect

from accounts.models import Account
from tests.e2e.conftest import DEMO_PASSWORD, PEOPLE, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_customer_at_89_percent_sees_the_percentage_and_a_banner(page, live_server, demo):
    log_in(page, live_server.url, "owner@evergreen.test", DEMO_PASSWORD)  # 8,930 of 10,000 sent
    month = page.locator("section", has=page.get_by_role("heading", name="This month"))
    expect(month).to_contain_text("89%")
    banner = page.get_by_role("status").filter(has_text="monthly limit")
    expect(banner).to_contain_text("You have used 89% of your monthly limit")
    expect(banner).to_contain_text("Northwind Digital")


def test_no_banner_below_the_lowest_threshold_and_a_subaccounts_own_threshold_counts(page, live_server, demo):
    log_in(page, live_server.url, PEOPLE["customer"], DEMO_PASSWORD)  # Acme: 12,400 of 50,000 (24%)
    expect(page.locator("section", has=page.get_by_role("heading", name="This month"))).to_contain_text("24%")
    expect(page.get_by_text("of your monthly limit")).to_have_count(0)
    Account.objects.filter(pk=demo["acme"].pk).update(alert_thresholds=[20])
    page.reload()
    expect(page.get_by_text("You have used 24% of your monthly limit")).to_be_visible()
