"""/metrics for Prometheus: behind a bearer token, the mail counters and timings, and the queue read from
the database at scrape time."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.db import DatabaseError
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from mailing.models import Message
from reseller import metrics
from tests.factories import SubaccountFactory

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "s3cret-scrape-token-0123456789"

METRIC_NAMES = [
    "mail_accepted_total",
    "mail_rejected_total",
    "mail_delivered_total",
    "mail_failed_total",
    "mail_bounced_total",
    "accept_seconds_bucket",
    "delivery_seconds_bucket",
    "mail_queue_depth",
    "mail_oldest_queued_age_seconds",
    "mail_queued_overdue_seconds",
]


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def _scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def _value(name: str, **labels) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def _message(account, status: str, *, age_seconds: int = 0, due_in_seconds: int | None = None) -> Message:
    now = timezone.now()
    message = Message.objects.create(
        account=account, from_email="shop@example.test", to_email="a@example.test", status=status
    )
    Message.objects.filter(pk=message.pk).update(
        created_at=now - timedelta(seconds=age_seconds),
        next_attempt_at=now + timedelta(seconds=-age_seconds if due_in_seconds is None else due_in_seconds),
    )
    return message


@pytest.mark.parametrize("configured", ["", None])
def test_metrics_do_not_exist_without_a_token_configured(client, settings, configured):
    settings.METRICS_TOKEN = configured
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN[:-1]}", "Bearer ü"],
)
def test_metrics_refuse_a_missing_or_wrong_token(client, token, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"mail_" not in response.content


@pytest.mark.django_db
def test_metrics_with_the_right_token_list_every_metric_without_a_login(client, token, settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.contrib.auth.middleware.LoginRequiredMiddleware"]
    metrics.record_rejected("unsigned", 1)
    metrics.record_failed("permanent", 1)
    metrics.record_bounced("hard", 1)
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    for name in METRIC_NAMES:
        assert f"\n{name}" in body, name
    assert "Set-Cookie" not in response.headers


def test_the_counters_count_what_the_accept_and_delivery_code_tells_them():
    before = {
        "accepted": _value("mail_accepted_total"),
        "rejected": _value("mail_rejected_total", reason="monthly-limit-reached"),
        "delivered": _value("mail_delivered_total"),
        "failed": _value("mail_failed_total", reason="permanent"),
        "bounced": _value("mail_bounced_total", kind="soft"),
    }
    metrics.record_accepted(3)
    metrics.record_rejected("monthly-limit-reached", 2)
    metrics.record_delivered(5)
    metrics.record_failed("permanent", 1)
    metrics.record_bounced("soft", 4)
    metrics.record_accepted(0)  # nothing to count is not an error
    assert _value("mail_accepted_total") - before["accepted"] == 3
    assert _value("mail_rejected_total", reason="monthly-limit-reached") - before["rejected"] == 2
    assert _value("mail_delivered_total") - before["delivered"] == 5
    assert _value("mail_failed_total", reason="permanent") - before["failed"] == 1
    assert _value("mail_bounced_total", kind="soft") - before["bounced"] == 4


def test_timers_observe_one_call_each_even_when_it_raises():
    accepts, deliveries = _value("accept_seconds_count"), _value("delivery_seconds_count")
    with metrics.time_accept():
        pass
    with pytest.raises(RuntimeError), metrics.time_delivery():
        raise RuntimeError("the relay went away")
    assert _value("accept_seconds_count") - accepts == 1
    assert _value("delivery_seconds_count") - deliveries == 1


def test_labels_stay_few_and_tidy_whatever_callers_pass():
    metrics.record_rejected("Invalid Sender!", 1)
    assert _value("mail_rejected_total", reason="invalid-sender") >= 1
    for n in range(2 * metrics.MAX_LABEL_VALUES):
        metrics.record_failed(f"error-{n}", 1)
    reasons = {
        sample.labels["reason"]
        for family in metrics.REGISTRY.collect()
        if family.name == "mail_failed"
        for sample in family.samples
        if sample.name == "mail_failed_total"
    }
    assert len(reasons) <= metrics.MAX_LABEL_VALUES + 1
    assert "other" in reasons


@pytest.mark.django_db
def test_the_queue_gauges_read_the_messages_waiting_with_one_query(client, token, django_assert_num_queries):
    # given two queued messages (the older accepted 120 s ago), one being sent, and some that do not wait
    sub = SubaccountFactory()
    _message(sub, Message.Status.QUEUED, age_seconds=120)
    _message(sub, Message.Status.QUEUED, age_seconds=5)
    _message(sub, Message.Status.SENDING, age_seconds=600)
    _message(sub, Message.Status.SENT, age_seconds=3600)
    _message(sub, Message.Status.HELD, age_seconds=3600)
    _message(sub, Message.Status.FAILED, age_seconds=3600)
    # when Prometheus scrapes
    with django_assert_num_queries(1):
        samples = _scrape(client)
    # then
    assert samples[("mail_queue_depth", (("status", "queued"),))] == 2
    assert samples[("mail_queue_depth", (("status", "sending"),))] == 1
    assert 120 <= samples[("mail_oldest_queued_age_seconds", ())] < 180


@pytest.mark.django_db
def test_overdue_counts_only_mail_past_its_attempt_time(client, token):
    # given a message waiting out a retry backoff (accepted long ago, due in ten minutes)
    sub = SubaccountFactory()
    _message(sub, Message.Status.QUEUED, age_seconds=3000, due_in_seconds=600)
    samples = _scrape(client)
    assert samples[("mail_queued_overdue_seconds", ())] == 0
    assert samples[("mail_oldest_queued_age_seconds", ())] >= 3000
    # when another should have left five minutes ago (a lost broker message, no worker)
    _message(sub, Message.Status.QUEUED, age_seconds=300)
    samples = _scrape(client)
    # then
    assert 300 <= samples[("mail_queued_overdue_seconds", ())] < 360


@pytest.mark.django_db
def test_the_queue_gauges_are_zero_when_nothing_waits(client, token):
    _message(SubaccountFactory(), Message.Status.SENT, age_seconds=3600)
    samples = _scrape(client)
    assert samples[("mail_queue_depth", (("status", "queued"),))] == 0
    assert samples[("mail_queue_depth", (("status", "sending"),))] == 0
    assert samples[("mail_oldest_queued_age_seconds", ())] == 0
    assert samples[("mail_queued_overdue_seconds", ())] == 0


@pytest.mark.django_db
def test_multiprocess_mode_adds_up_what_every_process_counted(client, token, tmp_path, monkeypatch):
    # given two processes (gunicorn workers, Celery workers) sharing PROMETHEUS_MULTIPROC_DIR
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for n in (3, 4):
        code = (
            "import django; django.setup(); from reseller import metrics; "
            f"metrics.record_accepted({n}); metrics.record_rejected('unsigned', 1)"
        )
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)
    # when this process serves the scrape in the same mode
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    samples = _scrape(client)
    # then the counts are the sum of the processes', and the queue is still read from the database
    assert samples[("mail_accepted_total", ())] == 7
    assert samples[("mail_rejected_total", (("reason", "unsigned"),))] == 2
    assert ("mail_queue_depth", (("status", "queued"),)) in samples


@pytest.mark.django_db
def test_a_database_outage_drops_the_queue_gauges_but_not_the_counters(client, token):
    with mock.patch.object(Message.objects, "filter", side_effect=DatabaseError("server closed")):
        response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "mail_accepted_total" in body
    assert "mail_queue_depth" not in body


@pytest.mark.django_db(transaction=True)
def test_the_accept_path_and_delivery_move_the_counters(smtp_sink):
    from mailing.outgoing import OutgoingMessage, Recipient
    from mailing.sending import accept_messages
    from reseller.metrics import REGISTRY
    from tests.factories import SubaccountFactory

    def value(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0

    before = (value("mail_accepted_total"), value("mail_rejected_total", reason="invalid"),
              value("mail_delivered_total"), value("accept_seconds_count"))  # fmt: skip
    message = OutgoingMessage(
        from_email="shop@example.test", text="hi", recipients=[Recipient("a@example.test"), Recipient("nope")]
    )
    accept_messages(account=SubaccountFactory(), message=message)
    after = (value("mail_accepted_total"), value("mail_rejected_total", reason="invalid"),
             value("mail_delivered_total"), value("accept_seconds_count"))  # fmt: skip
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1, 1]
