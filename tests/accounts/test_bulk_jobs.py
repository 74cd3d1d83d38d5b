"""Bulk actions over more subaccounts than a request should wait for run in a worker (accounts/bulk_jobs.py)
and the page follows their progress; the outcomes are those of the same one-target services."""

import pytest
from django.urls import reverse

from accounts import bulk_jobs
from accounts.errors import PermissionDenied
from accounts.models import Account, AuditEvent, BulkJob, Membership
from tests.factories import MasterFactory, MembershipFactory, SubaccountFactory

pytestmark = pytest.mark.django_db

BULK = reverse("accounts:subaccount_bulk")


@pytest.fixture
def agency(client, settings):
    settings.BULK_INLINE_MAX = 3
    master = MasterFactory(name="Northwind")
    admin = MembershipFactory(account=master, role=Membership.Role.ADMIN).user
    client.force_login(admin)
    return master, admin


def test_a_large_selection_runs_as_a_job_and_the_page_reports_it(
    client, agency, django_capture_on_commit_callbacks
):
    master, _ = agency
    subs = [SubaccountFactory(parent=master, name=f"Shop {i}") for i in range(5)]
    subs[0].status = Account.Status.PAUSED
    subs[0].save()
    stranger = SubaccountFactory(name="Not yours")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(BULK, {"action": "pause", "selected": [s.pk for s in subs] + [stranger.pk]})
    job = BulkJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("accounts:bulk_job", args=[job.pk])
    # before the worker: the page polls, and says so
    page = client.get(response["Location"]).content.decode()
    assert 'hx-trigger="every 1s"' in page and "0 of 6" in page
    assert len(callbacks) == 1
    callbacks[0]()  # the worker runs it (Celery is eager here)
    job.refresh_from_db()
    assert (job.state, job.done, job.refused, job.total) == ("finished", 4, 2, 6)
    assert Account.objects.filter(parent=master, status=Account.Status.PAUSED).count() == 5
    stranger.refresh_from_db()
    assert stranger.status == Account.Status.ACTIVE
    assert AuditEvent.objects.filter(action="subaccount.paused").count() == 4
    fragment = client.get(response["Location"], headers={"HX-Request": "true"}).content.decode()
    assert "every 1s" not in fragment and "<html" not in fragment
    assert "Finished:</strong> 4 done, 2 refused" in fragment
    assert f"#{stranger.pk}: no such subaccount" in fragment and "Shop 0 is paused" in fragment


def test_a_small_selection_still_runs_in_the_request(client, agency):
    master, _ = agency
    subs = [SubaccountFactory(parent=master, name=f"Shop {i}") for i in range(3)]
    response = client.post(BULK, {"action": "pause", "selected": [s.pk for s in subs]})
    assert response.status_code == 302 and not BulkJob.objects.exists()
    assert Account.objects.filter(parent=master, status=Account.Status.PAUSED).count() == 3


def test_progress_is_written_as_the_worker_goes(agency, monkeypatch):
    master, admin = agency
    subs = [SubaccountFactory(parent=master) for _ in range(7)]
    monkeypatch.setattr(bulk_jobs, "PROGRESS_EVERY_TARGETS", 2)
    seen = []
    original = BulkJob.save

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        seen.append(BulkJob.objects.get(pk=self.pk).handled)

    monkeypatch.setattr(BulkJob, "save", spy)
    job = bulk_jobs.create_bulk_job(
        actor=admin, master=master, action="resume", subaccount_ids=[s.pk for s in subs]
    )
    bulk_jobs.run_bulk_job(job.pk)
    assert seen[1:] == [2, 4, 6, 7]  # the first save is the job's creation
    assert bulk_jobs.run_bulk_job(job.pk).refused == 7  # a second delivery of the task changes nothing
    assert AuditEvent.objects.filter(action="subaccount.resumed").count() == 0  # all were active


def test_another_agencys_job_is_404_and_a_viewer_cannot_start_one(client, agency):
    master, _admin = agency
    other = MasterFactory()
    other_admin = MembershipFactory(account=other, role=Membership.Role.ADMIN).user
    theirs = bulk_jobs.create_bulk_job(actor=other_admin, master=other, action="pause", subaccount_ids=[1])
    assert client.get(reverse("accounts:bulk_job", args=[theirs.pk])).status_code == 404
    viewer = MembershipFactory(account=master, role=Membership.Role.VIEWER).user
    with pytest.raises(PermissionDenied):
        bulk_jobs.create_bulk_job(actor=viewer, master=master, action="pause", subaccount_ids=[1])
    client.force_login(viewer)
    subs = [SubaccountFactory(parent=master) for _ in range(4)]
    response = client.post(BULK, {"action": "pause", "selected": [s.pk for s in subs]}, follow=True)
    assert BulkJob.objects.filter(account=master).count() == 0
    assert "Only an owner or admin" in response.content.decode()
