"""CSV exports of the message log and the suppression list. A list of at most EXPORT_INLINE_MAX rows
downloads at once (streamed); a larger one becomes an ExportJob that a worker writes to the exports
storage, reporting its progress, so no request waits minutes on a million rows and a dropped connection
loses nothing. The job keeps the page's query and the reader's time zone, and replays them through the
same selectors: the file holds exactly the rows the page listed, read from the account the job belongs
to (a master's ?account= is checked again, by the same rule as the page)."""

from __future__ import annotations

import logging
import tempfile
import time
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from accounts import emails
from accounts.errors import ValidationError
from accounts.models import Account, User
from accounts.validation import clean_time_zone

from . import selectors
from .deliverability import suppression
from .models import ExportJob

logger = logging.getLogger(__name__)

# How often the worker writes its progress (whichever comes first).
PROGRESS_EVERY_ROWS = 5_000
PROGRESS_EVERY_SECONDS = 1.0
# A job queued this long was lost on its way to a worker (the broker dropped it): enqueue it again.
LOST_AFTER = timedelta(minutes=2)
# A job running this long without finishing had its worker killed under it.
STALLED_AFTER = timedelta(hours=1)


class ExportRefused(Exception):
    """The export cannot start: the message says why, in words for the page."""


@dataclass(frozen=True)
class Export:
    rows: QuerySet  # what is counted for the progress bar
    lines: Iterator[str]  # the CSV, header first, one line at a time
    owner: Account  # whose data it is (a master may export a subaccount's suppressions)


def _messages(account: Account, query: Mapping[str, str]) -> Export:
    filters = selectors.MessageFilters.from_query(query)
    return Export(
        rows=selectors.messages_for(account, filters),
        lines=selectors.messages_csv(account, filters),
        owner=account,
    )


def _suppressions(account: Account, query: Mapping[str, str]) -> Export:
    raw = query.get("account", "")
    try:
        owner = suppression.list_owner(account, int(raw) if raw else None)
    except ValueError:
        raise Account.DoesNotExist("No such list.") from None
    filters = suppression.SuppressionFilters.from_query(query)
    return Export(
        rows=suppression.filtered_suppressions(owner, filters),
        lines=suppression.suppressions_csv(owner, filters),
        owner=owner,
    )


EXPORTERS = {ExportJob.Kind.MESSAGES: _messages, ExportJob.Kind.SUPPRESSIONS: _suppressions}


def export_for(account: Account, kind: str, query: Mapping[str, str]) -> Export:
    """The rows and CSV lines of `kind` for `account` as the list page filters them. Raises
    Account.DoesNotExist for a list the account may not see, ValueError for an unknown kind."""
    try:
        exporter = EXPORTERS[ExportJob.Kind(kind)]
    except ValueError:
        raise ValueError(f"There is no {kind!r} export.") from None
    return exporter(account, query)


def file_name(owner: Account, kind: str, day) -> str:
    """What the downloaded file is called: whose, what and from when."""
    return f"{owner.public_id}-{kind}-{day:%Y-%m-%d}.csv"


def fits_inline(rows: QuerySet) -> tuple[bool, int]:
    """Whether `rows` is small enough to download at once, and how many it holds (counted no further than
    one past the limit, so a million-row list costs a bounded count)."""
    counted = selectors.capped_count(rows, settings.EXPORT_INLINE_MAX)
    return counted <= settings.EXPORT_INLINE_MAX, counted


def start_export(
    *, actor: User, account: Account, kind: str, query: Mapping[str, str], time_zone: str, notify: bool = True
) -> ExportJob:
    """Record an export of the list `kind` as `query` filters it (tasks.start_export hands it to a
    worker); with `notify`, the requester gets an email when it ends. The list is checked now, so a
    refusal is answered on the page rather than by a failed job: raises Account.DoesNotExist (a list the
    account may not see) or ValueError (an unknown kind)."""
    export_for(account, kind, query)  # builds querysets only: nothing is read yet
    return ExportJob.objects.create(
        account=account, requested_by=actor, notify=notify, kind=kind, time_zone=_known_zone(time_zone),
        query={name: str(value)[:500] for name, value in query.items() if name != "page"},
    )  # fmt: skip


def _known_zone(name: str) -> str:
    """The requester's zone as the profile page accepts them (validation.clean_time_zone), else UTC."""
    try:
        return clean_time_zone(name)
    except ValidationError:
        return "UTC"


def run_export(job_id: int) -> ExportJob:
    """Write the job's CSV to the exports storage, counting rows as it goes. Claimed with a conditional
    UPDATE, so a task delivered twice writes the file once. A failure is recorded on the job (the page
    says so and offers to start again); nothing half-written is kept."""
    claimed = ExportJob.objects.filter(pk=job_id, state=ExportJob.State.QUEUED).update(
        state=ExportJob.State.RUNNING, started_at=timezone.now()
    )
    job = ExportJob.objects.select_related("account").get(pk=job_id)
    if not claimed:
        return job
    try:
        with timezone.override(zoneinfo.ZoneInfo(job.time_zone)):
            export = export_for(job.account, job.kind, job.query)
            job.total = export.rows.order_by().count()
            job.save(update_fields=["total"])
            _write(job, export)
    except Exception as exc:  # the job must say it failed, whatever the cause; the log keeps the detail
        logger.exception("Export %s failed", job.pk)
        job.state = ExportJob.State.FAILED
        job.error = f"The export stopped ({type(exc).__name__}). Start it again; the list is unchanged."
        job.finished_at = timezone.now()
        job.save(update_fields=["state", "error", "finished_at"])
    tell_requester(job)
    return job


def tell_requester(job: ExportJob) -> None:
    """Email whoever asked that the file is ready (or that the export failed), with the link to its page:
    they need not keep the page open."""
    if not (job.notify and job.requested_by and job.requested_by.is_active):
        return
    ready = job.state == ExportJob.State.FINISHED
    what = job.get_kind_display().lower()
    emails.send_account_email(
        account=job.account,
        template="export_ready",
        subject=f"Your {what} export is ready" if ready else f"Your {what} export failed",
        to=[job.requested_by.email],
        context={"job": job, "ready": ready, "what": what, "days": settings.EXPORT_RETENTION_DAYS,
                 "url": emails.absolute(reverse("mailing:export_job", args=[job.pk]))},
    )  # fmt: skip


def _write(job: ExportJob, export: Export) -> None:
    written, last_write = -1, time.monotonic()  # the header is not a row
    with tempfile.TemporaryFile("w+b") as spool:
        for line in export.lines:
            spool.write(line.encode())
            written += 1
            if written % PROGRESS_EVERY_ROWS == 0 or time.monotonic() - last_write > PROGRESS_EVERY_SECONDS:
                ExportJob.objects.filter(pk=job.pk).update(written=max(written, 0))
                last_write = time.monotonic()
        size = spool.tell()
        spool.seek(0)
        name = storages["exports"].save(f"{job.account.public_id}/{job.pk}-{job.kind}.csv", File(spool))
    job.written, job.size, job.file_name = max(written, 0), size, name
    job.state, job.finished_at = ExportJob.State.FINISHED, timezone.now()
    job.save(update_fields=["written", "size", "file_name", "state", "finished_at"])


def open_export(job: ExportJob) -> File:
    """The finished job's file, opened for reading. Raises FileNotFoundError once it is purged."""
    if job.state != ExportJob.State.FINISHED or not job.file_name:
        raise FileNotFoundError(f"Export {job.pk} has no file.")
    return storages["exports"].open(job.file_name, "rb")


def lost_exports(now=None) -> list[int]:
    """Jobs still queued long after they were made: their broker message was lost."""
    now = now or timezone.now()
    return list(
        ExportJob.objects.filter(state=ExportJob.State.QUEUED, created_at__lt=now - LOST_AFTER).values_list(
            "pk", flat=True
        )
    )


def fail_stalled_exports(now=None) -> int:
    """Jobs whose worker died mid-file: marked failed, so the page stops waiting and offers a new try."""
    now = now or timezone.now()
    return ExportJob.objects.filter(state=ExportJob.State.RUNNING, started_at__lt=now - STALLED_AFTER).update(
        state=ExportJob.State.FAILED,
        error="The worker writing this export stopped. Start it again; the list is unchanged.",
        finished_at=now,
    )


def purge_exports(now=None) -> int:
    """Delete the files and jobs older than EXPORT_RETENTION_DAYS; how many jobs went."""
    now = now or timezone.now()
    old = ExportJob.objects.filter(created_at__lt=now - timedelta(days=settings.EXPORT_RETENTION_DAYS))
    storage = storages["exports"]
    for name in old.exclude(file_name="").values_list("file_name", flat=True).iterator():
        storage.delete(name)
    deleted, _ = old.delete()
    return deleted
