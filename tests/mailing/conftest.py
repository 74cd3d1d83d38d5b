import socket

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RecordingHandler:
    """A local SMTP server's handler: records what it receives; `replies` scripts refusals (e.g. 451 once)."""

    def __init__(self):
        self.received = []
        self.replies = []

    async def handle_DATA(self, server, session, envelope):
        if self.replies:
            return self.replies.pop(0)
        self.received.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_sink(settings):
    """A real SMTP server on loopback, made the delivery mailer's relay."""
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings.MAILERS = {
        **settings.MAILERS,
        "delivery": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 5},
        },
    }
    yield handler
    controller.stop()
