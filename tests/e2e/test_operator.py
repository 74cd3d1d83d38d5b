"""The service's own operators land in the admin, and the admin reads clearly."""

import pytest
from playwright.sync_api import expect

from accounts.models import Account
from tests.e2e.conftest import DEMO_PASSWORD, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OPERATOR = "operator@reseller.test"


def test_an_operator_lands_in_the_admin(page, live_server, demo):
    log_in(page, live_server.url, OPERATOR, DEMO_PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/admin/")
    expect(page.get_by_text("not attached to an account")).to_have_count(0)
    sections = page.locator("#content-main .module caption").all_inner_texts()
    assert len(sections) == len({s.strip().lower() for s in sections}), (
        f"two sections share a name: {sections}"
    )


def test_the_account_page_shows_thresholds_plainly_and_status_changes_only_through_the_lifecycle(
    page, live_server, demo
):
    log_in(page, live_server.url, OPERATOR, DEMO_PASSWORD)
    acme, master = demo["acme"], demo["master"]
    page.goto(f"{live_server.url}/admin/accounts/account/{acme.pk}/change/")
    expect(page.locator("[name=alert_thresholds]")).to_have_value("")
    expect(page.locator("select[name=status]")).to_have_count(0)
    status = page.locator(".field-lifecycle_status")
    expect(status).to_contain_text("Active")
    expect(status).to_contain_text("dashboard")
    page.goto(f"{live_server.url}/admin/accounts/account/{master.pk}/change/")
    expect(page.locator("[name=alert_thresholds]")).to_have_value("80, 95")
    page.locator("[name=alert_thresholds]").fill("70, 90")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert Account.objects.get(pk=master.pk).alert_thresholds == [70, 90]


def test_the_account_list_fits_and_shows_the_limits(page, live_server, demo):
    log_in(page, live_server.url, OPERATOR, DEMO_PASSWORD)
    page.goto(f"{live_server.url}/admin/accounts/account/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    header = page.locator("#result_list thead th", has_text="Monthly limit")
    expect(header).to_be_visible()
    box, table = header.bounding_box(), page.locator("#changelist").bounding_box()
    assert box["x"] + box["width"] <= min(1280, table["x"] + table["width"]) + 1
    expect(page.locator("#result_list").get_by_text("10,000", exact=True)).to_be_visible()  # Evergreen Books
