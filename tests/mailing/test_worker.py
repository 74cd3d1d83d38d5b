"""A real Celery worker consuming from Redis delivers accepted mail to a local SMTP server."""

import time
from datetime import timedelta

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.utils import timezone

from mailing.models import Message
from mailing.sending import OutgoingMessage, Recipient, accept_messages
from reseller.celery import app as celery_app
from tests.conftest import requires_redis
from tests.factories import SubaccountFactory

pytestmark = [requires_redis(), pytest.mark.real_celery, pytest.mark.django_db(transaction=True)]


def _wait_for(condition, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def clean_queue():
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.delete("celery", "unacked", "unacked_index")
    yield
    broker.delete("celery", "unacked", "unacked_index")  # the retry's countdown task, left for a worker


def test_a_worker_consuming_from_redis_delivers_and_retries(smtp_sink, clean_queue):
    sub = SubaccountFactory()
    smtp_sink.replies = ["451 4.3.0 greylisted, try again"]  # the first attempt is refused for now
    message = OutgoingMessage(
        from_email="shop@example.test", subject="Order", text="Thanks",
        recipients=[Recipient("a@example.test"), Recipient("b@example.test")],
    )  # fmt: skip
    accept_messages(account=sub, message=message)
    assert set(Message.objects.values_list("status", flat=True)) == {Message.Status.QUEUED}
    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10
    ):
        delivered_first = _wait_for(lambda: Message.objects.filter(status=Message.Status.SENT).count() == 1)
    assert delivered_first  # one went through; the greylisted one waits for its retry
    retry = Message.objects.get(status=Message.Status.QUEUED)
    assert "451" in retry.last_error and retry.attempts == 1
    # the retry is due: the sweep hands it to a worker again
    Message.objects.filter(pk=retry.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    from mailing.tasks import sweep_queued

    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10
    ):
        sweep_queued.delay()
        assert _wait_for(lambda: Message.objects.filter(status=Message.Status.SENT).count() == 2)
    assert sorted(e.rcpt_tos[0] for e in smtp_sink.received) == ["a@example.test", "b@example.test"]
