"""The agency's brand on its customers' pages and login page, the Brand and Team pages, and dates in a
person's own zone, as people see them (screenshots at 1280 and 390 px)."""

import io

import pytest
from PIL import Image, ImageDraw, ImageFont
from playwright.sync_api import expect

from accounts import branding
from accounts.models import Brand
from tests.e2e.conftest import DEMO_PASSWORD, PEOPLE, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
TEAL = "#0e7490"


def logo_png() -> bytes:
    """A small logo: a teal tile with the agency's initials."""
    image = Image.new("RGBA", (96, 96), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, 95, 95), radius=20, fill=(255, 255, 255, 255))
    draw.rounded_rectangle((8, 8, 87, 87), radius=16, fill=(14, 116, 144, 255))
    draw.text((48, 50), "NW", fill="white", anchor="mm", font=ImageFont.load_default(size=40))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def both_widths(page, shot, name: str) -> None:
    page.set_viewport_size(DESKTOP)
    shot(page, name)
    page.set_viewport_size(PHONE)
    page.reload()  # laid out for a phone from the start, as a phone would (the chart sizes itself at load)
    page.wait_for_load_state("networkidle")  # fragments htmx loads after the page
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], (
        f"{name} is wider than a phone"
    )
    shot(page, f"{name}-mobile")
    page.set_viewport_size(DESKTOP)


def set_up_brand_in_the_page(page, base_url: str) -> None:
    page.goto(f"{base_url}/brand/")
    page.get_by_label("Brand name").fill("Northwind Mail")
    page.get_by_label("Accent colour").fill(TEAL)
    page.get_by_label("Support email").fill("help@northwind.test")
    page.locator("#id_logo").set_input_files(
        files=[{"name": "logo.png", "mimeType": "image/png", "buffer": logo_png()}]
    )
    page.get_by_role("button", name="Save brand").click()
    expect(page.get_by_text("Brand saved")).to_be_visible()


def test_the_agency_brands_its_customers_pages_and_login(page, live_server, demo, shot):
    # given the agency's owner sets the brand on the Brand page
    log_in(page, live_server.url, PEOPLE["agency owner"], DEMO_PASSWORD)
    set_up_brand_in_the_page(page, live_server.url)
    brand = Brand.objects.get(account=demo["master"])
    assert brand.has_logo and brand.accent_color == TEAL
    expect(page.locator(".brand-preview img")).to_be_visible()
    both_widths(page, shot, "brand")
    # an uploaded HTML file named .png is refused beside the field
    page.locator("#id_logo").set_input_files(
        files=[
            {"name": "logo.png", "mimeType": "image/png", "buffer": b"<html><script>alert(1)</script></html>"}
        ]
    )
    page.get_by_role("button", name="Save brand").click()
    expect(page.locator("#id_logo_error")).to_contain_text("SVG and HTML files are not accepted")
    # the agency's own pages keep ours
    expect(page.locator("header .brand")).to_contain_text("Reseller Dashboard")
    page.locator("header details.dropdown summary").click()
    page.get_by_role("button", name="Log out").click()

    # when a customer opens the login link from their email
    page.goto(f"{live_server.url}/accounts/login/?brand={branding.slug_of(demo['master'].brand)}")
    expect(page.locator(".login-brand")).to_contain_text("Northwind Mail")
    expect(page.locator(".login-brand img")).to_be_visible()
    assert page.evaluate("document.querySelector('.login-brand img').naturalWidth") == 96
    both_widths(page, shot, "login-branded")
    page.get_by_label("Email").fill(PEOPLE["customer"])
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()

    # then their dashboard wears the brand: name, logo, colour, support address
    expect(page.locator("header .brand")).to_contain_text("Northwind Mail")
    expect(page.locator("header .brand img")).to_be_visible()
    background = page.evaluate("getComputedStyle(document.querySelector('header.topbar')).backgroundColor")
    assert background == "rgb(14, 116, 144)"
    expect(page.locator("footer")).to_contain_text("help@northwind.test")
    assert page.title().endswith("· Northwind Mail")
    both_widths(page, shot, "subaccount-dashboard-branded")


def test_the_team_page(page, live_server, demo, shot):
    log_in(page, live_server.url, PEOPLE["agency owner"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/team/")
    expect(page.get_by_role("heading", name="Team", exact=True)).to_be_visible()
    page.get_by_label("Email address").fill("new.colleague@northwind.test")
    page.get_by_label("Role", exact=True).select_option("admin")
    page.get_by_role("button", name="Send invite").click()
    expect(page.get_by_text("An invite is on its way to new.colleague@northwind.test")).to_be_visible()
    row = page.locator("tr", has_text="new.colleague@northwind.test")
    expect(row).to_contain_text("invited, not accepted yet")
    both_widths(page, shot, "team")
    # the viewer sees the team, and no buttons
    page.locator("header details.dropdown summary").click()
    page.get_by_role("button", name="Log out").click()
    log_in(page, live_server.url, PEOPLE["viewer"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/team/")
    expect(page.locator("tr", has_text="new.colleague@northwind.test")).to_be_visible()
    expect(page.get_by_role("button", name="Change role")).to_have_count(0)
    expect(page.get_by_role("button", name="Send invite")).to_have_count(0)


def test_dates_in_the_persons_own_zone(page, live_server, demo):
    log_in(page, live_server.url, PEOPLE["customer"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/settings/")
    page.get_by_label("Time zone").select_option("Europe/Prague")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Dates are shown in Europe/Prague")).to_be_visible()
    page.goto(f"{live_server.url}/activity/")
    first = page.locator("td time").first
    expect(first).to_have_attribute("title", "Europe/Prague")
    expect(first).to_contain_text("CE")  # CET or CEST, by the season


def test_an_operator_pauses_a_subaccount_from_the_admin_after_confirming(page, live_server, demo, shot):
    from accounts.models import Account, AuditEvent
    from tests.e2e.test_operator import OPERATOR

    acme = demo["acme"]
    log_in(page, live_server.url, OPERATOR, DEMO_PASSWORD)
    page.goto(f"{live_server.url}/admin/accounts/account/?q=acme-shop")
    page.locator(f"input[name=_selected_action][value='{acme.pk}']").check()
    page.locator("select[name=action]").select_option("pause_selected")
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_role("heading", name="Pause 1 account?")).to_be_visible()
    shot(page, "admin-lifecycle-confirm")
    assert Account.objects.get(pk=acme.pk).status == "active"  # nothing happens before the confirmation
    page.get_by_role("button", name="Yes, pause").click()
    expect(page.locator(".messagelist")).to_contain_text("Paused: Acme Shop")
    assert Account.objects.get(pk=acme.pk).status == "paused"
    assert AuditEvent.objects.filter(
        account=acme, action="subaccount.paused", actor_label__endswith="(operator)"
    ).exists()
