"""Two middleware stacks in one process: the pages' (sessions, CSRF, auth, messages, htmx, CSP, the
current account…) and a lean one for the paths programs call — the API, which authenticates by key, and
the probes — that need none of it. The WSGI application sends each request to one of them by its path."""

from __future__ import annotations

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler


def is_machine_path(path: str) -> bool:
    return path.startswith(settings.MACHINE_PATH_PREFIXES)


class MachineWSGIHandler(WSGIHandler):
    """Django's handler with settings.MACHINE_MIDDLEWARE instead of settings.MIDDLEWARE. Django reads
    the list from settings while it builds the chain, once, when the handler is made at start-up."""

    def load_middleware(self, is_async: bool = False) -> None:
        pages = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.MACHINE_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = pages


class PathDispatcher:
    """The WSGI application: machine paths to the lean handler, everything else to the pages'."""

    def __init__(self) -> None:
        self.pages = WSGIHandler()
        self.machine = MachineWSGIHandler()

    def __call__(self, environ, start_response):
        handler = self.machine if is_machine_path(environ.get("PATH_INFO", "")) else self.pages
        return handler(environ, start_response)
