"""Words and consistency: one way to write a percentage, one date style, sentence case, the right voice."""

import re

import pytest
from playwright.sync_api import expect

from accounts.impersonation import record_visit_started
from accounts.models import Membership
from tests.e2e.conftest import DEMO_PASSWORD, PEOPLE, log_in, pages_of

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# a day, or a day and a time with the zone it is in ("24 Nov 2026, 18:14 CET"; "+03" where a zone has no letters)
DATE = re.compile(r"\d{1,2} [A-Z][a-z]{2} \d{4}(, \d{2}:\d{2} ([A-Z]{2,5}|[+-]\d{2,4}))?")


def test_percentages_and_dates_are_written_one_way(page, live_server, demo):
    log_in(page, live_server.url, PEOPLE["agency owner"], DEMO_PASSWORD)
    for name, path in pages_of("agency owner", demo).items():
        page.goto(f"{live_server.url}{path}")
        text = page.locator("main").inner_text()
        assert not re.search(r"\d %", text), f"{name}: a percentage written with a space"
        for time in page.locator("main time").all_inner_texts():
            assert DATE.fullmatch(time.strip()), f"{name}: the date {time!r} is not in the one style"
    for path in ("/messages/", "/activity/", "/overview/", "/subaccounts/"):
        page.goto(f"{live_server.url}{path}")
        assert page.locator("main time").count() > 0, f"{path} shows dates outside <time>"


def test_both_threshold_pages_say_the_same_about_100_percent(page, live_server, demo):
    log_in(page, live_server.url, PEOPLE["agency owner"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/alerts/")
    expect(page.get_by_text("Alerts now at 80%, 95% and 100%.")).to_be_visible()
    page.goto(f"{live_server.url}/subaccounts/{demo['acme'].pk}/alerts/")
    expect(page.get_by_text("Alerts now at 80%, 95% and 100%.")).to_be_visible()
    page.get_by_label("Alert at these percentages of the monthly limit").fill("50")
    page.get_by_role("button", name="Save thresholds").click()
    page.goto(f"{live_server.url}/subaccounts/{demo['acme'].pk}/alerts/")
    expect(page.get_by_text("Alerts now at 50% and 100%.")).to_be_visible()


def test_an_invalid_id_is_explained_in_a_sentence(page, live_server, demo):
    log_in(page, live_server.url, PEOPLE["agency owner"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/subaccounts/add/")
    page.get_by_label("Id").fill("bad id!")
    page.get_by_role("button", name="Add subaccount").click()
    expect(page.get_by_text(re.compile("The id may only use letters, digits"))).to_be_visible()


def test_the_agency_reads_a_customers_activity_in_its_own_voice(page, live_server, demo):
    owner = Membership.objects.get(account=demo["acme"], role="owner").user
    agency = Membership.objects.get(user__email=PEOPLE["agency owner"]).user
    record_visit_started(hijacker=agency, hijacked=owner)
    log_in(page, live_server.url, PEOPLE["agency owner"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/subaccounts/{demo['acme'].pk}/activity/")
    expect(page.get_by_role("heading", name="Activity of Acme Shop")).to_be_visible()
    expect(page.get_by_text("your agency logged in as you")).to_have_count(0)
    expect(page.get_by_text("Everything that happened to Acme Shop")).to_be_visible()


def test_login_and_password_forms_use_sentence_case(page, live_server, demo):
    page.goto(f"{live_server.url}/accounts/login/")
    expect(page.get_by_text("Remember me", exact=True)).to_be_visible()
    expect(page.get_by_text("Remember Me", exact=True)).to_have_count(0)
    log_in(page, live_server.url, PEOPLE["customer"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/accounts/password/change/")
    for label in ("Current password", "New password", "New password (again)"):
        expect(page.get_by_text(label, exact=True)).to_be_visible()
