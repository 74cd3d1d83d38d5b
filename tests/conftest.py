import os
import socket

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings

from reseller.celery import app as celery_app
from tests.dns_server import LocalDNS

IN_CI = bool(os.environ.get("CI"))


def pytest_report_header(config):
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    redis = settings.REDIS_URL or "none (local-memory cache, Celery eager)"
    lines = [f"database: {engine}; redis: {redis}"]
    if engine == "sqlite3":
        lines.append(
            "SQLite: tests that need PostgreSQL or Redis are skipped. Set DATABASE_URL and REDIS_URL to run them."
        )
    return lines


def pytest_configure(config):
    if IN_CI and (
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql" or not settings.REDIS_URL
    ):
        raise pytest.UsageError("CI must run against PostgreSQL and Redis: set DATABASE_URL and REDIS_URL.")


def requires_postgres():
    return pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL (set DATABASE_URL=postgres://...)",
    )


def requires_redis():
    return pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (set REDIS_URL=redis://...)")


@pytest.fixture(autouse=True)
def _any_sending_domain(request, settings):
    """Most tests send from made-up domains; the tests of domain verification turn the rule back on."""
    settings.REQUIRE_VERIFIED_SENDING_DOMAIN = "verified_domains_only" in request.keywords


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Real hashing costs ~0.2 s a user; tests make hundreds of users and check behaviour, not strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _celery_eager_and_fresh_cache(request):
    """Tasks run in-process unless a test starts a real worker; rate-limit counters (shared and this
    process's own tallies) and the process's cached API keys, senders and sending domains never leak between tests."""
    from django.core.cache import cache

    from accounts import ratelimit
    from mailing.domains import forget_allowed_domains
    from mailing.keys import key_cache
    from mailing.sending import named_senders
    from mailing.smtp import authenticated_accounts

    ratelimit.forget_all()
    key_cache.clear()
    named_senders.clear()
    authenticated_accounts.clear()
    forget_allowed_domains()
    eager = "real_celery" not in request.keywords
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = eager
    cache.clear()
    yield
    celery_app.conf.task_always_eager = previous


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RecordingHandler:
    """A local SMTP server's handler: records what it receives; `replies` scripts refusals (e.g. 451 once)."""

    def __init__(self):
        self.received = []
        self.replies = []
        self.refuse_recipients: dict[str, str] = {}  # address -> the reply its RCPT gets

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse_recipients:
            return self.refuse_recipients[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.replies:
            return self.replies.pop(0)
        self.received.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_sink(settings):
    """A real SMTP server on loopback, made the delivery mailer's relay."""
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    settings.MAILERS = {
        **settings.MAILERS,
        "delivery": {
            "BACKEND": "mailing.relay.RelayEmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 5},
        },
    }
    yield handler
    controller.stop()


@pytest.fixture
def dns_server(settings):
    """A DNS server on loopback that the product's resolver asks (records set by the test)."""
    server = LocalDNS()
    settings.DNS_RESOLVER_NAMESERVERS = ["127.0.0.1"]
    settings.DNS_RESOLVER_PORT = server.port
    settings.DNS_RESOLVER_TIMEOUT = 0.5
    yield server
    server.close()
