"""Celery tasks of the mailing app. Each takes plain data or ids and calls one piece of domain code."""

import logging
import smtplib

from celery import shared_task
from django.core.mail import mailers

from .email_backend import deserialize_email

logger = logging.getLogger(__name__)


def is_permanent_smtp_failure(exc: Exception) -> bool:
    """A 5xx answer will not change on retry; connection trouble and 4xx answers may."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500


@shared_task(bind=True, max_retries=8)
def send_product_email(self, data: dict) -> int:
    """Send one of the product's own emails (invite, reset, alert) through the delivery mailer,
    retrying temporary failures with exponential backoff (30 s, 1 min, 2 min, ... capped at 30 min)."""
    try:
        return mailers["delivery"].send_messages([deserialize_email(data)])
    except OSError as exc:
        if is_permanent_smtp_failure(exc):
            logger.error("Product email to %s refused for good: %s", data.get("to"), exc)
            return 0
        raise self.retry(exc=exc, countdown=min(30 * 2**self.request.retries, 1800)) from exc
