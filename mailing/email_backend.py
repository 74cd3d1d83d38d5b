"""The product's own email (invites, resets, alerts) leaves through Celery: this backend, the `default`
mailer, turns each message into plain JSON and enqueues a task that sends it through the `delivery`
mailer, with retries. Nothing is sent inside a request or a transaction."""

from __future__ import annotations

from django.core.mail.backends.base import BaseEmailBackend

from .product_email import serialize_email
from .tasks import send_product_email


class CeleryEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        count = 0
        for message in email_messages:
            if not message.recipients():
                continue
            send_product_email.delay(serialize_email(message))
            count += 1
        return count
