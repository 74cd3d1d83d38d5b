"""A local HTTP receiver for webhook tests: records each request, answers from a script."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return {name: values[0] for name, values in parse_qs(self.body.decode()).items()}


@dataclass
class Receiver:
    url: str = ""
    requests: list[Received] = field(default_factory=list)
    # Each request takes the first reply: an int status, ("sleep", seconds), ("redirect", location),
    # ("big", bytes) ; when empty, 200.
    replies: list = field(default_factory=list)
    head_status: int = 200

    def posts(self) -> list[Received]:
        return [r for r in self.requests if r.method == "POST"]


def start(receiver: Receiver, tls=None) -> ThreadingHTTPServer:
    """Serve on loopback (HTTPS with `tls`, an ssl.SSLContext holding the server's certificate)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _record(self, method):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            receiver.requests.append(Received(method, self.path, dict(self.headers.items()), body))

        def do_HEAD(self):
            self._record("HEAD")
            self.send_response(receiver.head_status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self):
            self._record("POST")
            reply = receiver.replies.pop(0) if receiver.replies else 200
            if isinstance(reply, tuple) and reply[0] == "sleep":
                time.sleep(reply[1])
                reply = 200
            if isinstance(reply, tuple) and reply[0] == "redirect":
                self.send_response(302)
                self.send_header("Location", reply[1])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if isinstance(reply, tuple) and reply[0] == "big":
                self.send_response(200)
                self.send_header("Content-Length", str(reply[1]))
                self.end_headers()
                with contextlib.suppress(OSError):  # we hang up once we have read enough
                    self.wfile.write(b"x" * reply[1])
                return
            self.send_response(reply)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls is not None else "http"
    receiver.url = f"{scheme}://127.0.0.1:{server.server_address[1]}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
