"""The WSGI application runs two middleware stacks: programs' paths (the API, the probes) skip the
pages' sessions, CSRF, auth, messages and CSP; pages keep all of it (reseller/handlers.py)."""

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest

from accounts.models import Membership
from mailing.keys import create_api_key
from reseller.handlers import MachineWSGIHandler, is_machine_path
from reseller.wsgi import application
from tests.factories import MasterFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _call(method: str, path: str, body: bytes = b"") -> tuple[str, dict[str, list[str]], bytes]:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": "application/json", "wsgi.input": io.BytesIO(body), "HTTP_HOST": "testserver",
               "SERVER_NAME": "testserver"}  # fmt: skip
    setup_testing_defaults(environ)
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"] = status
        seen["headers"] = {}
        for name, value in headers:
            seen["headers"].setdefault(name.lower(), []).append(value)

    body_out = b"".join(application(environ, start_response))
    return seen["status"], seen["headers"], body_out


def test_the_api_runs_without_the_pages_stack(settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    master = MasterFactory()
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    _, key = create_api_key(actor=owner, account=master, label="wsgi")
    status, headers, body = _call("POST", "/api/1.0/users/ping.json", json.dumps({"key": key}).encode())
    assert status.startswith("200") and json.loads(body) == "PONG!"
    assert "set-cookie" not in headers and "content-security-policy" not in headers
    assert "cookie" not in ",".join(headers.get("vary", [])).lower()
    status, _, body = _call("POST", "/api/1.0/users/ping.json", b"{not json")
    assert status.startswith("500") and json.loads(body)["name"] == "ValidationError"


def test_pages_keep_sessions_csrf_and_the_csp(settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    status, headers, body = _call("GET", "/accounts/login/")
    assert status.startswith("200") and b"csrfmiddlewaretoken" in body
    assert "content-security-policy" in headers
    assert any(cookie.startswith("csrftoken=") for cookie in headers.get("set-cookie", []))


def test_which_paths_are_programs_and_the_lean_stack_is_what_settings_say(settings):
    assert is_machine_path("/api/1.0/messages/send.json") and is_machine_path("/readyz")
    assert not is_machine_path("/accounts/login/") and not is_machine_path("/api-keys/")
    handler = MachineWSGIHandler()
    assert handler._view_middleware == []  # no CSRF view check, no other hooks
    assert settings.MIDDLEWARE != settings.MACHINE_MIDDLEWARE  # building it left the pages' list alone


def test_the_tracking_pixel_and_links_run_without_the_pages_stack(settings):
    from mailing.models import Message
    from mailing.tracking import tokens
    from tests.factories import SubaccountFactory

    settings.ALLOWED_HOSTS = ["testserver"]
    message = Message.objects.create(account=SubaccountFactory(), from_email="a@example.test",
                                     to_email="b@example.test", track_opens=True, track_clicks=True,
                                     tracked_links=["https://shop.example/"])  # fmt: skip
    status, headers, body = _call("GET", f"/t/o/{tokens.open_token(message.public_id)}")
    assert status.startswith("200") and body.startswith(b"GIF89a")
    assert headers["content-length"] == [str(len(body))]
    assert "set-cookie" not in headers and "content-security-policy" not in headers
    status, headers, _ = _call("GET", f"/t/c/{tokens.click_token(message.public_id, 0)}")
    assert status.startswith("302") and headers["location"] == ["https://shop.example/"]
    assert "set-cookie" not in headers
    status, _, _ = _call("GET", "/t/c/forged")
    assert status.startswith("404")
    assert is_machine_path("/t/o/x") and not is_machine_path("/t/u/x")  # the unsubscribe page is a page
