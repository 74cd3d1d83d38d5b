"""Two workers on one webhook, with real threads and real PostgreSQL: each event is posted once, in order."""

import json
import threading

import pytest
from django.db import connection

from accounts.models import Membership
from mailing.models import MessageEvent
from mailing.webhooks import hooks, outbox
from tests.conftest import requires_postgres
from tests.factories import MasterFactory, MembershipFactory

from .conftest import make_event

pytestmark = [pytest.mark.django_db(transaction=True), requires_postgres()]


def test_two_runs_of_one_webhook_never_post_the_same_events(receiver, settings):
    # given six events, batches of two, and a slow receiver
    settings.WEBHOOK_BATCH_SIZE = 2
    master = MasterFactory()
    admin = MembershipFactory(account=master, role=Membership.Role.ADMIN).user
    webhook = hooks.add_webhook(actor=admin, account=master, url=receiver.url)
    made = [make_event(master, MessageEvent.Kind.SEND, to=f"r{i}@example.test") for i in range(6)]
    receiver.replies = [("sleep", 0.2)] * 10
    start = threading.Barrier(2)
    reports = []

    def run():
        start.wait()
        try:
            reports.append(outbox.deliver(webhook.pk))
        finally:
            connection.close()

    # when two workers run it at once
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then one did the work, the other found it held
    posted = [e["msg"]["email"] for p in receiver.posts() for e in json.loads(p.form["mandrill_events"])]
    assert posted == [event.message.to_email for event in made]
    assert sorted(report.delivered for report in reports) == [0, 6]
