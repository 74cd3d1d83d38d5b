"""A password-reset link is single use even when its form is posted many times at once. allauth checks
the link when the page is dispatched and sets the password later, after validating it (and, in
production, hashing it slowly): every post that passed the check in that window used to set its own
password, and the last one won."""

import re
import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from tests.conftest import requires_postgres
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)

RACERS = 10


class WaitForTheOtherRacers:
    """A password validator that holds each post until all racers have reached it, that is until every
    one of them has passed allauth's link check. This forces the worst interleaving on every run,
    instead of hoping the scheduler finds it (with the tests' fast hasher it often does not)."""

    def __init__(self, barrier: threading.Barrier) -> None:
        self.barrier = barrier

    def validate(self, password, user=None) -> None:
        self.barrier.wait(timeout=10)

    def get_help_text(self) -> str:
        return ""


def _reset_link_path(email: str, mailoutbox) -> str:
    """The path of the link in allauth's reset email, requested through the reset form as a user would."""
    response = Client().post("/accounts/password/reset/", {"email": email})
    assert response.status_code == 302
    (message,) = mailoutbox
    return re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+/)", message.body).group(1)


def _new_password(racer: int) -> str:
    return f"racer-{racer}-chose-this-secret"


@requires_postgres()
def test_ten_simultaneous_posts_of_one_reset_link_set_the_password_once(mailoutbox, settings):
    # given a reset link, opened in ten browsers: each has the key in its session and the form's address
    user = MembershipFactory().user
    path = _reset_link_path(user.email, mailoutbox)
    browsers = []
    for _ in range(RACERS):
        browser = Client()
        opened = browser.get(path)
        assert opened.status_code == 302, "the link should be valid before anyone uses it"
        browsers.append((browser, opened["Location"]))
    settings.AUTH_PASSWORD_VALIDATORS = [
        *settings.AUTH_PASSWORD_VALIDATORS,
        {
            "NAME": f"{__name__}.WaitForTheOtherRacers",
            "OPTIONS": {"barrier": threading.Barrier(RACERS)},
        },
    ]

    # when all ten submit a different new password at the same moment
    start = threading.Barrier(RACERS)
    responses: list = [None] * RACERS
    errors: list[BaseException] = []

    def submit(racer: int) -> None:
        browser, form_path = browsers[racer]
        password = _new_password(racer)
        try:
            start.wait(timeout=10)
            responses[racer] = browser.post(form_path, {"password1": password, "password2": password})
        except BaseException as exc:  # reported below: a thread's exception would otherwise vanish
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(racer,)) for racer in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    assert not errors, errors

    # then exactly one post changed the password, and the password is that one's
    done = reverse("account_reset_password_from_key_done")
    winners = [r for r, resp in enumerate(responses) if resp.status_code == 302 and resp["Location"] == done]
    assert len(winners) == 1, f"{len(winners)} of {RACERS} posts of one link changed the password"
    user.refresh_from_db()
    assert user.check_password(_new_password(winners[0]))
    # and every other post was told plainly that the link no longer works (no error page)
    for racer, response in enumerate(responses):
        if racer != winners[0]:
            assert response.status_code == 200, (racer, response.status_code)
            assert b"This link no longer works" in response.content


def test_the_link_works_once_when_used_alone(mailoutbox):
    user = MembershipFactory().user
    path = _reset_link_path(user.email, mailoutbox)
    browser = Client()
    form_path = browser.get(path)["Location"]
    password = _new_password(0)

    first = browser.post(form_path, {"password1": password, "password2": password})
    second = browser.post(form_path, {"password1": "another-long-secret", "password2": "another-long-secret"})

    assert first["Location"] == reverse("account_reset_password_from_key_done")
    assert second.status_code == 200
    assert b"This link no longer works" in second.content
    user.refresh_from_db()
    assert user.check_password(password)
