"""Webhook delivery: one worker posting 10,000 events to a local receiver.

10,000 `send` events of one account (and the messages they belong to) are made; a webhook to a receiver
on loopback (a separate process answering 200 after reading the body) is delivered by
`mailing.webhooks.outbox.deliver` in one process until it is up to date, for batch sizes 100 and 1,000:
the query for what is owed, the event objects, the JSON and signature, the POST and the cursor's UPDATE
per batch. Events per second per worker; the receiver's own cost is outside the figure as far as a
separate process makes it.

Beside it, in the same run, the accept path (in-process `accept_messages`, one recipient a call, one of
every ten suppressed so `reject` events are recorded at accept) without and with a webhook listening to
every event of the account: a webhook must cost the accept path nothing but the enqueue after commit.
"""

from __future__ import annotations

import multiprocessing
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench import common

EVENTS = 10_000
BATCH_SIZES = (100, 1000)


def _serve(port_queue) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_HEAD(self):
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def _events(account, n: int) -> None:
    from django.utils import timezone

    from mailing.models import Message, MessageEvent

    now = timezone.now()
    messages = Message.objects.bulk_create(
        Message(account=account, from_email="news@bench.example", to_email=f"r{i}@bench.example",
                subject=f"Order {i}", status=Message.Status.SENT, sent_at=now, tags=["bench"],
                metadata={"order": str(i)})
        for i in range(n)
    )  # fmt: skip
    MessageEvent.objects.bulk_create(
        MessageEvent(message=m, account=account, kind=MessageEvent.Kind.SEND, created_at=now)
        for m in messages
    )


def _rate(master, owner, url: str, batch_size: int) -> tuple[float, int]:
    from django.test import override_settings

    from mailing.models import Webhook
    from mailing.webhooks import hooks, outbox

    with override_settings(
        WEBHOOK_BATCH_SIZE=batch_size, WEBHOOK_SETTLE_SECONDS=0, WEBHOOK_BATCHES_PER_RUN=100_000
    ):
        webhook = hooks.add_webhook(
            actor=owner, account=master, url=f"{url}?batch={batch_size}", events=["send"]
        )
        Webhook.objects.filter(pk=webhook.pk).update(message_cursor=0)  # owed all 10,000
        delivered = 0
        with common.Timer() as timer:
            while delivered < EVENTS:
                report = outbox.deliver(webhook.pk)
                if report.retry_in is not None or not report.delivered:
                    raise RuntimeError(f"delivery stopped: {Webhook.objects.get(pk=webhook.pk).last_error}")
                delivered += report.delivered
        webhook.refresh_from_db()
    return delivered / timer.seconds, webhook.batches_sent


ACCEPT_CALLS = 600


def _accept_rate(account) -> float:
    from unittest import mock

    from mailing.outgoing import OutgoingMessage, Recipient
    from mailing.sending import accept_messages

    with mock.patch("mailing.sending.enqueue_delivery"), common.Timer() as timer:
        for i in range(ACCEPT_CALLS):
            address = f"gone{i % 50}@bench.example" if i % 10 == 0 else f"a{i}@bench.example"
            accept_messages(account=account, message=OutgoingMessage(
                from_email="news@bench.example", subject="Receipt", text="Thanks", recipients=[Recipient(email=address)],
            ))  # fmt: skip
    return ACCEPT_CALLS / timer.seconds


def _accept_with_and_without_a_webhook(master, owner, url: str) -> list[list[str]]:
    from mailing.deliverability import suppression
    from mailing.models import Webhook
    from mailing.webhooks import hooks

    for i in range(50):
        suppression.suppress(
            account=master, email=f"gone{i}@bench.example", reason="hard-bounce", detail="bench"
        )
    Webhook.objects.filter(account=master).delete()
    without = _accept_rate(master)
    hooks.add_webhook(actor=owner, account=master, url=f"{url}?accept", events=list(hooks.MESSAGE_EVENTS))
    with_hook = _accept_rate(master)
    return [["no webhook", f"{without:,.0f}", "1.00"], ["a webhook on every event", f"{with_hook:,.0f}",
            f"{with_hook / without:.2f}"]]  # fmt: skip


def main() -> None:
    common.progress("webhooks: resetting the database")
    common.reset_database()
    master, owner = common.make_master("Webhook Agency", "webhook-agency")
    _events(master, EVENTS)
    common.analyze()
    ports = multiprocessing.Queue()
    receiver = multiprocessing.Process(target=_serve, args=(ports,), daemon=True)
    receiver.start()
    url = f"http://127.0.0.1:{ports.get(timeout=10)}/hook"
    time.sleep(0.2)
    rows = []
    try:
        for size in BATCH_SIZES:
            rate, batches = _rate(master, owner, url, size)
            rows.append([f"{size:,}", f"{batches:,}", f"{rate:,.0f}"])
            common.progress(f"webhooks: batches of {size}: {rate:,.0f} events/s")
        accept_rows = _accept_with_and_without_a_webhook(master, owner, url)
    finally:
        receiver.terminate()
    print("## Webhook delivery (`bench/webhooks.py`)\n")
    print(__doc__.split("\n", 1)[1].strip() + "\n")
    print(common.table(["events per POST", "POSTs", "events/s, one worker"], rows))
    print()
    print(common.table(["accept path", "calls/s", "ratio"], accept_rows))
