"""The project as an operator meets it: migrations, deploy checks, production start-up."""

import json
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
        if k
        not in {
            "DJANGO_ENV",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "DATABASE_URL",
            "SITE_URL",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
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


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "SITE_URL"])
def test_production_refuses_to_start_without_its_settings(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert f"set {missing} in the environment" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_logs_are_json_lines_with_the_exception():
    import json
    import logging
    import sys

    from reseller.log_format import JsonFormatter

    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("mailing.delivery").makeRecord(
            "mailing.delivery",
            logging.ERROR,
            __file__,
            1,
            "Message %s failed",
            ("abc",),
            sys.exc_info(),
            extra={"account": "acme"},
        )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "ERROR" and entry["logger"] == "mailing.delivery"
    assert entry["message"] == "Message abc failed" and entry["account"] == "acme"
    assert "ValueError: boom" in entry["exception"] and entry["time"].endswith("+00:00")


def test_production_answers_probes_and_scrapes_over_plain_http():
    # A load balancer and Prometheus reach the process itself, over HTTP; every page is redirected to HTTPS.
    script = (
        "from django.test import Client; c = Client(HTTP_HOST='mail.example.com'); "
        "print(*(c.get(path).status_code for path in ('/healthz', '/metrics', '/accounts/login/')))"
    )
    result = _manage("shell", "--no-imports", "-c", script, env={**PRODUCTION_ENV, "METRICS_TOKEN": "t" * 32})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == ["200", "401", "301"]  # /metrics: reached, and asks for the token


POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/reseller"
# Variables of this machine's environment that would change what the settings below are tested for.
SIZING_VARIABLES = {
    "REDIS_URL",
    "CACHE_TIMEOUT",
    "CACHE_CONNECT_TIMEOUT",
    "CONN_MAX_AGE",
    "DATABASE_POOL",
    "DATABASE_POOL_MIN",
    "DATABASE_POOL_MAX",
    "GUNICORN_THREADS",
    "WEB_CONCURRENCY",
    "SMTP_WORKER_THREADS",
}


def _setting(env: dict[str, str], setting: str = "DATABASES['default']") -> dict:
    """A setting (the default database's, unless told) as a process started with `env` sees it."""
    script = f"import json; from django.conf import settings; print(json.dumps(settings.{setting}))"
    clean_env = {k: v for k, v in os.environ.items() if k not in SIZING_VARIABLES}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
        cwd=ROOT,
        env={**{k: v for k, v in clean_env.items() if k not in PRODUCTION_ENV}, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_development_on_postgresql_closes_each_connection_after_its_request():
    # runserver starts a thread per request: a kept connection outlives its thread, and 120 requests
    # would hold 120 connections (PostgreSQL's default max_connections is 100).
    database = _setting({"DATABASE_URL": POSTGRES_URL})
    assert database["CONN_MAX_AGE"] == 0
    assert "pool" not in database["OPTIONS"]
    assert database["OPTIONS"]["connect_timeout"] > 0  # a black-holed server fails a request, not hangs it


def test_development_keeps_connections_when_asked_to():
    database = _setting({"DATABASE_URL": POSTGRES_URL, "CONN_MAX_AGE": "600"})
    assert database["CONN_MAX_AGE"] == 600


def test_production_sizes_each_process_pool_from_its_threads():
    database = _setting({**PRODUCTION_ENV, "GUNICORN_THREADS": "12", "WEB_CONCURRENCY": "3"})
    pool = database["OPTIONS"]["pool"]
    assert pool["max_size"] == 12  # one per thread: a thread holds one connection at a time
    assert pool["min_size"] <= pool["max_size"]
    assert database["CONN_MAX_AGE"] == 0  # the pool keeps the connections, not the threads


def test_production_pool_also_fits_the_smtp_server_threads_and_a_single_thread():
    database = _setting({**PRODUCTION_ENV, "GUNICORN_THREADS": "1", "SMTP_WORKER_THREADS": "6"})
    assert database["OPTIONS"]["pool"]["max_size"] == 6
    database = _setting({**PRODUCTION_ENV, "GUNICORN_THREADS": "1", "SMTP_WORKER_THREADS": "1"})
    assert database["OPTIONS"]["pool"] == {**database["OPTIONS"]["pool"], "min_size": 1, "max_size": 1}


def test_a_hung_redis_cache_costs_a_request_about_a_second():
    cache = _setting({"REDIS_URL": "redis://127.0.0.1:6379/0"}, "CACHES['default']")
    assert cache["BACKEND"].endswith("RedisCache")
    assert 0 < cache["OPTIONS"]["socket_connect_timeout"] <= 2
    assert 0 < cache["OPTIONS"]["socket_timeout"] <= 2


def test_gunicorn_runs_the_threads_the_pool_was_sized_for():
    env = {**os.environ, "WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "6"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:reseller.gunicorn",
            "--print-config",
            "reseller.wsgi",
        ],
        cwd=ROOT,
        env={**env, **PRODUCTION_ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = {
        name.strip(): value.strip()
        for name, _, value in (line.partition(" = ") for line in result.stdout.splitlines())
    }
    assert (config["workers"], config["threads"], config["worker_class"]) == ("3", "6", "gthread")
