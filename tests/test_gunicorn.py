"""The operator's endpoints under the real server: gunicorn, production settings, the database pool,
several workers sharing their counts through PROMETHEUS_MULTIPROC_DIR."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import free_port, requires_postgres, requires_redis
from tests.test_project import PRODUCTION_ENV

pytestmark = [requires_postgres(), requires_redis()]
ROOT = Path(__file__).resolve().parent.parent
TOKEN = "m" * 40


def _get(url: str, **headers) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def gunicorn(tmp_path):
    port = free_port()
    database = settings.DATABASES["default"]
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CI", "PYTEST_CURRENT_TEST")
    } | PRODUCTION_ENV | {
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT'] or 5432}/{database['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
    }  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:reseller.gunicorn", "reseller.wsgi"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if _get(f"{base}/healthz")[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        server.kill()
        pytest.fail("gunicorn did not start: " + server.stderr.read().decode()[-2000:])
    yield base
    server.terminate()
    server.wait(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_readyz_and_metrics_answer_under_gunicorn(gunicorn):
    status, body = _get(f"{gunicorn}/readyz")
    assert status == 200, body
    assert json.loads(body) == {"database": "ok", "cache": "ok", "broker": "ok"}
    assert _get(f"{gunicorn}/metrics")[0] == 401
    status, body = _get(f"{gunicorn}/metrics", Authorization=f"Bearer {TOKEN}")
    assert status == 200 and "mail_queue_depth" in body and "mail_accepted_total" in body


@pytest.mark.django_db(transaction=True)
def test_the_api_answers_under_gunicorn_without_the_pages_stack(gunicorn):
    from accounts.models import Membership
    from mailing.keys import create_api_key
    from tests.factories import MasterFactory, MembershipFactory

    master = MasterFactory()
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    _, key = create_api_key(actor=owner, account=master, label="gunicorn")
    request = urllib.request.Request(
        f"{gunicorn}/api/1.0/users/ping2.json", data=json.dumps({"key": key}).encode(), method="POST",
        headers={"Content-Type": "application/json", "X-Forwarded-Proto": "https"},  # as from the load balancer
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
        assert json.loads(body) == {"PING": "PONG!"}
        assert response.headers.get("Content-Length") == str(len(body))  # not chunked
        assert response.headers.get("Set-Cookie") is None
        assert response.headers.get("Content-Security-Policy") is None
        assert response.headers.get("Strict-Transport-Security")  # the security middleware still runs
