import time

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from mailing.email_backend import CeleryEmailBackend
from mailing.product_email import deserialize_email, serialize_email
from reseller.celery import app as celery_app
from tests.conftest import requires_redis


def _message() -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject="Your invite", body="plain text", to=["owner@example.test"], headers={"X-Product": "invite"}
    )
    message.attach_alternative("<p>html</p>", "text/html")
    message.attach("terms.pdf", b"%PDF-1.4 binary \x00\xff", "application/pdf")
    return message


def test_an_email_survives_the_trip_through_json():
    copy = deserialize_email(serialize_email(_message()))
    assert copy.subject == "Your invite"
    assert copy.to == ["owner@example.test"]
    assert copy.extra_headers == {"X-Product": "invite"}
    assert copy.alternatives[0].content == "<p>html</p>"
    assert copy.attachments[0].content == b"%PDF-1.4 binary \x00\xff"


@requires_redis()
@pytest.mark.real_celery
@pytest.mark.django_db  # the worker runs Django's system checks as it starts
def test_the_celery_backend_enqueues_on_redis_and_a_worker_delivers(mailoutbox):
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.delete("celery")
    # when the product sends an email, it only lands on the queue
    assert CeleryEmailBackend(alias="default").send_messages([_message()]) == 1
    assert broker.llen("celery") == 1
    assert mailoutbox == []
    # then a real worker consuming from Redis delivers it through the delivery mailer
    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10
    ):
        deadline = time.monotonic() + 15
        while not mailoutbox and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(mailoutbox) == 1
    assert mailoutbox[0].subject == "Your invite"
    assert mailoutbox[0].sent_using == "delivery"
