"""The product's own email (invites, resets, alerts) leaves through Celery: this backend, the `default`
mailer, turns each message into plain JSON and enqueues a task that sends it through the `delivery`
mailer, with retries. Nothing is sent inside a request or a transaction."""

from __future__ import annotations

import logging

from django.core.mail import mailers
from django.core.mail.backends.base import BaseEmailBackend

from .product_email import serialize_email
from .tasks import send_product_email

logger = logging.getLogger(__name__)


class CeleryEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        count = 0
        for message in email_messages:
            if not message.recipients():
                continue
            try:
                send_product_email.delay(serialize_email(message))
            except Exception:  # the broker's errors vary by transport: an invite must not be lost with it
                logger.warning("Broker unreachable: sending %r directly", message.subject, exc_info=True)
                mailers["delivery"].send_messages([message])
            count += 1
        return count
