"""python manage.py bouncesmtpd: the bounce listener (mailing/bounce_listener.py)."""

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mailing.bounce_listener import build_controller


class Command(BaseCommand):
    help = "Run the bounce listener: takes DSNs and complaint reports for addresses at BOUNCE_DOMAIN."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.BOUNCE_SMTP_HOST)
        parser.add_argument("--port", type=int, default=settings.BOUNCE_SMTP_PORT)

    def handle(self, *args, host: str, port: int, **options):
        if not settings.BOUNCE_DOMAIN:
            raise CommandError(
                "Set BOUNCE_DOMAIN first: without it messages carry no VERP address and no report can name one."
            )
        controller = build_controller(hostname=host, port=port)
        try:
            controller.start()
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from None
        self.stdout.write(
            f"Bounce listener on {host}:{port} for *@{settings.BOUNCE_DOMAIN} "
            f"(reports up to {settings.BOUNCE_MAX_REPORT_BYTES} bytes)."
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()
