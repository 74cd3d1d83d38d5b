"""SMTP submission: how most applications (a CMS, a shop, a CRM) send. aiosmtpd speaks SMTP; every
message goes to the same accept path as the API, so limits, pauses, archiving and alerts behave alike.

AUTH: the username is the account's id (what `users/info` calls `username`), the password one of its API
keys. A master's credentials may send as a subaccount with `X-MC-Subaccount`, as Mandrill's SMTP does.
The answer is given before the transaction ends: nothing is answered 250 unless it is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from accounts import ratelimit
from accounts.errors import AccountClosed, DomainError, UnknownSubaccount, ValidationError
from accounts.models import Account
from reseller.process_cache import TTLCache

from . import raw
from .keys import InvalidKey, authenticate_key
from .sending import accept_messages, resolve_sender

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sender:
    """Who authenticated on a connection."""

    account_id: int
    username: str


class Refusal(Exception):
    """An SMTP reply that ends the transaction with a refusal."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


# --- the synchronous side: database work, run in worker threads ----------------------------------------


def _run_in_django(fn, *args):
    """ORM work happens in plain threads (Django refuses it inside the server's event loop). Like a
    request, each piece of work starts and ends with close_old_connections (CONN_MAX_AGE applies)."""
    close_old_connections()
    try:
        return fn(*args)
    finally:
        close_old_connections()


def check_credentials(username: str, password: str) -> Sender | None:
    """The sender behind AUTH: the password is an API key of the account whose id is the username."""
    try:
        api_key = authenticate_key(password)
    except InvalidKey:
        return None
    if api_key.account.public_id != username:
        return None
    return Sender(account_id=api_key.account_id, username=username)


REFUSALS = {
    "hourly-quota-exhausted": "550 5.7.1 Rejected, not queued: hourly-quota-exhausted ({name} has used its hourly limit)",
    "monthly-limit-reached": "550 5.7.1 Rejected, not queued: monthly-limit-reached ({name} has used its monthly limit)",
    "unsigned": "550 5.7.1 Rejected: unsigned (the From domain of {sender} is not a verified sending domain)",
}


def refusal_for(results, *, account: Account, sender: str) -> str:
    """One SMTP reply for a message no recipient of which was accepted (the reasons are Mandrill's)."""
    reasons = [result.reject_reason for result in results if result.reject_reason]
    if reasons and reasons[0] in REFUSALS:
        return REFUSALS[reasons[0]].format(name=account.name, sender=sender)
    return "550 5.1.3 No valid recipient address"


def refusal_for_error(exc: DomainError) -> Refusal:
    """The one place a domain error becomes an SMTP reply: 554 where the account can never send,
    550 where this message cannot (both permanent: a client must not retry them)."""
    if isinstance(exc, AccountClosed):
        return Refusal(f"554 5.7.1 {exc.message}")
    if isinstance(exc, UnknownSubaccount):
        return Refusal(f"550 5.1.0 {exc.message}")
    if isinstance(exc, ValidationError):  # the message itself: its headers, its content
        return Refusal(f"550 5.6.0 {exc.message}")
    return Refusal(f"550 5.7.1 {exc.message}")


# The accounts that logged in lately, by id, for API_KEY_CACHE_SECONDS: a client sends many messages on
# one connection, and each would otherwise read its account again. A stale entry cannot send wrongly:
# the accept path reads the sender's row again inside its transaction (deleted, renewed or closed since).
authenticated_accounts: TTLCache[Account] = TTLCache(lambda: settings.API_KEY_CACHE_SECONDS)


def _authenticated_account(sender: Sender) -> Account:
    account = authenticated_accounts.get(sender.account_id)
    if account is None:
        try:
            account = Account.objects.select_related("parent").get(pk=sender.account_id)
        except Account.DoesNotExist:
            raise Refusal("554 5.7.1 This account no longer exists") from None
        authenticated_accounts.put(sender.account_id, account)
    return account


def submit(sender: Sender, mail_from: str, rcpt_tos: list[str], data: bytes) -> str:
    """Parse once, hand to the accept path, and say how it went in one SMTP reply."""
    message = raw.parse(data)
    authenticated = _authenticated_account(sender)
    try:
        options = raw.mc_options(message)
        account = resolve_sender(account=authenticated, subaccount_id=options.subaccount)
        outgoing = raw.outgoing(message, envelope_from=mail_from, recipients=rcpt_tos, options=options)
        results = accept_messages(account=account, message=outgoing)
    except DomainError as exc:
        raise refusal_for_error(exc) from None
    accepted = [result for result in results if result.status in ("queued", "sent")]
    if not accepted:
        raise Refusal(refusal_for(results, account=account, sender=message.get("From", mail_from)))
    ids = ",".join(result.id for result in accepted if result.id)
    return f"250 2.0.0 Ok: queued as {ids}"[:500]


# --- the asynchronous side: aiosmtpd -------------------------------------------------------------------


class Authenticator:
    """AUTH PLAIN/LOGIN against API keys; failures are throttled per IP through the shared cache."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self.executor = executor

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        # aiosmtpd answers an authenticator's exception with its type and text ("500 Error: (…) Error 111
        # connecting to …"): never let one out, a client must learn nothing of our insides.
        try:
            return self._authenticate(session, auth_data)
        except Exception:
            logger.exception("SMTP AUTH failed on our side")
            return AuthResult(
                success=False, handled=False, message="454 4.7.0 Temporary authentication failure; try later"
            )

    def _authenticate(self, session, auth_data) -> AuthResult:
        ip = session.peer[0] if session.peer else "unknown"
        throttle_key = f"smtp-auth-fail:{ip}"
        limit = settings.SMTP_FAILED_AUTH_PER_MINUTE
        if ratelimit.exceeded(throttle_key, limit=limit, window_seconds=60):
            return AuthResult(
                success=False, handled=False, message="454 4.7.0 Too many failed logins; try later"
            )
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        username = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        # aiosmtpd calls authenticators synchronously; the lookup is one indexed query.
        sender = self.executor.submit(_run_in_django, check_credentials, username, password).result()
        if sender is None:
            ratelimit.hit(throttle_key, limit=limit, window_seconds=60)
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=sender)


class SubmissionHandler:
    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self.executor = executor

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if not isinstance(session.auth_data, Sender):
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= settings.SMTP_MAX_RECIPIENTS:
            return f"452 4.5.3 Too many recipients (at most {settings.SMTP_MAX_RECIPIENTS} per message)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self.executor,
                _run_in_django,
                submit,
                session.auth_data,
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.original_content or envelope.content,
            )
        except Refusal as refusal:
            return refusal.reply
        except DatabaseError:
            logger.exception("SMTP submission failed on the database")
            return "451 4.3.0 Temporary problem storing your message; please try again"
        except Exception:
            logger.exception("SMTP submission failed")
            return "451 4.3.0 Temporary problem; please try again"


class SubmissionSMTP(SMTP):
    """One connection. Refuses a client address that already holds too many connections."""

    def __init__(self, handler, *, connections: Counter, lock: threading.Lock, **kwargs):
        super().__init__(handler, **kwargs)
        self.connections, self.lock = connections, lock
        self._counted_ip = None

    def connection_made(self, transport):
        ip = (transport.get_extra_info("peername") or ("unknown",))[0]
        with self.lock:
            self.connections[ip] += 1
            too_many = self.connections[ip] > settings.SMTP_MAX_CONNECTIONS_PER_IP
        self._counted_ip = ip
        if too_many:
            transport.write(b"421 4.7.0 Too many connections from your address\r\n")
            transport.close()
            return
        super().connection_made(transport)

    def connection_lost(self, error):
        with self.lock:
            self.connections[self._counted_ip] -= 1
        super().connection_lost(error)


class SubmissionController(Controller):
    """One server: its connection counts are its own (per process; a load balancer limits globally).
    With `reuse_port`, sibling processes listen on the same port and the kernel spreads connections
    among them (SO_REUSEPORT), as gunicorn's workers share theirs: one process per core."""

    # With siblings on the port, the kernel may hand the start-up probe to one of them: probe again.
    START_PROBES = 50

    def __init__(self, *args, executor: ThreadPoolExecutor, reuse_port: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.executor = executor
        self.reuse_port = reuse_port
        self.connections: Counter = Counter()
        self.lock = threading.Lock()

    def _create_server(self):
        # aiosmtpd's own, plus reuse_port (its subclasses are meant to override this).
        return self.loop.create_server(
            self._factory_invoker,
            host=self.hostname,
            port=self.port,
            ssl=self.ssl_context,
            reuse_port=self.reuse_port or None,
        )

    def _trigger_server(self):
        for _ in range(self.START_PROBES if self.reuse_port else 1):
            super()._trigger_server()
            if self._factory_invoked.wait(0.05):
                return

    def stop(self, *args, **kwargs):
        super().stop(*args, **kwargs)
        # Every worker thread closes its database connection: the barrier makes each take one task.
        workers = self.executor._max_workers
        barrier = threading.Barrier(workers)

        def close_connection():
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=5)
            connection.close()

        for _ in range(workers):
            self.executor.submit(close_connection)
        self.executor.shutdown(wait=True)

    def factory(self):
        return SubmissionSMTP(self.handler, connections=self.connections, lock=self.lock, **self.SMTP_kwargs)


def build_controller(
    *, hostname: str, port: int, tls_context=None, require_tls_for_auth: bool, reuse_port: bool = False
) -> Controller:
    executor = ThreadPoolExecutor(max_workers=settings.SMTP_WORKER_THREADS, thread_name_prefix="smtp-db")
    if not require_tls_for_auth:
        # The embedded default on loopback, chosen knowingly (production refuses to start without TLS).
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning, "aiosmtpd")
    return SubmissionController(
        SubmissionHandler(executor),
        executor=executor,
        reuse_port=reuse_port,
        hostname=hostname,
        port=port,
        authenticator=Authenticator(executor),
        auth_require_tls=require_tls_for_auth,
        auth_required=True,
        tls_context=tls_context,
        require_starttls=tls_context is not None and require_tls_for_auth,
        data_size_limit=settings.SMTP_MAX_MESSAGE_BYTES,
        server_hostname=settings.SMTP_HOSTNAME,
        ident="Reseller Dashboard ESMTP",
    )
