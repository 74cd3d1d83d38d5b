"""python manage.py smtpd: the SMTP submission server (mailing/smtp.py)."""

import multiprocessing
import signal
import ssl
import threading

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run the SMTP submission server (AUTH with the account id and an API key)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.SMTP_HOST)
        parser.add_argument("--port", type=int, default=settings.SMTP_PORT)
        parser.add_argument(
            "--processes",
            type=int,
            default=settings.SMTP_PROCESSES,
            help="Server processes sharing the port (one per core: a process is one core's worth of Python).",
        )
        parser.add_argument(
            "--reuse-port", action="store_true", help="Share the port with sibling processes."
        )

    def handle(self, *args, host: str, port: int, processes: int, reuse_port: bool, **options):
        if processes < 1:
            raise CommandError("--processes must be at least 1.")
        if processes > 1:
            return self._supervise(host, port, processes)
        self._serve(host, port, reuse_port=reuse_port)

    def _supervise(self, host: str, port: int, processes: int) -> None:
        """Start `processes` servers sharing the port, stop them all on SIGTERM, and stop (failing) when one
        of them exits on its own, so that whatever runs this restarts the lot."""
        spawn = multiprocessing.get_context("spawn")  # a fresh interpreter each: no inherited connections
        children = [spawn.Process(target=serve_sharing_port, args=(host, port)) for _ in range(processes)]
        for child in children:
            child.start()
        self.stdout.write(f"{processes} SMTP server processes on {host}:{port}.")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(1) and all(child.is_alive() for child in children):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            for child in children:
                child.terminate()
            for child in children:
                child.join(timeout=15)
        failed = [child.exitcode for child in children if child.exitcode not in (0, -signal.SIGTERM)]
        if failed and not stop.is_set():
            raise CommandError(
                f"An SMTP server process stopped (exit codes {failed}); the others were stopped."
            )

    def _serve(self, host: str, port: int, *, reuse_port: bool) -> None:
        # Imported here: a `--processes` child imports this module before Django is set up.
        from mailing.smtp import build_controller

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
            hostname=host, port=port, tls_context=tls_context, require_tls_for_auth=require_tls,
            reuse_port=reuse_port,
        )  # fmt: skip
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


def serve_sharing_port(host: str, port: int) -> None:
    """One of `--processes` servers, in its own interpreter."""
    import django

    django.setup()
    call_command("smtpd", host=host, port=port, processes=1, reuse_port=True)
