"""/healthz and /readyz as a load balancer or an orchestrator meets them: no login, no session, short
answers, and a failed dependency named without saying where it lives or how it failed."""

import json
import socket
import threading
import time

import pytest

from reseller.celery import app as celery_app
from tests.mailing.conftest import free_port

# Hung or dead dependencies must not hold a probe for long: each check has a ~1 s deadline.
QUICK = 2.5


def _dead_redis_url() -> tuple[str, int]:
    port = free_port()  # bound and released: nothing listens there now
    return f"redis://127.0.0.1:{port}/0", port


def _redis_cache(location: str, backend: str = "django.core.cache.backends.redis.RedisCache") -> dict:
    # the client's own timeouts only bound the test if the probe's deadline were broken
    options = {"socket_connect_timeout": 5, "socket_timeout": 5}
    return {
        "default": {
            "BACKEND": backend,
            "LOCATION": location,
            "OPTIONS": options,
        }
    }


@pytest.fixture
def broker_at():
    """Point the Celery app's broker somewhere else for one test."""
    previous = celery_app.conf.broker_url

    def point(url: str) -> None:
        celery_app.conf.broker_url = url
        celery_app._pool = None

    yield point
    celery_app.conf.broker_url = previous
    celery_app._pool = None


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never says a word (a hung Redis, say)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    for conn in accepted:
        conn.close()
    listener.close()


def _assert_reveals_nothing(body: str, *, port: int) -> None:
    # one word per dependency, from a fixed set, and nothing else
    states = json.loads(body)
    assert set(states) == {"database", "cache", "broker"}
    assert set(states.values()) <= {"ok", "failed", "timeout"}
    for secret in ("127.0.0.1", "localhost", "redis", str(port), "Error", "refused", "Traceback"):
        assert secret.lower() not in body.lower()


def test_healthz_answers_ok_without_touching_the_database(client):
    # no django_db mark: any query would fail the test
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"
    assert "Set-Cookie" not in response.headers


@pytest.mark.django_db
def test_healthz_and_readyz_need_no_login_even_with_login_required_middleware(client, settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.contrib.auth.middleware.LoginRequiredMiddleware"]
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


@pytest.mark.django_db
def test_readyz_is_ok_when_database_cache_and_broker_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"database": "ok", "cache": "ok", "broker": "ok"}
    assert "Set-Cookie" not in response.headers


@pytest.mark.django_db
@pytest.mark.parametrize(
    "backend", ["django.core.cache.backends.redis.RedisCache", "reseller.cache.FailOpenRedisCache"]
)
def test_readyz_names_a_dead_cache_quickly_and_nothing_else(client, settings, backend):
    url, port = _dead_redis_url()
    settings.CACHES = _redis_cache(url, backend)
    started = time.monotonic()
    response = client.get("/readyz")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["cache"] == "failed"
    assert response.json()["database"] == "ok"
    assert response.json()["broker"] == "ok"
    assert elapsed < QUICK
    _assert_reveals_nothing(response.content.decode(), port=port)


@pytest.mark.django_db
def test_readyz_names_a_hung_cache_within_its_deadline(client, settings, silent_server):
    settings.CACHES = _redis_cache(f"redis://127.0.0.1:{silent_server}/0")
    started = time.monotonic()
    response = client.get("/readyz")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "cache": "timeout", "broker": "ok"}
    assert elapsed < QUICK
    _assert_reveals_nothing(response.content.decode(), port=silent_server)


@pytest.mark.django_db
def test_readyz_names_a_dead_broker_quickly_and_nothing_else(client, broker_at):
    url, port = _dead_redis_url()
    broker_at(url)
    started = time.monotonic()
    response = client.get("/readyz")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    body = response.json()
    assert body["broker"] == "failed"
    assert body["database"] == "ok"
    assert body["cache"] == "ok"
    assert elapsed < QUICK
    _assert_reveals_nothing(response.content.decode(), port=port)


@pytest.mark.django_db
def test_readyz_names_a_hung_broker_within_its_deadline(client, broker_at, silent_server):
    broker_at(f"redis://127.0.0.1:{silent_server}/0")
    started = time.monotonic()
    response = client.get("/readyz")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["broker"] == "timeout"
    assert elapsed < QUICK


@pytest.mark.django_db
def test_readyz_answers_in_json_with_one_word_per_dependency(client):
    response = client.get("/readyz")
    assert response.headers["Content-Type"].startswith("application/json")
    assert set(json.loads(response.content)) == {"database", "cache", "broker"}
