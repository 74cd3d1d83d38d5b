"""The Templates pages in Chromium, at a desktop and a phone width: add a template, see its preview
change as it is typed, publish it, and find it in the list."""

import pytest
from playwright.sync_api import expect

from accounts.models import Membership
from mailing.models import Template
from tests.e2e.conftest import log_in
from tests.factories import PASSWORD, MasterFactory, MembershipFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1280, 390])
def test_an_agency_adds_previews_and_publishes_a_template(page, live_server, shot, width):
    console_errors = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    master = MasterFactory(name="Northwind Digital")
    MembershipFactory(account=master, role=Membership.Role.OWNER, user__email="owner@northwind.test")
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server.url, "owner@northwind.test", PASSWORD)
    page.goto(f"{live_server.url}/templates/")
    expect(page.get_by_role("heading", name="No templates yet")).to_be_visible()
    page.get_by_role("button", name="Add template").click()
    page.get_by_label("Name", exact=True).fill("Password reset")
    page.get_by_label("Subject").fill("Reset your password, *|FNAME|*")
    page.get_by_label("From address").fill("support@northwind.example")
    page.get_by_label("HTML").fill(
        '<h1 mc:edit="title">Reset</h1><p>Hello *|FNAME|*, use the link below.</p>'
    )
    preview = page.frame_locator("iframe.archive-frame")
    expect(preview.get_by_role("heading", name="Reset")).to_be_visible()  # before anything is saved
    assert not Template.objects.exists()
    page.get_by_role("button", name="Save and publish").click()
    expect(page.get_by_text("Slug password-reset")).to_be_visible()
    expect(page.frame_locator("iframe.archive-frame").get_by_role("heading", name="Reset")).to_be_visible()
    page.get_by_label("HTML").press_sequentially("<p>Typed, not saved</p>", delay=5)
    expect(preview.get_by_text("Typed, not saved")).to_be_visible()
    shot(page, f"templates-edit-{width}")
    assert "Typed" not in Template.objects.get().code
    assert Template.objects.get().published_at is not None
    page.goto(f"{live_server.url}/templates/")
    expect(page.get_by_role("link", name="Password reset")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    shot(page, f"templates-list-{width}")
    assert console_errors == []
