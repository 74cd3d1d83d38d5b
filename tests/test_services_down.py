"""The product keeps accepting mail when its helpers are down. The database is the only thing an accept
needs: a dead cache opens the rate limits (logged and counted, never shown to a client), a dead broker
leaves delivery to the periodic sweep. Neither may cost a request more than about a second."""

import json
import logging
import runpy
import smtplib
import socket
import threading
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from accounts import ratelimit
from accounts.models import Membership
from mailing.keys import create_api_key
from mailing.models import Message
from mailing.smtp import build_controller
from reseller import cache as reseller_cache
from reseller.celery import app as celery_app
from tests.factories import PASSWORD, MasterFactory, MembershipFactory, subaccount_with_owner
from tests.mailing.conftest import free_port

SETTINGS_FILE = Path(__file__).resolve().parent.parent / "reseller" / "settings.py"
# The tests' own cache gives up fast; the production values are tested from settings.py below.
QUICK_TIMEOUTS = {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}


@pytest.fixture
def refused_port():
    """A port nothing listens on: connections are refused at once (Redis not running)."""
    return free_port()


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers (a hung Redis, a half-open network path)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def _use_redis_cache_at(
    settings, port: int, backend: str = "django.core.cache.backends.redis.RedisCache"
) -> None:
    # Changing CACHES makes Django (django.test.signals.clear_cache_handlers) close the open cache
    # connections and rebuild `caches` from the new setting, for every thread; the settings fixture
    # restores the real cache the same way afterwards.
    settings.CACHES = {
        "default": {
            "BACKEND": backend,
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": QUICK_TIMEOUTS,
        }
    }
    with pytest.raises(Exception):  # noqa: B017 - any error will do: the rig must really be dead
        redis.Redis(
            port=port, socket_connect_timeout=0.2, socket_timeout=0.2, retry=Retry(NoBackoff(), 0)
        ).ping()


@pytest.fixture
def dead_cache(settings, refused_port):
    """The cache as configured (reseller.cache.FailOpenRedisCache), where nothing listens."""
    _use_redis_cache_at(settings, refused_port, backend="reseller.cache.FailOpenRedisCache")


@pytest.fixture
def dead_plain_cache(settings, refused_port):
    """Django's own Redis cache, which raises: the rate limits' own guard must still fail open."""
    _use_redis_cache_at(settings, refused_port)


@pytest.fixture
def sender(db):
    """A subaccount `shop` of master `agency`, and its API key."""
    master = MasterFactory(public_id="agency")
    MembershipFactory(account=master, role=Membership.Role.OWNER)
    sub, owner = subaccount_with_owner(master, public_id="shop", monthly_limit=100)
    _, key = create_api_key(actor=owner, account=sub, label="tests")
    return sub, key


def _api_send(client, key: str):
    body = {
        "key": key,
        "message": {"from_email": "orders@shop.test", "subject": "Hi", "text": "Hello",
                    "to": [{"email": "customer@example.test"}]},
    }  # fmt: skip
    return client.post("/api/1.0/messages/send.json", json.dumps(body), content_type="application/json")


# --- the cache ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["refused", "silent"])
def test_rate_limits_fail_open_within_the_cache_timeouts(request, settings, failure):
    # given a cache that refuses connections, or one that never answers
    _use_redis_cache_at(settings, request.getfixturevalue(f"{failure}_port"))
    failures_before = ratelimit.cache_failures()
    # when
    started = time.monotonic()
    first = ratelimit.hit("api-key:1", limit=1, window_seconds=60)
    second = ratelimit.hit("api-key:1", limit=1, window_seconds=60)  # over the limit, if it were counted
    over = ratelimit.exceeded("smtp-auth-fail:127.0.0.1", limit=0, window_seconds=60)
    elapsed = time.monotonic() - started
    # then every check answers "not limited", each within the cache's own timeouts, and is counted
    assert (first, second, over) == (True, True, False)
    assert elapsed < 1.5, f"three checks took {elapsed:.2f} s"
    assert ratelimit.cache_failures() == failures_before + 3


def test_a_dead_cache_is_logged_once_per_interval_not_once_per_check(dead_cache, caplog, monkeypatch):
    monkeypatch.setattr(reseller_cache, "_next_warning_at", 0.0)  # as in a process that has not warned yet
    with caplog.at_level(logging.WARNING, logger="reseller.cache"):
        for _ in range(20):
            ratelimit.hit("api-key:1", limit=5, window_seconds=60)
    (warning,) = [record for record in caplog.records if record.name == "reseller.cache"]
    assert warning.levelno == logging.WARNING
    assert "rate limits are open" in warning.getMessage()


def test_the_rate_limits_fail_open_with_any_backend(dead_plain_cache):
    failures_before = ratelimit.cache_failures()
    assert ratelimit.hit("api-key:1", limit=0, window_seconds=60)
    assert not ratelimit.exceeded("api-key:1", limit=0, window_seconds=60)
    assert ratelimit.cache_failures() == failures_before + 2


def test_the_configured_cache_is_the_fail_open_one(settings):
    if not settings.REDIS_URL:
        pytest.skip("no REDIS_URL: the embedded set-up uses a local-memory cache, which cannot fail")
    assert settings.CACHES["default"]["BACKEND"] == "reseller.cache.FailOpenRedisCache"


def test_a_working_cache_still_limits():
    assert [ratelimit.hit("api-key:2", limit=2, window_seconds=60) for _ in range(3)] == [True, True, False]
    assert ratelimit.exceeded("api-key:2", limit=2, window_seconds=60)


def test_an_api_send_is_accepted_with_the_cache_down(dead_cache, client, sender):
    sub, key = sender
    response = _api_send(client, key)
    assert response.status_code == 200, response.content
    (result,) = response.json()
    assert result["status"] in ("queued", "sent")
    assert Message.objects.get().account == sub


def test_a_wrong_api_key_is_still_answered_in_mandrills_shape_with_the_cache_down(dead_cache, client, sender):
    response = _api_send(client, "md-not-a-key")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["name"] == "Invalid_Key"


@pytest.fixture
def smtp_server():
    port = free_port()
    controller = build_controller(hostname="127.0.0.1", port=port, require_tls_for_auth=False)
    controller.start()
    yield port
    controller.stop()


@pytest.mark.django_db(transaction=True)  # the SMTP server reads the database from its own threads
def test_smtp_auth_and_send_work_with_the_cache_down(dead_cache, smtp_server, sender):
    sub, key = sender
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "orders@shop.test", "client@example.test", "Hi"
    message.set_content("Hello")
    with smtplib.SMTP("127.0.0.1", smtp_server, timeout=10) as client:
        code, _reply = client.login("shop", key)
        client.send_message(message)
    assert code == 235
    assert Message.objects.get().account == sub


@pytest.mark.django_db(transaction=True)
def test_smtp_never_shows_an_internal_error_with_the_cache_down(dead_cache, smtp_server, sender):
    with (
        smtplib.SMTP("127.0.0.1", smtp_server, timeout=10) as client,
        pytest.raises(smtplib.SMTPAuthenticationError) as refused,
    ):
        client.login("shop", "md-wrong-key")
    assert refused.value.smtp_code == 535, refused.value
    assert b"Error" not in refused.value.smtp_error and b"127.0.0.1" not in refused.value.smtp_error


def test_the_cache_configured_from_redis_url_gives_up_on_a_silent_redis_within_about_a_second(
    silent_port, monkeypatch
):
    # given the settings a deployment gets from REDIS_URL, with Redis hung
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{silent_port}/0")
    configured = runpy.run_path(str(SETTINGS_FILE))["CACHES"]["default"]
    from django.core.cache.backends.redis import RedisCache

    production_cache = RedisCache(configured["LOCATION"], {"OPTIONS": configured.get("OPTIONS", {})})
    outcome: list = []

    def read() -> None:
        started = time.monotonic()
        try:
            production_cache.get("probe")
        except Exception as exc:
            outcome.append((type(exc).__name__, time.monotonic() - started))

    # when a request reads the cache
    reader = threading.Thread(target=read, daemon=True)  # without a timeout it would wait for ever
    reader.start()
    reader.join(timeout=3)
    # then it gets an error (the rate limits fail open on it) within about the op timeout
    assert not reader.is_alive(), "the cache read was still waiting after 3 s: no socket timeout"
    ((error, seconds),) = outcome
    assert seconds < 1.5, (error, seconds)


# --- django-allauth's own rate limits ------------------------------------------------------------------


def test_logging_in_with_the_cache_down(dead_cache, client, db):
    user = MembershipFactory().user
    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302


# --- the broker --------------------------------------------------------------------------------------


@pytest.fixture
def dead_broker(refused_port):
    """Celery publishing to a broker where nothing listens. The app keeps its connection and producer
    pools once made, so it lets go of them around the change, as Celery itself does after a fork (kombu
    keeps one pool per broker address, so the live broker's pool is found again afterwards)."""
    conf = celery_app.conf
    previous = conf.broker_url

    def drop_pools() -> None:
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    drop_pools()
    conf.broker_url = f"redis://127.0.0.1:{refused_port}/0"
    yield
    drop_pools()
    conf.broker_url = previous


@pytest.mark.real_celery  # publish for real, not eagerly
@pytest.mark.django_db(transaction=True)  # so the accept's after-commit enqueue runs inside the request
def test_with_the_broker_down_an_api_send_is_answered_at_once_and_stored_queued(
    dead_broker, client, sender, caplog
):
    _sub, key = sender
    started = time.monotonic()
    response = _api_send(client, key)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.content
    assert response.json()[0]["status"] == "queued"
    assert elapsed < 2.0, f"the send was answered after {elapsed:.1f} s"
    assert Message.objects.get().status == Message.Status.QUEUED  # the sweep will enqueue it
    assert "the sweep will deliver them" in caplog.text


@pytest.mark.real_celery  # publish for real, not eagerly
def test_with_the_broker_down_a_product_email_is_sent_directly_not_lost(dead_broker, mailoutbox):
    from django.core.mail import EmailMessage

    from mailing.email_backend import CeleryEmailBackend

    invite = EmailMessage("Your invite", "Set your password", "no-reply@reseller.test", ["owner@acme.test"])
    assert CeleryEmailBackend(alias="default").send_messages([invite]) == 1
    assert [message.to for message in mailoutbox] == [["owner@acme.test"]]
