"""Large CSV exports run as background jobs: offered when the list is over EXPORT_INLINE_MAX, written by a
worker with its progress on the job, downloaded from a tenant-checked view, swept and purged."""

import csv
import io
from datetime import datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.core.files.storage import storages
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from mailing import exports, selectors
from mailing import tasks as mailing_tasks
from mailing.models import ExportJob, Message, Suppression
from tests.factories import MasterFactory, MembershipFactory, SubaccountFactory

pytestmark = pytest.mark.django_db

START = reverse("mailing:export_start")


@pytest.fixture(autouse=True)
def _exports_in_a_temporary_folder(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path},
        },
    }
    settings.EXPORT_INLINE_MAX = 2


@pytest.fixture
def agency(client):
    master = MasterFactory(name="Northwind")
    acme = SubaccountFactory(parent=master, name="Acme", public_id="acme")
    admin = MembershipFactory(account=master, role=Membership.Role.ADMIN).user
    for n in range(3):
        _message(acme, to_email=f"r{n}@example.test", tags=["order"])
    _message(acme, to_email="other@example.test", tags=["news"])
    client.force_login(admin)
    return {"master": master, "acme": acme, "admin": admin}


def _message(account, **fields):
    defaults = {"from_email": "shop@example.test", "to_email": "client@example.test", "subject": "Hello"}
    return Message.objects.create(account=account, **(defaults | fields))


def _rows(data: bytes | str) -> list[list[str]]:
    text = data.decode() if isinstance(data, bytes) else data
    return list(csv.reader(io.StringIO(text)))


def _run(client, django_capture_on_commit_callbacks, **post):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(START, post)
    assert response.status_code == 302
    return ExportJob.objects.get(pk=int(response["Location"].rstrip("/").split("/")[-1])), response[
        "Location"
    ]


def test_a_list_over_the_limit_is_offered_as_a_background_export_not_streamed(client, agency):
    response = client.get(reverse("mailing:message_export"), {"tag": "order", "page": "2"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Prepare the CSV file" in page and "more than 2 rows" in page
    assert 'name="query" value="tag=order"' in page  # the filters ride along; the page number does not
    assert not ExportJob.objects.exists()  # a GET never starts one


def test_a_list_within_the_limit_still_downloads_at_once(client, agency):
    response = client.get(reverse("mailing:message_export"), {"tag": "news"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert [row[5] for row in _rows(b"".join(response.streaming_content))[1:]] == ["other@example.test"]


def test_the_worker_writes_the_same_rows_the_stream_would_and_the_page_offers_the_file(
    client, agency, django_capture_on_commit_callbacks
):
    job, location = _run(
        client, django_capture_on_commit_callbacks, kind="messages", query="tag=order&sort=recipient"
    )
    job.refresh_from_db()
    assert (job.state, job.total, job.written, job.requested_by) == ("finished", 3, 3, agency["admin"])
    expected = "".join(
        selectors.messages_csv(
            agency["master"], selectors.MessageFilters.from_query({"tag": "order", "sort": "recipient"})
        )
    )
    page = client.get(location).content.decode()
    assert "Ready:" in page and reverse("mailing:export_download", args=[job.pk]) in page
    assert "every 1s" not in page  # finished: the page stops polling
    download = client.get(reverse("mailing:export_download", args=[job.pk]))
    assert download["Content-Disposition"].startswith(
        f'attachment; filename="{agency["master"].public_id}-messages-'
    )
    body = b"".join(download.streaming_content)
    assert body.decode() == expected and job.size == len(body)
    assert [row[5] for row in _rows(body)[1:]] == ["r0@example.test", "r1@example.test", "r2@example.test"]


def test_a_queued_job_page_polls_and_shows_its_progress(client, agency, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(START, {"kind": "messages", "query": ""})
    job = ExportJob.objects.get()
    assert len(callbacks) == 1
    page = client.get(response["Location"]).content.decode()
    assert 'hx-trigger="every 1s"' in page and "Waiting for a worker" in page
    ExportJob.objects.filter(pk=job.pk).update(state="running", total=4, written=2)
    fragment = client.get(response["Location"], headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in fragment and "2 of 4" in fragment and "50 %" in fragment
    assert client.get(reverse("mailing:export_download", args=[job.pk])).status_code == 404  # not ready


def test_the_file_follows_the_requesters_time_zone_as_the_page_does(
    client, agency, django_capture_on_commit_callbacks
):
    # given a reader in Auckland and a message sent at 23:00 UTC on 1 March: 2 March there
    agency["admin"].time_zone = "Pacific/Auckland"
    agency["admin"].save()
    late = _message(agency["acme"], to_email="late@example.test")
    Message.objects.filter(pk=late.pk).update(created_at=datetime(2026, 3, 1, 23, 0, tzinfo=ZoneInfo("UTC")))
    # when they export 2 March (the worker runs in UTC)
    job, _ = _run(
        client,
        django_capture_on_commit_callbacks,
        kind="messages",
        query="date_from=2026-03-02&date_to=2026-03-02",
    )
    # then the file holds the message, as their page lists it
    job.refresh_from_db()
    assert job.time_zone == "Pacific/Auckland"
    body = b"".join(client.get(reverse("mailing:export_download", args=[job.pk])).streaming_content)
    assert [row[5] for row in _rows(body)[1:]] == ["late@example.test"]


def test_another_agencys_jobs_and_files_are_not_found(client, agency, django_capture_on_commit_callbacks):
    job, location = _run(client, django_capture_on_commit_callbacks, kind="messages", query="")
    client.force_login(MembershipFactory(account=MasterFactory(), role=Membership.Role.OWNER).user)
    assert client.get(location).status_code == 404
    assert client.get(reverse("mailing:export_download", args=[job.pk])).status_code == 404


def test_a_subaccount_sees_only_its_own_rows_and_not_its_masters_jobs(
    client, agency, django_capture_on_commit_callbacks
):
    _, location = _run(client, django_capture_on_commit_callbacks, kind="messages", query="")
    bolt = SubaccountFactory(parent=agency["master"], name="Bolt")
    _message(bolt, to_email="bolt@example.test")
    client.force_login(MembershipFactory(account=bolt, role=Membership.Role.OWNER).user)
    assert client.get(location).status_code == 404
    with mock.patch.object(exports.settings, "EXPORT_INLINE_MAX", 0):
        own, _ = _run(client, django_capture_on_commit_callbacks, kind="messages", query="")
    body = b"".join(client.get(reverse("mailing:export_download", args=[own.pk])).streaming_content)
    assert [row[5] for row in _rows(body)[1:]] == ["bolt@example.test"]


def test_a_master_exports_a_subaccounts_suppressions_but_never_another_agencys(
    client, agency, django_capture_on_commit_callbacks
):
    for n in range(3):
        Suppression.objects.create(
            account=agency["acme"], email=f"gone{n}@example.test", reason="hard-bounce"
        )
    response = client.get(reverse("mailing:suppression_csv"), {"account": agency["acme"].pk})
    assert "Prepare the CSV file" in response.content.decode()
    job, _ = _run(
        client, django_capture_on_commit_callbacks, kind="suppressions", query=f"account={agency['acme'].pk}"
    )
    download = client.get(reverse("mailing:export_download", args=[job.pk]))
    assert download["Content-Disposition"].startswith('attachment; filename="acme-suppressions-')
    assert sorted(row[0] for row in _rows(b"".join(download.streaming_content))[1:]) == [
        "gone0@example.test", "gone1@example.test", "gone2@example.test",
    ]  # fmt: skip
    stranger = SubaccountFactory(parent=MasterFactory())
    refused = client.post(START, {"kind": "suppressions", "query": f"account={stranger.pk}"})
    assert refused.status_code == 404
    assert client.post(START, {"kind": "suppressions", "query": "account=not-a-number"}).status_code == 404
    assert client.post(START, {"kind": "passwords", "query": ""}).status_code == 404
    assert ExportJob.objects.count() == 1


def test_only_a_post_starts_an_export(client, agency):
    assert client.get(START, {"kind": "messages"}).status_code == 405
    assert not ExportJob.objects.exists()


def test_a_job_runs_once_even_if_its_task_is_delivered_twice(agency):
    job = exports.start_export(
        actor=agency["admin"], account=agency["master"], kind="messages", query={}, time_zone="UTC"
    )
    exports.run_export(job.pk)
    with mock.patch.object(exports, "_write") as write:
        again = exports.run_export(job.pk)
    write.assert_not_called()
    assert again.state == "finished" and len(storages["exports"].listdir(agency["master"].public_id)[1]) == 1


def _breaks_midway(*args, **kwargs):
    yield "created_at\n"
    raise RuntimeError("database went away")


def test_a_failing_export_says_so_and_keeps_no_file(client, agency, django_capture_on_commit_callbacks):
    with mock.patch.object(exports.selectors, "messages_csv", _breaks_midway):
        job, location = _run(client, django_capture_on_commit_callbacks, kind="messages", query="")
    job.refresh_from_db()
    assert job.state == "failed" and "RuntimeError" in job.error and not job.file_name
    page = client.get(location).content.decode()
    assert "Failed:" in page and "Start it again" in page
    assert client.get(reverse("mailing:export_download", args=[job.pk])).status_code == 404
    assert not storages["exports"].exists(agency["master"].public_id)  # nothing half-written kept


def test_an_unknown_time_zone_falls_back_to_utc(agency):
    job = exports.start_export(
        actor=agency["admin"], account=agency["master"], kind="messages", query={}, time_zone="Mars/Olympus"
    )
    assert job.time_zone == "UTC"


def test_the_sweep_requeues_lost_jobs_fails_stalled_ones_and_purges_old_files(agency, settings):
    now = timezone.now()
    make = lambda **fields: ExportJob.objects.create(account=agency["master"], kind="messages", **fields)  # noqa: E731
    lost = make(created_at=now - timedelta(minutes=5))
    fresh = make()
    stalled = make(state="running", started_at=now - timedelta(hours=2))
    old = make(state="finished", created_at=now - timedelta(days=settings.EXPORT_RETENTION_DAYS + 1))
    old.file_name = storages["exports"].save("old.csv", io.BytesIO(b"a,b\n"))
    old.save()
    with mock.patch.object(mailing_tasks.run_export, "delay") as delay:
        swept = mailing_tasks.sweep_exports()
    delay.assert_called_once_with(lost.pk)
    assert swept == {"requeued": 1, "stalled": 1, "purged": 1}
    stalled.refresh_from_db()
    assert stalled.state == "failed" and "stopped" in stalled.error
    assert not ExportJob.objects.filter(pk=old.pk).exists() and not storages["exports"].exists("old.csv")
    assert ExportJob.objects.filter(pk=fresh.pk, state="queued").exists()


def test_the_requester_is_emailed_a_link_when_the_file_is_ready(
    client, agency, mailoutbox, django_capture_on_commit_callbacks
):
    _, location = _run(client, django_capture_on_commit_callbacks, kind="messages", query="")
    (email,) = [m for m in mailoutbox if m.to == [agency["admin"].email]]
    assert email.subject == "Your messages export is ready"
    assert location in email.body and "4 rows" in email.body and "kept for 7 days" in email.body


def test_a_failed_export_is_told_too(client, agency, mailoutbox, django_capture_on_commit_callbacks):
    with mock.patch.object(exports.selectors, "messages_csv", _breaks_midway):
        _run(client, django_capture_on_commit_callbacks, kind="messages", query="")
    (email,) = mailoutbox
    assert email.subject == "Your messages export failed" and "Start it again" in email.body


def test_a_customers_export_email_wears_its_agencys_brand(
    client, mailoutbox, django_capture_on_commit_callbacks, settings
):
    from tests.accounts.test_branding import branded_master

    master, _admin, _brand = branded_master(name="Northwind Mail")
    shop = SubaccountFactory(parent=master, name="Shop")
    owner = MembershipFactory(account=shop, role=Membership.Role.OWNER).user
    for n in range(3):
        _message(shop, to_email=f"c{n}@example.test")
    client.force_login(owner)
    _run(client, django_capture_on_commit_callbacks, kind="messages", query="")
    (email,) = mailoutbox
    assert email.to == [owner.email] and "Northwind Mail" in email.alternatives[0][0]


def test_an_agency_logged_in_as_its_customer_gets_no_email_nor_does_the_customer(
    client, agency, mailoutbox, django_capture_on_commit_callbacks
):
    shop_owner = MembershipFactory(account=agency["acme"], role=Membership.Role.OWNER).user
    shop_owner.set_password("correct-horse-battery-9")
    shop_owner.save()
    assert client.post(reverse("accounts:log_in_as", args=[agency["acme"].pk])).status_code == 302
    job, _ = _run(client, django_capture_on_commit_callbacks, kind="messages", query="")
    job.refresh_from_db()
    assert job.account == agency["acme"] and job.state == "finished" and not job.notify
    assert mailoutbox == []
