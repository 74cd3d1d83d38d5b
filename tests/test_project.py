"""The project as an operator meets it: migrations, deploy checks, production start-up."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "a-very-long-and-random-secret-key-for-the-deploy-check-0123456789abcdef",
    "ALLOWED_HOSTS": "mail.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/reseller",
    "SITE_URL": "https://mail.example.com",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_ENV", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db
def test_migrations_are_committed():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_deploy_check_is_clean_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL"])
def test_production_refuses_to_start_without_its_settings(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert f"set {missing} in the environment" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_answers_probes_and_scrapes_over_plain_http():
    # A load balancer and Prometheus reach the process itself, over HTTP; every page is redirected to HTTPS.
    script = (
        "from django.test import Client; c = Client(HTTP_HOST='mail.example.com'); "
        "print(*(c.get(path).status_code for path in ('/healthz', '/metrics', '/accounts/login/')))"
    )
    result = _manage("shell", "--no-imports", "-c", script, env={**PRODUCTION_ENV, "METRICS_TOKEN": "t" * 32})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == ["200", "401", "301"]  # /metrics: reached, and asks for the token
