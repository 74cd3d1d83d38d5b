"""Fuzzing that stays: hostile API bodies, raw SMTP messages and dashboard query strings, a bounded number
of examples each run. Each may only get a documented answer: Mandrill's error shape with a name we
document (never GeneralError, which tells clients to retry for ever), a permanent SMTP refusal or 250
(never 451 for bad input), and a page (never a 500). On PostgreSQL in CI, where NULs would break."""

import json
import os
import smtplib

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from accounts.models import Membership
from mailing.keys import create_api_key
from mailing.smtp import build_controller
from tests.factories import MasterFactory, MembershipFactory, subaccount_with_owner
from tests.mailing.conftest import free_port

pytestmark = pytest.mark.django_db

FUZZ = hsettings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", 60)),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

# FUZZ_EXAMPLES=400 for a longer hunt; CI keeps the default, bounded run.
# Strings a hostile or broken client sends: lone surrogates, NULs, control characters, long runs.
hostile_text = st.one_of(
    st.text(max_size=30),
    st.text(
        alphabet=st.sampled_from(["\x00", "\ud800", "\udfff", "\r", "\n", "\u202e", "a", "@", "<", '"']),
        max_size=12,
    ),
    st.just("x" * 2000),
)
hostile_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**18, max_value=10**40), st.floats(),
    hostile_text,
)  # fmt: skip
hostile_values = st.recursive(
    hostile_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(hostile_text, children, max_size=3),
    max_leaves=10,
)
deep_nesting = st.integers(min_value=30, max_value=3000).map(lambda depth: "[" * depth + "]" * depth)

MESSAGE_FIELDS = [
    "from_email", "from_name", "subject", "text", "html", "to", "headers", "tags", "metadata",
    "recipient_metadata", "attachments", "images", "subaccount",
]  # fmt: skip
DOCUMENTED = {
    "ValidationError",
    "Unknown_Subaccount",
    "PermissionDenied",
    "PaymentRequired",
    "Unknown_Message",
}


@pytest.fixture
def key(db):
    master = MasterFactory(public_id="agency", monthly_limit=1_000_000)
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    return create_api_key(actor=owner, account=master, label="fuzz")[1]


def _assert_documented(response):
    assert response["Content-Type"] == "application/json", response.content[:200]
    payload = response.json()
    if response.status_code != 200:
        assert response.status_code == 500, response.status_code
        assert payload["status"] == "error" and payload["name"] in DOCUMENTED, payload


@FUZZ
@given(
    replaced=st.dictionaries(st.sampled_from(MESSAGE_FIELDS), hostile_values, max_size=4),
    top=st.dictionaries(
        st.sampled_from(["send_at", "async", "ip_pool", "idempotency_key"]), hostile_values, max_size=2
    ),
)
def test_messages_send_with_hostile_fields(client, key, replaced, top):
    message = {
        "from_email": "news@agency.test",
        "to": [{"email": "reader@example.test"}],
        "text": "hi",
    } | replaced
    body = json.dumps({"key": key, "message": message} | top)  # ensure_ascii: surrogates travel as \\ud800
    _assert_documented(client.post("/api/1.0/messages/send.json", body, content_type="application/json"))


@FUZZ
@given(
    call=st.sampled_from(["messages/search", "messages/info", "subaccounts/add", "subaccounts/update",
                          "subaccounts/list", "subaccounts/info", "users/info"]),
    params=st.dictionaries(
        st.sampled_from(["query", "date_from", "date_to", "tags", "senders", "limit", "id", "name", "notes",
                         "custom_quota", "monthly_quota", "owner_email", "q"]),
        hostile_values, max_size=4,
    ),
)  # fmt: skip
def test_other_calls_with_hostile_parameters(client, key, call, params):
    body = json.dumps({"key": key} | params)
    _assert_documented(client.post(f"/api/1.0/{call}.json", body, content_type="application/json"))


@FUZZ
@given(
    raw=st.one_of(
        deep_nesting, st.binary(max_size=200), hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass"))
    )
)
def test_bodies_that_are_not_json_objects(client, key, raw):
    _assert_documented(client.post("/api/1.0/users/ping.json", raw, content_type="application/json"))


# --- SMTP ------------------------------------------------------------------------------------------------


@pytest.fixture
def smtp_port(settings):
    port = free_port()
    controller = build_controller(hostname="127.0.0.1", port=port, require_tls_for_auth=False)
    controller.start()
    yield port
    controller.stop()


header_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
mime = st.builds(
    lambda subject, charset, ctype, body, extra: (
        b"From: news@agency.test\r\nTo: reader@example.test\r\nSubject: " + subject + b"\r\n"
        + b"MIME-Version: 1.0\r\nContent-Type: " + ctype + b"; charset=" + charset + b"\r\n"
        + b"".join(b"X-F" + str(n).encode() + b": " + value + b"\r\n" for n, value in enumerate(extra))
        + b"\r\n" + body
    ),
    subject=header_bytes,
    charset=st.sampled_from([b"utf-8", b"latin-1", b"x-unknown", b"utf-16", b'"', b""]),
    ctype=st.sampled_from([b"text/plain", b"text/html", b"multipart/mixed", b"application/octet-stream", b"??"]),
    body=st.binary(max_size=300),
    extra=st.lists(header_bytes, max_size=3),
)  # fmt: skip


@pytest.mark.django_db(transaction=True)
@hsettings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=mime)
def test_raw_smtp_messages_get_250_or_a_permanent_refusal(smtp_port, key, raw):
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
        smtp.login("agency", key)
        try:
            smtp.sendmail("news@agency.test", ["reader@example.test"], raw)
        except smtplib.SMTPDataError as refused:
            assert refused.smtp_code in (550, 552, 554), (refused.smtp_code, refused.smtp_error)


# --- the dashboard's query strings ----------------------------------------------------------------------

query_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40) | st.just("a\x00b")
PAGES = ["accounts:subaccount_list", "accounts:billing", "accounts:activity", "accounts:overview",
         "mailing:message_list", "mailing:archive_list", "accounts:alert_settings"]  # fmt: skip


@FUZZ
@given(
    page=st.sampled_from(PAGES),
    params=st.dictionaries(
        st.sampled_from(["q", "status", "sort", "page", "month", "recipient", "tag", "date_from", "date_to",
                         "range", "subaccount"]),
        query_text, max_size=4,
    ),
)  # fmt: skip
def test_dashboard_pages_answer_any_query_string(client, page, params):
    sub, _owner = subaccount_with_owner()
    client.force_login(MembershipFactory(account=sub.parent, role=Membership.Role.ADMIN).user)
    response = client.get(reverse(page), params)
    assert response.status_code == 200, (page, params, response.status_code)
