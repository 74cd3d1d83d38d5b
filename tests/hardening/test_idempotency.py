"""A client that timed out can send again with the same Idempotency-Key: it gets the first answer, and
nothing is stored or counted twice; under concurrency exactly one of the racing calls stores."""

import json
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import Membership, Usage
from mailing.idempotency import purge_idempotent_calls
from mailing.keys import create_api_key
from mailing.models import IdempotentCall, Message
from tests.api.test_wire_format import assert_error
from tests.conftest import requires_postgres
from tests.factories import MasterFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agency(db):
    master = MasterFactory(public_id="agency", monthly_limit=1000)
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    return master, create_api_key(actor=owner, account=master, label="retry")[1]


def _send(client, key, *, header=None, body_key=None, to=("a@example.test", "b@example.test"), subject="Hi"):
    message = {
        "from_email": "news@agency.test",
        "subject": subject,
        "to": [{"email": a} for a in to],
        "text": "x",
    }
    body = {"key": key, "message": message} | ({"idempotency_key": body_key} if body_key else {})
    extra = {"HTTP_IDEMPOTENCY_KEY": header} if header else {}
    return client.post(
        "/api/1.0/messages/send.json", json.dumps(body), content_type="application/json", **extra
    )


def _sent(master):
    return (
        Usage.objects.filter(account=master, window=Usage.Window.MONTH).values_list("sent", flat=True).first()
    )


@pytest.mark.parametrize("how", ["header", "body"])
def test_a_repeat_returns_the_first_answer_and_stores_nothing(client, agency, how):
    master, key = agency
    ask = {how if how == "header" else "body_key": "order-42"}
    first = _send(client, key, **ask)
    again = _send(client, key, **ask)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and first.json()[0]["status"] == "queued"
    assert Message.objects.count() == 2 and _sent(master) == 2


def test_without_a_key_a_repeat_is_a_second_send(client, agency):
    master, key = agency
    _send(client, key)
    _send(client, key)
    assert Message.objects.count() == 4 and _sent(master) == 4


def test_a_key_reused_for_another_message_is_refused(client, agency):
    _master, key = agency
    _send(client, key, header="k1")
    body = assert_error(_send(client, key, header="k1", subject="Something else"), "ValidationError")
    assert "different message" in body["message"]
    assert Message.objects.count() == 2


def test_keys_belong_to_their_account(client, agency):
    _master, key = agency
    other = MasterFactory(public_id="other")
    other_key = create_api_key(
        actor=MembershipFactory(account=other, role=Membership.Role.OWNER).user, account=other, label="x"
    )[1]
    _send(client, key, header="same")
    assert _send(client, other_key, header="same").json()[0]["status"] == "queued"
    assert Message.objects.filter(account=other).count() == 2


def test_a_refused_call_is_decided_again(client, agency, settings):
    master, key = agency
    master.monthly_limit = 1
    master.save(update_fields=["monthly_limit"])
    assert _send(client, key, header="k").json()[0]["status"] == "rejected"
    master.monthly_limit = 10
    master.save(update_fields=["monthly_limit"])
    assert _send(client, key, header="k").json()[0]["status"] == "queued"


def test_after_the_window_a_key_may_be_used_again(client, agency, settings):
    settings.IDEMPOTENCY_HOURS = 24
    _master, key = agency
    _send(client, key, header="old")
    IdempotentCall.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert _send(client, key, header="old", subject="New").json()[0]["status"] == "queued"
    assert Message.objects.count() == 4
    IdempotentCall.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert purge_idempotent_calls() == 1


@pytest.mark.parametrize("bad", ["x" * 256, "   "])
def test_a_bad_key_is_a_validation_error(client, agency, bad):
    _master, key = agency
    assert_error(_send(client, key, header=bad), "ValidationError")
    assert not Message.objects.exists()


@requires_postgres()
@pytest.mark.django_db(transaction=True)
def test_racing_repeats_store_once_and_all_get_the_same_answer(agency):
    master, key = agency
    threads, barrier, answers = 8, threading.Barrier(8), []

    def retry():
        try:
            barrier.wait(timeout=10)
            answers.append(_send(Client(), key, header="race").json())
        finally:
            connection.close()

    with mock.patch("mailing.sending.enqueue_delivery"):
        workers = [threading.Thread(target=retry) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert len(answers) == threads and all(answer == answers[0] for answer in answers)
    assert Message.objects.count() == 2 and _sent(master) == 2
