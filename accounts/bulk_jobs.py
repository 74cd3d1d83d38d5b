"""Bulk actions that take a while: the request records a BulkJob and a worker runs it, reporting its
progress on the row as it goes, so the page can show a bar instead of a request that times out. Small
selections still run in the request (subaccount_bulk decides, with BULK_INLINE_MAX)."""

from __future__ import annotations

import time

from django.utils import timezone

from . import lifecycle
from .models import Account, BulkJob, Membership, User
from .permissions import require_role

# What the page reports at most: the rest are counted.
NAMES_KEPT = 20
REFUSALS_KEPT = 50
# How often the worker writes its progress (whichever comes first).
PROGRESS_EVERY_TARGETS = 25
PROGRESS_EVERY_SECONDS = 1.0


def create_bulk_job(
    *,
    actor: User,
    master: Account,
    action: str,
    subaccount_ids: list[int],
    monthly_limit: int | None = None,
    real_actor: User | None = None,
) -> BulkJob:
    """Record the job (tasks.start_bulk_job hands it to a worker). Each target is still checked by its
    own service when the worker reaches it: a foreign id is refused there, as in the request."""
    if action not in lifecycle.BULK_ACTIONS:
        raise ValueError(f"Unknown bulk action {action!r}")
    require_role(actor, master, Membership.Role.ADMIN)
    job = BulkJob.objects.create(
        account=master, started_by=actor, real_actor=real_actor, action=action, monthly_limit=monthly_limit,
        subaccount_ids=list(subaccount_ids), total=len(subaccount_ids),
    )  # fmt: skip
    return job


def run_bulk_job(job_id: int) -> BulkJob:
    """Apply the job's action to each target through lifecycle.apply_to_many, writing the progress as
    it goes. A job already finished is left alone (a task delivered twice)."""
    job = BulkJob.objects.select_related("account", "started_by", "real_actor").get(pk=job_id)
    if job.state == BulkJob.State.FINISHED:
        return job
    last_write = time.monotonic()

    def note(outcome: lifecycle.BulkOutcome) -> None:
        nonlocal last_write
        if outcome.done:
            job.done += 1
            if len(job.done_names) < NAMES_KEPT:
                job.done_names.append(outcome.name)
        else:
            job.refused += 1
            if len(job.refusals) < REFUSALS_KEPT:
                job.refusals.append(outcome.reason)
        if (
            job.handled % PROGRESS_EVERY_TARGETS == 0
            or time.monotonic() - last_write > PROGRESS_EVERY_SECONDS
        ):
            job.save(update_fields=["done", "refused", "done_names", "refusals"])
            last_write = time.monotonic()

    lifecycle.apply_to_many(
        actor=job.started_by, master=job.account, action=job.action, subaccount_ids=job.subaccount_ids,
        monthly_limit=job.monthly_limit, real_actor=job.real_actor, on_each=note,
    )  # fmt: skip
    job.state = BulkJob.State.FINISHED
    job.finished_at = timezone.now()
    job.save(update_fields=["done", "refused", "done_names", "refusals", "state", "finished_at"])
    return job
