"""Webhooks: an account's events POSTed to its URLs in Mandrill's format and signature.

- `signing`: the X-Mandrill-Signature of a POST (pure);
- `transport`: the one way out to a customer's URL (address checks, timeouts, no redirects, bounded reads);
- `payload`: Mandrill's event objects, built from MessageEvent rows and the audit trail's account events;
- `hooks`: the webhooks themselves (add with the URL check, update, delete, key reset) and their reads;
- `outbox`: what a webhook is owed (after its cursors), posted in batches, retried with backoff, disabled
  after a day of failures;
- `tasks`: the Celery tasks and the enqueue the event producers call after commit.
"""
