"""Browser tests: Playwright driving Debian's Chromium against a live server."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def pytest_collection_modifyitems(config, items):
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"CI needs {CHROMIUM} for the browser tests (apt-get install chromium).")
    skip = pytest.mark.skip(reason=f"browser tests need {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800}}


@pytest.fixture(autouse=True)
def _fail_fast(page):
    page.set_default_timeout(10_000)


@pytest.fixture(autouse=True)
def _e2e_settings(settings, live_server):
    settings.ACCOUNT_RATE_LIMITS = False
    settings.SITE_URL = live_server.url


@pytest.fixture
def shot():
    """Save a full-page screenshot to docs/screenshots/<name>.png (they are looked at, and committed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take


def log_in(page, base_url: str, email: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def wait_for_htmx(page) -> None:
    """Wait until no htmx request is in flight: a link followed while one is pending is cancelled by
    the history push that request ends with, as a person clicking fast would see."""
    page.wait_for_function("() => document.querySelector('.htmx-request') === null")


# --- the demo agency, its people, and every page each of them can open ---------------------------------

DEMO_PASSWORD = "demo-pass-2026"  # seed_demo's published password
PEOPLE = {
    "agency owner": "owner@northwind.test",
    "viewer": "viewer@northwind.test",
    "customer": "owner@acme.test",
}


@pytest.fixture
def demo():
    """`manage.py seed_demo`'s agency: staff of each role, subaccounts in every state, messages, history."""
    import io

    from django.core.management import call_command

    from accounts.models import Account
    from mailing.models import ArchivedMessage, Message

    call_command("seed_demo", stdout=io.StringIO())
    master = Account.objects.get(parent=None, public_id="northwind")
    acme = Account.objects.get(parent=master, public_id="acme-shop")
    return {
        "master": master,
        "acme": acme,
        "failed_message": Message.objects.filter(account=acme, status=Message.Status.FAILED).first(),
        "archived": ArchivedMessage.objects.filter(account=acme).first(),
    }


def pages_of(person: str, demo: dict) -> dict[str, str]:
    """Every page `person` can open in the demo, by the name its screenshot gets."""
    acme = demo["acme"].pk
    message = demo["failed_message"].public_id
    if person == "customer":
        return {
            "subaccount-dashboard": "/dashboard/",
            "messages-customer": "/messages/",
            "message-detail-customer": f"/messages/{message}/",
            "archive": "/archive/",
            "archive-message": f"/archive/{demo['archived'].pk}/",
            "domains-customer": "/domains/",
            "suppressions-customer": "/suppressions/",
            "activity-customer": "/activity/",
            "api-keys-customer": "/api-keys/",
            "password-change": "/accounts/password/change/",
        }
    pages = {
        "overview": "/overview/",
        "subaccount-list": "/subaccounts/",
        "subaccount-detail": f"/subaccounts/{acme}/",
        "subaccount-activity": f"/subaccounts/{acme}/activity/",
        "subaccount-alerts": f"/subaccounts/{acme}/alerts/",
        "alert-settings": "/alerts/",
        "billing": "/billing/",
        "messages": "/messages/",
        "message-detail": f"/messages/{message}/",
        "domains": "/domains/",
        "suppressions": "/suppressions/",
        "suppressions-subaccount": f"/suppressions/?account={acme}",
        "auto-pause": "/auto-pause/",
        "subaccount-auto-pause": f"/subaccounts/{acme}/auto-pause/",
        "activity": "/activity/",
        "api-keys": "/api-keys/",
    }
    if person == "agency owner":
        pages |= {
            "add-subaccount": "/subaccounts/add/",
            "edit-subaccount": f"/subaccounts/{acme}/edit/",
            "delete-confirm": f"/subaccounts/{acme}/delete/",
        }
    else:
        pages = {f"{name}-viewer": path for name, path in pages.items()}
    return pages


PUBLIC_PAGES = {"login": "/accounts/login/", "password-reset": "/accounts/password/reset/"}


@pytest.fixture
def console_errors(page):
    """Everything the browser reports as an error (CSP violations, 404s, script errors) while a test runs."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def hit_test(locator) -> bool:
    """Whether a click at the middle of the element would reach it (nothing clips or covers it)."""
    return locator.evaluate(
        """el => { const r = el.getBoundingClientRect();
                   const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                   return r.width > 0 && r.height > 0 && !!hit && (hit === el || el.contains(hit)); }"""
    )
