"""senders/*: Mandrill's domain object with our DKIM, SPF and DMARC checks against a local DNS server, and
the sender addresses an account has used."""

import json

import pytest

from accounts.models import Membership
from mailing import domains
from mailing.deliverability import signing
from mailing.keys import create_api_key
from tests.api.test_wire_format import assert_error
from tests.factories import MasterFactory, MembershipFactory

pytestmark = [pytest.mark.django_db, pytest.mark.verified_domains_only]


@pytest.fixture
def key(db):
    master = MasterFactory(public_id="agency")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    return create_api_key(actor=owner, account=master, label="s")[1]


def _api(client, path, body):
    return client.post(f"/api/1.0/{path}.json", json.dumps(body), content_type="application/json")


def test_add_check_and_verify_a_domain(client, key, dns_server):
    added = _api(client, "senders/add-domain", {"key": key, "domain": "Mail.Agency.Example"}).json()
    assert (
        added["domain"] == "mail.agency.example"
        and added["verified_at"] is None
        and added["valid_signing"] is False
    )
    assert_error(
        _api(
            client,
            "senders/verify-domain",
            {"key": key, "domain": "mail.agency.example", "mailbox": "postmaster"},
        ),
        "ValidationError",
    )
    from mailing.models import SenderDomain

    sender_domain = SenderDomain.objects.get()
    key_record = signing.newest_key(sender_domain)
    dns_server.records = {
        sender_domain.record_name: [sender_domain.record_value],
        key_record.record_name: [key_record.record_value],
        "mail.agency.example": [domains.spf_record(sender_domain)],
    }
    checked = _api(client, "senders/check-domain", {"key": key, "domain": "mail.agency.example"}).json()
    assert checked["verified_at"] and checked["valid_signing"] is True
    assert (checked["dkim"]["valid"], checked["spf"]["valid"], checked["dmarc"]["valid"]) == (
        True,
        True,
        False,
    )
    assert "_dmarc.mail.agency.example" in checked["dmarc"]["error"]
    assert [d["domain"] for d in _api(client, "senders/domains", {"key": key}).json()] == [
        "mail.agency.example"
    ]
    verified = _api(
        client, "senders/verify-domain", {"key": key, "domain": "mail.agency.example", "mailbox": "x"}
    ).json()
    assert verified["status"] == "already_verified"


def test_senders_used_and_their_info(client, key, settings):
    settings.REQUIRE_VERIFIED_SENDING_DOMAIN = False
    message = {"from_email": "news@agency.example", "text": "x", "to": [{"email": "r@example.test"}]}
    _api(client, "messages/send", {"key": key, "message": message})
    [sender] = _api(client, "senders/list", {"key": key}).json()
    assert (sender["address"], sender["sent"]) == ("news@agency.example", 1)
    assert _api(client, "users/senders", {"key": key}).json() == [sender]
    assert _api(client, "senders/info", {"key": key, "address": "news@agency.example"}).json()["sent"] == 1
    assert_error(
        _api(client, "senders/info", {"key": key, "address": "other@agency.example"}), "Unknown_Sender"
    )
