"""The agency's new pages in a browser, at 1280 and 390 px: the drill-down from the list, the overview's
period (presets, a custom range, a refused one), and the messages filtered, sorted and exported."""

import csv
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.e2e.conftest import DEMO_PASSWORD, PEOPLE, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTHS = {"1280": {"width": 1280, "height": 800}, "390": {"width": 390, "height": 844}}


def _fits(page, width: str) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTHS[width]["width"]


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_drill_down_from_the_list(page, live_server, demo, width, shot, console_errors):
    page.set_viewport_size(WIDTHS[width])
    log_in(page, live_server.url, PEOPLE["agency owner"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/subaccounts/")
    page.get_by_role("link", name="Acme Shop").first.click()
    expect(page.get_by_role("heading", name="Acme Shop", level=1)).to_be_visible()
    # the sending partial arrives (htmx) with the keys and domains, read-only
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    expect(page.get_by_role("heading", name="Sending domains")).to_be_visible()
    expect(page.get_by_role("link", name="All messages of Acme Shop →")).to_be_visible()
    assert page.evaluate("() => !!window.Chart && document.getElementById('daily-chart').height > 0")
    expect(page.get_by_text("Reputation", exact=True)).to_be_visible()
    _fits(page, width)
    shot(page, f"agency-drill-down-{width}")
    page.get_by_role("link", name="All messages of Acme Shop →").click()
    expect(page.get_by_label("Subaccount id")).to_have_value("acme-shop")
    assert console_errors == []


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_overview_period(page, live_server, demo, width, shot, console_errors):
    page.set_viewport_size(WIDTHS[width])
    log_in(page, live_server.url, PEOPLE["viewer"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/overview/")
    period = page.get_by_label("Period", exact=True)
    period.select_option("7")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", name="Sending,")).to_contain_text("(UTC days)")
    expect(page.get_by_label("Period", exact=True)).to_have_value("7")
    # typing a date makes it a custom range; a backwards one is refused beside the field
    today = timezone.now().date()
    page.get_by_label("From", exact=False).first.fill(today.isoformat())
    page.get_by_label("From", exact=False).first.dispatch_event("change")
    expect(page.get_by_label("Period", exact=True)).to_have_value("custom")
    page.get_by_label("To", exact=True).fill((today - timedelta(days=3)).isoformat())
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("The first day must come before the last.")).to_be_visible()
    expect(page.get_by_text("here are the last 30 days instead")).to_be_visible()
    _fits(page, width)
    shot(page, f"agency-overview-period-error-{width}")
    # a good custom range is shown, and its CSV holds one line per day
    page.get_by_label("From", exact=False).first.fill((today - timedelta(days=2)).isoformat())
    page.get_by_label("To", exact=True).fill(today.isoformat())
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("The first day must come before the last.")).to_have_count(0)
    with page.expect_download() as download:
        page.get_by_role("button", name="By day (CSV)").click()
    rows = list(csv.reader(Path(download.value.path()).read_text().splitlines()))
    assert rows[0][0] == "day" and len(rows) == 4
    assert console_errors == []


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_agency_messages_filtered_sorted_and_exported(
    page, live_server, demo, width, shot, console_errors
):
    page.set_viewport_size(WIDTHS[width])
    log_in(page, live_server.url, PEOPLE["agency owner"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/messages/")
    page.get_by_label("Subaccount id").fill("acme-shop")
    page.get_by_label("Status").select_option("failed")
    expect(page.locator("#message-table")).not_to_contain_text("Evergreen Books")
    page.get_by_label("Sort by").select_option("recipient")
    expect(page).to_have_url(
        f"{live_server.url}/messages/?recipient=&subaccount=acme-shop&status=failed&tag=&date_from=&date_to=&sort=recipient"
    )
    page.reload()
    expect(page.get_by_text("Bounced: mailbox does not exist").first).to_be_visible()
    if width == "1280":  # the column heads sort on a wide screen (a phone has the Sort by menu)
        head = page.get_by_role("columnheader", name="Recipient")
        expect(head).to_have_attribute("aria-sort", "ascending")
        head.get_by_role("link").click()
        expect(page.get_by_role("columnheader", name="Recipient")).to_have_attribute(
            "aria-sort", "descending"
        )
    _fits(page, width)
    shot(page, f"agency-messages-filtered-{width}")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    rows = list(csv.reader(Path(download.value.path()).read_text().splitlines()))
    assert rows[0][:3] == ["created_at", "message_id", "subaccount_id"]
    assert (
        len(rows) > 1
        and {row[2] for row in rows[1:]} == {"acme-shop"}
        and {row[7] for row in rows[1:]} == {"failed"}
    )
    assert console_errors == []
