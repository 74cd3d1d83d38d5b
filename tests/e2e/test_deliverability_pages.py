"""The deliverability pages in a browser, at 1280 and 390 px: the domain's records with working copy
buttons and a confirmed DKIM rotation, the suppression list (a master choosing a subaccount's, adding
and removing with confirmation), the auto-pause limits, and the banner of an automatic pause."""

import pytest
from django.db.models import F
from playwright.sync_api import expect

from accounts import reputation
from accounts.models import Account, Usage
from mailing.models import DkimKey, Suppression
from tests.e2e.conftest import DEMO_PASSWORD, PEOPLE, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def _fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width} px wide"


def _both_widths(page, shot, name: str) -> None:
    page.set_viewport_size(DESKTOP)
    shot(page, name)
    page.set_viewport_size(PHONE)
    _fits(page)
    shot(page, f"{name}-phone")
    page.set_viewport_size(DESKTOP)


def test_the_domain_page_copies_each_record_and_rotates_the_key(
    page, live_server, demo, shot, console_errors
):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    log_in(page, live_server.url, PEOPLE["agency owner"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/domains/")
    page.get_by_label("Add a domain").fill("mail.northwind.example")
    page.get_by_role("button", name="Add domain").click()
    card = page.locator("section.domain-card", has=page.get_by_role("heading", name="mail.northwind.example"))
    for title in ("Ownership", "DKIM", "SPF", "DMARC"):
        expect(card.get_by_role("heading", name=title, exact=True)).to_be_visible()
    expect(card.get_by_text("Not checked yet")).to_have_count(4)
    # copy the DKIM value: the clipboard holds exactly the record
    key = DkimKey.objects.get(domain__domain="mail.northwind.example")
    copy = card.get_by_role("button", name="Copy the DKIM record's value")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == key.record_value
    card.get_by_role("button", name="Copy the DKIM record's name").click()
    assert page.evaluate("navigator.clipboard.readText()") == key.record_name
    _both_widths(page, shot, "domain-records")
    # rotate, after confirming
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name="Rotate DKIM key").click()
    expect(page.get_by_text("New DKIM key made for mail.northwind.example")).to_be_visible()
    newest = (
        DkimKey.objects.filter(domain__domain="mail.northwind.example").order_by("-created_at", "-pk").first()
    )
    assert newest.pk != key.pk
    expect(card.get_by_text(newest.record_name)).to_be_visible()
    # the new card's copy buttons work too (they came back through htmx)
    expect(card.get_by_role("button", name="Copy the DKIM record's value")).to_be_visible()
    assert console_errors == []


def test_a_master_manages_a_subaccounts_suppression_list(page, live_server, demo, shot, console_errors):
    acme = demo["acme"]
    log_in(page, live_server.url, PEOPLE["agency owner"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/suppressions/")
    page.get_by_label("Whose list").select_option(label="Acme Shop")
    page.get_by_role("button", name="Show list").click()
    expect(page.get_by_role("heading", name="Suppression list of Acme Shop")).to_be_visible()
    seeded = Suppression.objects.filter(account=acme).order_by("-last_event_at").first()
    expect(page.get_by_text(seeded.email)).to_be_visible()
    # add one by hand
    page.get_by_label("Add an address by hand").fill("no-more-mail@customer.example")
    page.get_by_label("Why (optional)").fill("Asked us on the phone")
    page.get_by_role("button", name="Add address").click()
    expect(page.get_by_text("no-more-mail@customer.example added")).to_be_visible()
    # search narrows the list as one types
    page.get_by_label("Search addresses").fill("no-more")
    expect(page.locator("#suppression-table tbody tr")).to_have_count(1)
    _both_widths(page, shot, "suppressions")
    # remove, after confirming: the row goes, the flash says so
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove no-more-mail@customer.example").click()
    expect(page.get_by_text("no-more-mail@customer.example removed from the list")).to_be_visible()
    expect(page.locator("#suppression-table tbody tr")).to_have_count(0)
    assert not Suppression.objects.filter(email="no-more-mail@customer.example").exists()
    assert console_errors == []


def test_the_auto_pause_limits_and_the_banner_of_an_automatic_pause(page, live_server, demo, shot):
    log_in(page, live_server.url, PEOPLE["agency owner"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/auto-pause/")
    page.get_by_label("Hard-bounce rate limit (%)").fill("4")
    page.get_by_label("Complaint rate limit (%)").fill("0.08")
    page.get_by_label("Measured over the last (days)").fill("14")
    page.get_by_role("button", name="Save limits").click()
    expect(page.get_by_text("Auto-pause limits saved.")).to_be_visible()
    expect(
        page.get_by_text("more than 4% hard bounces or 0.08% complaints over the last 14 days")
    ).to_be_visible()
    _both_widths(page, shot, "auto-pause")
    page.goto(f"{live_server.url}/subaccounts/{demo['acme'].pk}/auto-pause/")
    page.get_by_label("Hard-bounce rate limit (%)").fill("abc")
    page.get_by_role("button", name="Save limits").click()
    expect(page.get_by_text("The hard-bounce limit is a percentage between 0.1 and 100.")).to_be_visible()
    _both_widths(page, shot, "subaccount-auto-pause")

    # a customer's bounces pass the limit: it pauses by itself and both sides are told why
    evergreen = Account.objects.get(parent=demo["master"], name="Evergreen Books")
    latest = Usage.objects.filter(account=evergreen, window=Usage.Window.HOUR).latest("start")
    Usage.objects.filter(pk=latest.pk).update(
        delivered=F("delivered") + 2000, hard_bounced=F("hard_bounced") + 1000
    )
    assert reputation.check_auto_pause(evergreen)
    page.goto(f"{live_server.url}/subaccounts/")
    banner = page.locator("article.flash", has_text="Evergreen Books was paused automatically")
    expect(banner).to_be_visible()
    _both_widths(page, shot, "subaccounts-auto-paused")
