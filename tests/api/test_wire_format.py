"""The API's wire format, error by error, over plain HTTP (what any client sees)."""

import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from accounts.models import Account, AuditEvent
from mailing.keys import revoke_api_key
from mailing.models import ApiKey, Message

pytestmark = pytest.mark.django_db


def call(
    client,
    path: str,
    body,
    *,
    raw: bool = False,
    content_type: str | None = "application/json",
    method="post",
):
    data = body if raw else json.dumps(body)
    kwargs = {"content_type": content_type} if content_type else {"content_type": ""}
    return getattr(client, method)(f"/api/1.0/{path}", data, **kwargs)


def assert_error(response, name: str, status: int = 500):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "error" and body["name"] == name and body["message"]
    assert isinstance(body["code"], int)
    return body


@pytest.mark.parametrize("path", ["users/ping.json", "users/ping", "users/ping/"])
@pytest.mark.parametrize("version", ["1.0", "1.3", "1.4"])
def test_ping_on_every_version_with_or_without_json(client, master_key, path, version):
    _, key = master_key
    response = client.post(
        f"/api/{version}/{path}", json.dumps({"key": key}), content_type="application/json"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == "PONG!"


def test_ping2_and_a_body_without_content_type(client, master_key):
    _, key = master_key
    response = call(client, "users/ping2.json", {"key": key}, content_type=None)
    assert response.json() == {"PING": "PONG!"}


def test_users_info(client, subaccount_key):
    _sub, key = subaccount_key
    info = call(client, "users/info.json", {"key": key}).json()
    assert info["username"] == "acme" and info["public_id"] == "acme"
    assert set(info["stats"]) == {
        "today",
        "last_7_days",
        "last_30_days",
        "last_60_days",
        "last_90_days",
        "all_time",
    }


@pytest.mark.parametrize(
    "body, name",
    [
        ({}, "Invalid_Key"),
        ({"key": "md-nope"}, "Invalid_Key"),
        ({"key": 42}, "Invalid_Key"),
        ("not json", "ValidationError"),
        ("[1, 2]", "ValidationError"),
        ('"a string"', "ValidationError"),
    ],
)
def test_bad_bodies_and_keys_get_mandrill_shaped_errors(client, body, name):
    raw = isinstance(body, str)
    assert_error(call(client, "users/ping.json", body, raw=raw), name)


def test_a_revoked_key_is_invalid(client, master_key):
    master, key = master_key
    api_key = ApiKey.objects.get(account=master)
    owner = master.memberships.get().user
    revoke_api_key(actor=owner, account=master, key_id=api_key.pk)
    assert_error(call(client, "users/ping.json", {"key": key}), "Invalid_Key")


def test_unknown_calls_formats_and_methods(client, master_key):
    _, key = master_key
    assert_error(call(client, "users/nothing.json", {"key": key}), "Unknown_Url")
    assert_error(call(client, "users/ping.xml", {"key": key}), "ValidationError")
    assert_error(client.get("/api/1.0/users/ping.json"), "ValidationError", status=405)


def test_failed_key_lookups_are_throttled_per_ip(client, settings):
    settings.API_FAILED_KEYS_PER_MINUTE = 3
    for _ in range(3):
        assert_error(call(client, "users/ping.json", {"key": "wrong"}), "Invalid_Key")
    assert_error(call(client, "users/ping.json", {"key": "wrong"}), "RequestLimitExceeded", status=429)


def test_calls_per_key_are_rate_limited(client, master_key, settings):
    _, key = master_key
    settings.API_CALLS_PER_MINUTE = 2
    call(client, "users/ping.json", {"key": key})
    call(client, "users/ping.json", {"key": key})
    assert_error(call(client, "users/ping.json", {"key": key}), "RequestLimitExceeded", status=429)


def test_subaccount_lifecycle_over_the_api(
    client, master_key, mailoutbox, django_capture_on_commit_callbacks
):
    master, key = master_key
    with django_capture_on_commit_callbacks(execute=True):
        added = call(client, "subaccounts/add.json", {
            "key": key, "id": "cust-1", "name": "Customer One", "notes": None, "custom_quota": 50,
            "owner_email": "owner@cust.test",
        }).json()  # fmt: skip
    assert added["id"] == "cust-1" and added["custom_quota"] == 50 and added["status"] == "active"
    assert added["monthly_quota"] == 10_000  # the documented default
    assert "notes" not in added
    assert [m.to for m in mailoutbox] == [["owner@cust.test"]]  # the invite
    body = assert_error(call(client, "subaccounts/add.json", {"key": key, "id": "cust-1"}), "ValidationError")
    assert body["message"] == "A subaccount with id cust-1 already exists"
    info = call(client, "subaccounts/info.json", {"key": key, "id": "cust-1"}).json()
    assert {"notes", "sent_hourly", "hourly_quota", "last_30_days"} <= set(info)
    updated = call(
        client, "subaccounts/update.json", {"key": key, "id": "cust-1", "monthly_quota": 500}
    ).json()
    assert updated["monthly_quota"] == 500
    assert call(client, "subaccounts/pause.json", {"key": key, "id": "cust-1"}).json()["status"] == "paused"
    assert call(client, "subaccounts/pause.json", {"key": key, "id": "cust-1"}).json()["status"] == "paused"
    assert call(client, "subaccounts/resume.json", {"key": key, "id": "cust-1"}).json()["status"] == "active"
    listed = call(client, "subaccounts/list.json", {"key": key, "q": "cust"}).json()
    assert [s["id"] for s in listed] == ["cust-1"]
    call(client, "subaccounts/delete.json", {"key": key, "id": "cust-1"})
    assert_error(call(client, "subaccounts/info.json", {"key": key, "id": "cust-1"}), "Unknown_Subaccount")
    actors = set(
        AuditEvent.objects.filter(master=master, action__startswith="subaccount.").values_list(
            "actor_label", flat=True
        )
    )
    assert actors == {f"API key {ApiKey.objects.get(account=master).prefix}…"}


def test_a_subaccount_key_cannot_manage_subaccounts_or_send_as_another(client, subaccount_key):
    _sub, key = subaccount_key
    assert_error(call(client, "subaccounts/list.json", {"key": key}), "PermissionDenied")
    body = {
        "key": key,
        "message": {"from_email": "a@shop.test", "to": [{"email": "x@example.test"}], "subaccount": "other"},
    }
    assert_error(call(client, "messages/send.json", body), "PermissionDenied")


def test_another_masters_subaccount_is_unknown(client, master_key):
    from tests.factories import SubaccountFactory

    _, key = master_key
    SubaccountFactory(public_id="theirs")
    assert_error(call(client, "subaccounts/info.json", {"key": key, "id": "theirs"}), "Unknown_Subaccount")
    send = {
        "key": key,
        "message": {"from_email": "a@x.test", "to": [{"email": "b@x.test"}], "subaccount": "theirs"},
    }
    assert_error(call(client, "messages/send.json", send), "Unknown_Subaccount")


def test_send_as_a_subaccount_then_over_quota_is_rejected_not_queued(client, master_key, subaccount_key):
    _, master_secret = master_key
    sub, _ = subaccount_key
    Account.objects.filter(pk=sub.pk).update(monthly_limit=2)
    body = {"key": master_secret, "message": {
        "from_email": "shop@acme.test", "subject": "Hi", "text": "Hello", "subaccount": "acme",
        "to": [{"email": "a@example.test", "name": "A"}, {"email": "b@example.test", "type": "cc"}],
        "tags": ["welcome"], "metadata": {"order": "42"},
    }, "async": False, "ip_pool": None, "send_at": None}  # fmt: skip
    results = call(client, "messages/send.json", body).json()
    assert [(r["email"], r["status"]) for r in results] == [
        ("a@example.test", "queued"),
        ("b@example.test", "queued"),
    ]
    assert all(r["reject_reason"] is None and len(r["_id"]) == 32 for r in results)
    again = call(client, "messages/send.json", body).json()
    assert {(r["status"], r["reject_reason"]) for r in again} == {("rejected", "monthly-limit-reached")}
    info = call(client, "messages/info.json", {"key": master_secret, "id": results[0]["_id"]}).json()
    assert info["email"] == "a@example.test" and info["subaccount"] == "acme" and info["tags"] == ["welcome"]
    found = call(
        client, "messages/search.json", {"key": master_secret, "query": "email:b@example.test"}
    ).json()
    # The queued copy and the rejected one, newest first: the refusal is in the log too.
    assert [(m["_id"], m["state"]) for m in found] == [
        (again[1]["_id"], "rejected"),
        (results[1]["_id"], "queued"),
    ]
    assert found[0]["reject"]["reason"] == "monthly-limit-reached"


def test_paused_subaccount_answers_queued_sending_paused(client, subaccount_key):
    sub, key = subaccount_key
    Account.objects.filter(pk=sub.pk).update(status=Account.Status.PAUSED)
    body = {"key": key, "message": {"from_email": "a@acme.test", "to": [{"email": "x@example.test"}]}}
    result = call(client, "messages/send.json", body).json()[0]
    assert (result["status"], result["queued_reason"]) == ("queued", "sending-paused")
    assert Message.objects.get().status == Message.Status.HELD


def test_messages_are_tenant_scoped(client, master_key, subaccount_key):
    from mailing.keys import create_api_key
    from tests.factories import SubaccountFactory, subaccount_with_owner

    sub, key = subaccount_key
    sibling, sibling_owner = subaccount_with_owner(sub.parent, public_id="sibling")
    _, sibling_key = create_api_key(actor=sibling_owner, account=sibling, label="x")
    body = {"key": key, "message": {"from_email": "a@acme.test", "to": [{"email": "x@example.test"}]}}
    message_id = call(client, "messages/send.json", body).json()[0]["_id"]
    assert_error(
        call(client, "messages/info.json", {"key": sibling_key, "id": message_id}), "Unknown_Message"
    )
    assert call(client, "messages/search.json", {"key": sibling_key}).json() == []
    assert len(call(client, "messages/search.json", {"key": master_key[1]}).json()) == 1
    del SubaccountFactory


@pytest.mark.parametrize(
    "message, fragment",
    [
        (None, "message"),
        ({"to": [{"email": "x@example.test"}]}, "from_email"),
        ({"from_email": "a@x.test"}, "recipient"),
        ({"from_email": "a@x.test", "to": "x@example.test"}, "recipient"),
        ({"from_email": "a@x.test", "to": [{"email": "x@example.test", "type": "boss"}]}, "type"),
        ({"from_email": "a@x.test", "to": [{"email": "x@example.test"}], "tags": "one"}, "tags"),
        (
            {
                "from_email": "a@x.test",
                "to": [{"email": "x@example.test"}],
                "attachments": [{"name": "a", "content": "***"}],
            },
            "base64",
        ),
        ({"from_email": "a@x.test", "to": [{"email": "x@example.test"}], "subject": 5}, "subject"),
    ],
)
def test_send_validation_errors(client, subaccount_key, message, fragment):
    _, key = subaccount_key
    body = assert_error(
        call(client, "messages/send.json", {"key": key, "message": message}), "ValidationError"
    )
    assert fragment in body["message"]


def test_send_at_is_read_as_mandrill_writes_it(client, subaccount_key):
    _, key = subaccount_key
    message = {"from_email": "a@x.test", "to": [{"email": "b@x.test"}]}
    bad = {"key": key, "send_at": "next tuesday", "message": message}
    assert "send_at" in assert_error(call(client, "messages/send.json", bad), "ValidationError")["message"]
    good = {"key": key, "send_at": "2099-01-01 00:00:00", "message": message}
    assert call(client, "messages/send.json", good).json()[0]["status"] == "scheduled"


def test_too_many_recipients(client, subaccount_key, settings):
    _, key = subaccount_key
    settings.API_MAX_RECIPIENTS = 3
    to = [{"email": f"r{i}@example.test"} for i in range(4)]
    assert_error(
        call(client, "messages/send.json", {"key": key, "message": {"from_email": "a@x.test", "to": to}}),
        "ValidationError",
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=15,
)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    message=json_values,
    extra=st.dictionaries(st.sampled_from(["id", "name", "custom_quota", "notes", "q"]), json_values),
)
def test_random_json_only_ever_gets_documented_answers(client, subaccount_key, master_key, message, extra):
    _, sub_key = subaccount_key
    _, master_secret = master_key
    for path, body in (
        ("messages/send.json", {"key": sub_key, "message": message}),
        ("subaccounts/add.json", {"key": master_secret, **extra}),
    ):
        response = call(client, path, body)
        assert response["Content-Type"] == "application/json"
        payload = response.json()
        if response.status_code == 200:
            assert isinstance(payload, list | dict)
        else:
            assert response.status_code == 500
            assert payload["status"] == "error" and payload["name"] in {
                "ValidationError",
                "Unknown_Subaccount",
                "PermissionDenied",
            }


def test_an_oversized_body_gets_a_mandrill_error(client, subaccount_key, settings):
    _, key = subaccount_key
    settings.API_MAX_BODY_BYTES = 1024
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = {
        "key": key,
        "message": {"from_email": "a@x.test", "to": [{"email": "b@x.test"}], "text": "x" * 5000},
    }
    assert (
        "larger than" in assert_error(call(client, "messages/send.json", body), "ValidationError")["message"]
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [("u_order_id:123", ["a@example.test"]), ("full_email:b@example.test", ["b@example.test"]),
     ("email:other.test", ["c@other.test"]), ("template:welcome", ["c@other.test"]),
     ("u_order_id:999", []), ("u_order_id:123 email:example.test", ["a@example.test"])],
)  # fmt: skip
def test_search_by_metadata_full_email_domain_and_template(client, master_key, query, expected):
    from mailing.models import Message as Stored

    master, key = master_key
    for address, metadata, template in (("a@example.test", {"order_id": "123"}, ""), ("b@example.test", {}, ""),
                                       ("c@other.test", {"order_id": "7"}, "welcome")):  # fmt: skip
        Stored.objects.create(
            account=master, from_email="n@agency.test", to_email=address, metadata=metadata, template=template
        )
    found = call(client, "messages/search.json", {"key": key, "query": query}).json()
    assert sorted(item["email"] for item in found) == expected


def test_search_time_series_counts_by_hour(client, master_key):
    from mailing.models import Message as Stored

    master, key = master_key
    for status in ("sent", "sent", "rejected"):
        Stored.objects.create(
            account=master, from_email="n@agency.test", to_email="r@example.test", status=status
        )
    [row] = call(client, "messages/search-time-series.json", {"key": key, "query": "*"}).json()
    assert (row["sent"], row["rejects"], row["opens"]) == (2, 1, 0) and len(row["time"]) == 19
