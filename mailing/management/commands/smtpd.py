"""python manage.py smtpd: the SMTP submission server (mailing/smtp.py)."""

import signal
import ssl
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mailing.smtp import build_controller


class Command(BaseCommand):
    help = "Run the SMTP submission server (AUTH with the account id and an API key)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.SMTP_HOST)
        parser.add_argument("--port", type=int, default=settings.SMTP_PORT)

    def handle(self, *args, host: str, port: int, **options):
        tls_context = None
        if settings.SMTP_TLS_CERT:
            tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            try:
                tls_context.load_cert_chain(settings.SMTP_TLS_CERT, settings.SMTP_TLS_KEY or None)
            except (OSError, ssl.SSLError) as exc:
                raise CommandError(
                    f"Cannot load the TLS certificate {settings.SMTP_TLS_CERT}: {exc}"
                ) from None
        # In production AUTH is offered only after STARTTLS; the embedded default allows it in the clear
        # on loopback, where nothing can listen in.
        require_tls = settings.PRODUCTION or (tls_context is not None)
        if settings.PRODUCTION and tls_context is None:
            raise CommandError(
                "In production the SMTP server needs SMTP_TLS_CERT (and SMTP_TLS_KEY) for STARTTLS."
            )
        controller = build_controller(
            hostname=host, port=port, tls_context=tls_context, require_tls_for_auth=require_tls
        )
        try:
            controller.start()
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from None
        tls = "STARTTLS" if tls_context else "no TLS"
        self.stdout.write(
            f"SMTP submission on {host}:{port} ({tls}). Username: the account id; password: an API key."
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()
