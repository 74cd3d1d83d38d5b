"""A large export in the browser: the list offers to prepare it, the job page follows the worker, and the
file downloads; each page passes axe, fits a phone and logs no error."""

import csv
import io
from pathlib import Path

import pytest

from mailing.models import ExportJob, Message
from tests.e2e.conftest import DEMO_PASSWORD, PEOPLE, log_in
from tests.e2e.test_accessibility import AXE, WIDTHS, _violations

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _small_inline_limit(settings, tmp_path):
    settings.EXPORT_INLINE_MAX = 3
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path},
        },
    }


def _page_is_sound(page, width: str, console_errors) -> list[str]:
    problems = [f"{page.url}: {finding}" for finding in (_violations(page) if AXE.exists() else [])]
    if page.evaluate("document.documentElement.scrollWidth") > WIDTHS[width]["width"]:
        problems.append(f"{page.url} scrolls sideways at {width}px")
    problems += [f"{page.url}: console: {error}" for error in console_errors]
    console_errors.clear()
    return problems


# Whose messages each person exports, and the file's name (the account's id).
EXPORTERS = {
    "agency owner": ("master", "northwind"),
    "viewer": ("master", "northwind"),
    "customer": ("acme", "acme-shop"),
}


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("person", list(EXPORTERS))
def test_each_role_exports_a_long_list_in_the_background(
    page, live_server, demo, person, width, shot, console_errors
):
    if AXE.exists():
        page.add_init_script(path=str(AXE))
    page.set_viewport_size(WIDTHS[width])
    log_in(page, live_server.url, PEOPLE[person], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/messages/")
    page.get_by_role("button", name="Export CSV").click()
    page.get_by_role("heading", name="Export messages as CSV").wait_for()
    problems = _page_is_sound(page, width, console_errors)
    shot(page, f"export-offer-{person.replace(' ', '-')}-{width}")

    page.get_by_role("button", name="Prepare the CSV file").click()
    page.get_by_text("Ready:").wait_for()  # Celery is eager here: the worker ran before the redirect
    problems += _page_is_sound(page, width, console_errors)
    shot(page, f"export-ready-{person.replace(' ', '-')}-{width}")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    download = download_info.value
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    job = ExportJob.objects.get()
    account_key, public_id = EXPORTERS[person]
    assert download.suggested_filename.startswith(f"{public_id}-messages-")
    visible = Message.objects.for_account(demo[account_key]).count()  # a customer's own; an agency's all
    assert rows[0][:2] == ["created_at", "message_id"] and len(rows) - 1 == job.written == visible > 3
    assert problems == [], "\n".join(problems)
