"""Every page, for every role, at 1280 and 390 px: axe-core finds no serious or critical violation, the
page never scrolls sideways on a phone, the browser reports no error, and a screenshot of it is saved
(docs/screenshots/<page>-<width>.png) to be looked at.

axe-core comes from npm (package.json's devDependencies, `npm ci`); Playwright adds it to each page as
an init script, which the page's CSP does not apply to, so the CSP stays on while the check runs."""

from pathlib import Path

import pytest

from tests.e2e.conftest import DEMO_PASSWORD, PEOPLE, PUBLIC_PAGES, log_in, pages_of

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = {"1280": {"width": 1280, "height": 800}, "390": {"width": 390, "height": 844}}
BLOCKING = ("serious", "critical")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not AXE.exists(), reason="needs axe-core from npm (`npm ci`; make install-dev does it)"
    ),
]


def _violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now, one line each."""
    result = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations'],"
        " runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
    )
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(" ".join(node["target"]) for node in violation["nodes"][:3])
        for violation in result["violations"]
        if violation["impact"] in BLOCKING
    ]


def _pages(person: str, demo: dict) -> dict[str, str]:
    return PUBLIC_PAGES if person == "visitor" else pages_of(person, demo)


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("person", [*PEOPLE, "visitor"])
def test_every_page_passes_axe_fits_and_logs_no_error(page, live_server, demo, person, width, shot,
                                                      console_errors):  # fmt: skip
    page.add_init_script(path=str(AXE))
    page.set_viewport_size(WIDTHS[width])
    if person != "visitor":
        log_in(page, live_server.url, PEOPLE[person], DEMO_PASSWORD)
    problems: list[str] = []
    for name, path in _pages(person, demo).items():
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")  # the partials htmx loads (latest messages, sending)
        problems += [f"{path} at {width}px: {finding}" for finding in _violations(page)]
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > WIDTHS[width]["width"]:
            problems.append(f"{path} at {width}px scrolls sideways ({scroll_width}px wide)")
        problems += [f"{path} at {width}px: console: {error}" for error in console_errors]
        console_errors.clear()
        shot(page, f"{name}-{width}")
    assert problems == [], "\n".join(problems)
