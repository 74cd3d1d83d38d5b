"""The bounce listener: an SMTP server (aiosmtpd, `manage.py bouncesmtpd`) that receives the delivery
status notifications and complaint reports sent to our VERP addresses, ``bounces+<token>@BOUNCE_DOMAIN``.

Anyone on the internet may write to it, so it takes little and trusts nothing: no AUTH (reporting MTAs
have no credentials), RCPT only for addresses at BOUNCE_DOMAIN (others 550: it relays nothing), at most
BOUNCE_MAX_RECIPIENTS per transaction, and reports up to BOUNCE_MAX_REPORT_BYTES (SIZE is announced; a
larger DATA is 552). What a report says is checked by mailing/deliverability/bounces.process_report.

Reports are processed while the MTA waits, as the submission server does, not stored for Celery: one
report is a parse bounded in bytes and time (mailing/bounce_parsing.py) and a handful of indexed queries,
so a worker thread answers in milliseconds, and the MTA that sent it is the queue. A database fault
answers 451 and the MTA retries later; nothing is lost and no second store of raw reports is needed.
Every report that is read is answered 250, recorded or dropped: a 5xx would make the reporting MTA send a
bounce of the bounce, and telling a forger which tokens are good helps nobody.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import DatabaseError

from .deliverability.bounces import process_report
from .smtp import SubmissionController, _run_in_django

logger = logging.getLogger(__name__)


def is_bounce_address(address: str) -> bool:
    """Whether RCPT `address` is one of ours: any local part at BOUNCE_DOMAIN (the token is checked once
    the report is read; a fixed complaints address at the same domain is welcome too)."""
    domain = settings.BOUNCE_DOMAIN.lower().rstrip(".")
    local, at, host = (address or "").strip().strip("<>").rpartition("@")
    return bool(domain and at and local and host.lower().rstrip(".") == domain)


def read_reports(rcpt_tos: list[str], data: bytes) -> list[str]:
    """Process one report once per envelope recipient (each names its own message)."""
    return [process_report(data, envelope_recipient=rcpt) for rcpt in rcpt_tos]


class BounceHandler:
    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self.executor = executor

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not is_bounce_address(address):
            return "550 5.1.1 No such mailbox here: this server only takes bounce reports"
        if len(envelope.rcpt_tos) >= settings.BOUNCE_MAX_RECIPIENTS:
            return f"452 4.5.3 Too many recipients (at most {settings.BOUNCE_MAX_RECIPIENTS} per report)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        loop = asyncio.get_running_loop()
        data = envelope.original_content or envelope.content or b""
        try:
            await loop.run_in_executor(
                self.executor, _run_in_django, read_reports, list(envelope.rcpt_tos), bytes(data)
            )
        except DatabaseError:
            logger.exception("A bounce report could not be recorded (database)")
            return "451 4.3.0 Temporary problem recording the report; please try again"
        except Exception:
            logger.exception("A bounce report could not be processed")
            return "451 4.3.0 Temporary problem; please try again"
        return "250 OK: report received"


def build_controller(*, hostname: str, port: int) -> SubmissionController:
    """The listener: the submission server's connection limits and orderly stop, none of its AUTH."""
    executor = ThreadPoolExecutor(max_workers=settings.BOUNCE_WORKER_THREADS, thread_name_prefix="bounce-db")
    return SubmissionController(
        BounceHandler(executor),
        executor=executor,
        hostname=hostname,
        port=port,
        data_size_limit=settings.BOUNCE_MAX_REPORT_BYTES,
        server_hostname=settings.SMTP_HOSTNAME,
        ident="Reseller Dashboard bounce listener",
    )
