"""The suppression list: a suppressed address is rejected with Mandrill's reason and costs no quota; the
allowlist wins; rejects/* and allowlists/* (and whitelists/*) as Mandrill's clients call them."""

import json
from datetime import timedelta

import mailchimp_transactional
import pytest
from django.utils import timezone
from mailchimp_transactional.api_client import ApiClientError

from accounts.models import Membership, Usage
from mailing.deliverability import suppression
from mailing.keys import create_api_key
from mailing.models import Message, Suppression
from tests.api.test_wire_format import assert_error
from tests.factories import MasterFactory, MembershipFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db


@pytest.fixture
def agency(db):
    master = MasterFactory(public_id="agency")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    shop, shop_owner = subaccount_with_owner(master, public_id="shop", monthly_limit=10)
    return {
        "master": master, "shop": shop,
        "master_key": create_api_key(actor=owner, account=master, label="r")[1],
        "shop_key": create_api_key(actor=shop_owner, account=shop, label="r")[1],
    }  # fmt: skip


def _api(client, path, body):
    return client.post(f"/api/1.0/{path}.json", json.dumps(body), content_type="application/json")


def _send(client, key, *emails):
    message = {"from_email": "news@shop.test", "text": "hi", "to": [{"email": e} for e in emails]}
    return {r["email"]: r for r in _api(client, "messages/send", {"key": key, "message": message}).json()}


def test_a_suppressed_address_is_rejected_with_its_reason_at_no_cost(client, agency):
    shop = agency["shop"]
    suppression.suppress(account=shop, email="Gone@Example.test", reason="hard-bounce", detail="550 5.1.1")
    suppression.suppress(
        account=shop,
        email="later@example.test",
        reason="soft-bounce",
        expires_at=timezone.now() - timedelta(days=1),
    )
    results = _send(client, agency["shop_key"], "gone@example.test", "ok@example.test", "later@example.test")
    assert (results["gone@example.test"]["status"], results["gone@example.test"]["reject_reason"]) == (
        "rejected",
        "hard-bounce",
    )
    assert (
        results["ok@example.test"]["status"] == results["later@example.test"]["status"] == "queued"
    )  # expired entry
    month = Usage.objects.get(account=shop, window=Usage.Window.MONTH)
    assert month.sent == 2
    # The refusal is on record for the log, at no cost.
    assert Message.objects.filter(status=Message.Status.REJECTED).count() == 1
    assert Message.objects.exclude(status=Message.Status.REJECTED).count() == 2


def test_suppression_is_per_account_and_the_allowlist_wins(client, agency):
    suppression.suppress(account=agency["master"], email="x@example.test", reason="spam")
    assert _send(client, agency["shop_key"], "x@example.test")["x@example.test"]["status"] == "queued"
    suppression.suppress(account=agency["shop"], email="y@example.test", reason="unsub")
    suppression.allow(account=agency["shop"], email="y@example.test")
    assert _send(client, agency["shop_key"], "y@example.test")["y@example.test"]["status"] == "queued"
    assert suppression.suppress(account=agency["shop"], email="y@example.test", reason="hard-bounce") is False


def test_a_new_soft_bounce_never_shortens_a_permanent_entry(agency):
    shop = agency["shop"]
    suppression.suppress(account=shop, email="z@example.test", reason="hard-bounce")
    suppression.suppress(
        account=shop,
        email="z@example.test",
        reason="soft-bounce",
        expires_at=timezone.now() + timedelta(days=1),
    )
    entry = Suppression.objects.get(email="z@example.test")
    assert (entry.reason, entry.expires_at) == ("hard-bounce", None)


def test_the_rejects_calls_for_a_master_and_its_subaccount(client, agency):
    key = agency["master_key"]
    assert _api(client, "rejects/add", {"key": key, "email": "a@example.test", "comment": "asked", "subaccount": "shop"}).json() == {
        "email": "a@example.test", "added": True}  # fmt: skip
    [listed] = _api(client, "rejects/list", {"key": key, "subaccount": "shop"}).json()
    assert (listed["email"], listed["reason"], listed["detail"], listed["subaccount"], listed["expired"]) == (
        "a@example.test", "custom", "asked", "shop", False)  # fmt: skip
    assert _api(client, "rejects/list", {"key": key}).json() == []  # the agency's own list is another list
    assert_error(_api(client, "rejects/list", {"key": key, "subaccount": "nope"}), "Unknown_Subaccount")
    assert_error(
        _api(
            client,
            "rejects/add",
            {"key": agency["shop_key"], "email": "b@example.test", "subaccount": "agency"},
        ),
        "PermissionDenied",
    )
    deleted = _api(
        client, "rejects/delete", {"key": key, "email": "a@example.test", "subaccount": "shop"}
    ).json()
    assert deleted == {"email": "a@example.test", "deleted": True, "subaccount": "shop"}
    assert_error(
        _api(client, "rejects/delete", {"key": key, "email": "a@example.test", "subaccount": "shop"}),
        "Invalid_Reject",
    )


@pytest.mark.parametrize("group", ["allowlists", "whitelists"])
def test_the_allowlist_calls_and_their_old_name(client, agency, group):
    key = agency["shop_key"]
    suppression.suppress(account=agency["shop"], email="vip@example.test", reason="spam")
    assert _api(
        client, f"{group}/add", {"key": key, "email": "vip@example.test", "comment": "boss"}
    ).json() == {"email": "vip@example.test", "added": True}
    assert not Suppression.objects.exists()  # allowlisting lifts the suppression
    assert [e["email"] for e in _api(client, f"{group}/list", {"key": key, "email": "vip"}).json()] == [
        "vip@example.test"
    ]
    assert _api(client, f"{group}/delete", {"key": key, "email": "vip@example.test"}).json() == {
        "email": "vip@example.test",
        "deleted": True,
    }


@pytest.mark.django_db(transaction=True)
def test_the_official_client_manages_rejects(live_server, agency):
    official = mailchimp_transactional.Client(agency["master_key"])
    official.api_client.host = f"{live_server.url}/api/1.3"
    assert official.rejects.add({"email": "c@example.test", "subaccount": "shop"})["added"] is True
    assert [r["email"] for r in official.rejects.list({"subaccount": "shop"})] == ["c@example.test"]
    assert official.rejects.delete({"email": "c@example.test", "subaccount": "shop"})["deleted"] is True
    with pytest.raises(ApiClientError) as missing:
        official.rejects.delete({"email": "c@example.test", "subaccount": "shop"})
    assert missing.value.text["name"] == "Invalid_Reject"
