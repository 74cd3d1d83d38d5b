"""Bulk actions on the subaccount list: every action, over ticked rows and over all matching."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Account, Membership
from tests.e2e.conftest import log_in
from tests.factories import PASSWORD, MasterFactory, MembershipFactory, SubaccountFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _apply(page, action: str, *, tick: list[str] = (), all_matching: bool = False, limit: str = "") -> None:
    """As a person does it: tick rows first, then choose the action, then apply."""
    for name in tick:
        page.get_by_label(f"Select {name}").check()
    page.get_by_label("Bulk action").select_option(label=action)
    if limit:
        page.get_by_label("New monthly limit").fill(limit)
    if all_matching:
        page.get_by_label(re.compile(r"All \d+ matching")).check()
    # choosing the action must not reload the table: the ticks and the choice stay
    for name in tick:
        expect(page.get_by_label(f"Select {name}")).to_be_checked()
    expect(page.get_by_label("Bulk action")).to_have_value(
        {"Pause sending": "pause", "Resume sending": "resume", "Set monthly limit": "set_monthly_limit"}[
            action
        ]
    )
    page.get_by_role("button", name="Apply to selected").click()
    page.wait_for_load_state()


def _status(name: str) -> str:
    return Account.objects.get(name=name).status


def test_every_bulk_action_over_ticked_rows_and_over_all_matching(page, live_server):
    master = MasterFactory(name="Northwind Digital")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    for name in ("Alpha", "Bravo", "Charlie", "Delta"):
        SubaccountFactory(parent=master, name=name, monthly_limit=1000)
    log_in(page, live_server.url, owner.email, PASSWORD)
    page.goto(f"{live_server.url}/subaccounts/")

    # ticked rows
    _apply(page, "Pause sending", tick=["Alpha", "Bravo"])
    expect(page.get_by_text("Pause sending: done for 2")).to_be_visible()
    assert [_status("Alpha"), _status("Bravo"), _status("Charlie")] == ["paused", "paused", "active"]
    _apply(page, "Resume sending", tick=["Alpha"])
    expect(page.get_by_text("Resume sending: done for 1 — Alpha.")).to_be_visible()
    assert _status("Alpha") == "active" and _status("Bravo") == "paused"
    _apply(page, "Set monthly limit", tick=["Charlie", "Delta"], limit="7777")
    expect(page.get_by_text("Set monthly limit: done for 2")).to_be_visible()
    assert {a.name: a.monthly_limit for a in Account.objects.subaccounts_of(master)} == {
        "Alpha": 1000, "Bravo": 1000, "Charlie": 7777, "Delta": 7777,
    }  # fmt: skip

    # all matching the current filter
    page.get_by_label("Status").select_option(label="Paused")
    expect(page.get_by_label("Select Alpha")).to_have_count(0)
    _apply(page, "Resume sending", all_matching=True)
    expect(page.get_by_text("Resume sending: done for 1 — Bravo.")).to_be_visible()
    assert _status("Bravo") == "active"
    expect(page.get_by_label("Status")).to_have_value("paused")  # the list is still filtered as it was
    page.get_by_label("Status").select_option(label="Any status")
    page.get_by_label("Search").fill("a")  # Alpha, Bravo, Charlie, Delta all have an "a"
    expect(page).to_have_url(re.compile(r"q=a&"))  # the table has been fetched again
    expect(page.get_by_label(re.compile(r"All 4 matching"))).to_be_visible()
    _apply(page, "Pause sending", all_matching=True)
    expect(page.get_by_text("Pause sending: done for 4")).to_be_visible()
    assert {a.status for a in Account.objects.subaccounts_of(master)} == {"paused"}
    page.get_by_label("Search").fill("delta")
    expect(page).to_have_url(re.compile(r"q=delta"))
    expect(page.get_by_label(re.compile(r"All 1 matching"))).to_be_visible()
    _apply(page, "Set monthly limit", all_matching=True, limit="123")
    expect(page.get_by_text("Set monthly limit: done for 1 — Delta.")).to_be_visible()
    assert Account.objects.get(name="Delta").monthly_limit == 123
    assert Account.objects.get(name="Charlie").monthly_limit == 7777


@pytest.mark.parametrize("width", [1280, 390])
def test_a_bulk_action_over_many_subaccounts_shows_its_progress_page(
    page, live_server, settings, shot, width
):
    settings.BULK_INLINE_MAX = 2
    master = MasterFactory(name="Northwind Digital")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    for name in ("Alpha", "Bravo", "Charlie", "Delta", "Echo"):
        SubaccountFactory(parent=master, name=name)
    Account.objects.filter(name="Echo").update(status=Account.Status.PAUSED)
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server.url, owner.email, PASSWORD)
    page.goto(f"{live_server.url}/subaccounts/")
    _apply(page, "Pause sending", all_matching=True)
    expect(page.get_by_role("heading", name="Pause sending: 5 subaccounts")).to_be_visible()
    expect(page.get_by_text("Finished: 4 done, 1 refused.")).to_be_visible()
    expect(page.get_by_text("Echo is paused, not active")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    shot(page, f"bulk-job-{width}")
    page.get_by_role("link", name="Back to the subaccounts").click()
    expect(page).to_have_url(re.compile(r"/subaccounts/$"))
