"""DKIM: every domain gets a key at add; the check finds its record (and SPF and DMARC); delivered mail is
signed with the From domain's key, or the master's shared one, and the signature verifies with dkimpy
against the record served by a DNS server on loopback, after a rotation too."""

import base64

import dkim
import pytest
from django.utils import timezone

from accounts.models import Membership
from mailing import delivery, domains
from mailing.deliverability import signing
from mailing.models import DkimKey, Message, SenderDomain
from mailing.sending import OutgoingMessage, Recipient, accept_messages
from tests.factories import MembershipFactory, SubaccountFactory, subaccount_with_owner

pytestmark = [pytest.mark.django_db, pytest.mark.verified_domains_only]


def _admin(account):
    return MembershipFactory(account=account, role=Membership.Role.ADMIN).user


def _publish(dns_server, sender_domain, *, dkim_record=True):
    records = {sender_domain.record_name: [sender_domain.record_value]}
    key = signing.newest_key(sender_domain)
    if dkim_record:
        records[key.record_name] = [key.record_value]
    records[sender_domain.domain] = [domains.spf_record(sender_domain)]
    records[f"_dmarc.{sender_domain.domain}"] = [domains.dmarc_record(sender_domain)]
    dns_server.records |= records


def _verified_domain(dns_server, account, name="shop.example"):
    sender_domain = domains.add_domain(actor=_admin(account), account=account, domain=name)
    _publish(dns_server, sender_domain)
    return domains.verify_domain(actor=_admin(account), account=account, domain_id=sender_domain.pk)


def _deliver(account, sink, **fields):
    message = OutgoingMessage(
        from_email="news@shop.example", recipients=[Recipient("reader@example.test")], **fields
    )
    [result] = accept_messages(account=account, message=message)
    delivery.deliver([Message.objects.get(public_id=result.id).pk])
    return sink.received[-1].original_content or sink.received[-1].content


def _verifies(data: bytes) -> bool:
    def dnsfunc(name, timeout=5):
        return "".join(domains.lookup_txt(name.decode().rstrip("."))).encode()

    return dkim.verify(data, dnsfunc=dnsfunc)


def test_a_domain_gets_a_key_and_the_check_reports_each_record(dns_server):
    sub = SubaccountFactory()
    sender_domain = domains.add_domain(actor=_admin(sub), account=sub, domain="shop.example")
    key = DkimKey.objects.get(domain=sender_domain)
    assert key.record_name.endswith("._domainkey.shop.example") and key.record_value.startswith(
        "v=DKIM1; k=rsa; p="
    )
    assert not key.private_key.startswith("-----")  # encrypted at rest
    checked = domains.verify_domain(actor=_admin(sub), account=sub, domain_id=sender_domain.pk)
    assert {name: check["valid"] for name, check in checked.dns_checks.items()} == {
        "dkim": False,
        "spf": False,
        "dmarc": False,
    }
    _publish(dns_server, sender_domain)
    checked = domains.verify_domain(actor=_admin(sub), account=sub, domain_id=sender_domain.pk)
    assert all(check["valid"] for check in checked.dns_checks.values()), checked.dns_checks


@pytest.mark.parametrize(
    "fields",
    [{"subject": "Plain", "text": "Hello"},
     {"subject": "Rich", "text": "Hi", "html": "<p>Hi</p>",
      "attachments": [{"name": "a.pdf", "type": "application/pdf", "content": base64.b64encode(b"%PDF").decode()}]},
     {"subject": "Grüße aus Köln ✓", "text": "Schöne Grüße — ünïcødé", "from_name": "Café Ümlaut"}],
)  # fmt: skip
def test_delivered_mail_is_signed_and_verifies(dns_server, smtp_sink, fields):
    sub = SubaccountFactory()
    _verified_domain(dns_server, sub)
    data = _deliver(sub, smtp_sink, **fields)
    assert data.startswith(b"DKIM-Signature:") and b"d=shop.example" in data
    assert _verifies(data)


def test_an_unpublished_key_does_not_sign(dns_server, smtp_sink):
    sub = SubaccountFactory()
    sender_domain = domains.add_domain(actor=_admin(sub), account=sub, domain="shop.example")
    _publish(dns_server, sender_domain, dkim_record=False)
    domains.verify_domain(actor=_admin(sub), account=sub, domain_id=sender_domain.pk)
    assert not _deliver(sub, smtp_sink, text="x").startswith(b"DKIM-Signature:")


def test_a_subaccount_sending_from_its_masters_shared_domain_is_signed_with_that_key(dns_server, smtp_sink):
    sub, _ = subaccount_with_owner()
    master = sub.parent
    sender_domain = _verified_domain(dns_server, master)
    domains.share_domain(
        actor=_admin(master),
        master=master,
        domain_id=sender_domain.pk,
        subaccount_ids=[sub.pk],
        all_subaccounts=False,
    )
    data = _deliver(sub, smtp_sink, text="from the agency's domain")
    selector = signing.active_key(sender_domain).selector
    assert f"s={selector}".encode() in data and _verifies(data)


def test_after_a_rotation_the_new_key_signs_once_published(dns_server, smtp_sink):
    sub = SubaccountFactory()
    sender_domain = _verified_domain(dns_server, sub)
    old = signing.active_key(sender_domain)
    new = signing.generate_key(sender_domain, selector="rs2099")
    # until its record is found, the old key goes on signing
    assert f"s={old.selector}".encode() in _deliver(sub, smtp_sink, text="1")
    dns_server.records[new.record_name] = [new.record_value]
    domains.verify_domain(actor=_admin(sub), account=sub, domain_id=sender_domain.pk)
    data = _deliver(sub, smtp_sink, text="2")
    assert b"s=rs2099" in data and _verifies(data)
    old.refresh_from_db()
    assert old.retired_at is not None


def test_the_most_specific_usable_domain_signs_in_two_queries_however_many_it_has(
    django_assert_num_queries,
):
    # given an account with a domain, its subdomain, a deeper one whose key is not published, and others
    sub = SubaccountFactory()
    keys = {}
    for name in (
        "shop.example",
        "eu.shop.example",
        "mail.eu.shop.example",
        "other.example",
        "shop.example.net",
    ):
        sender_domain = SenderDomain.objects.create(
            account=sub, domain=name, token="t", verified_at=timezone.now()
        )
        keys[name] = signing.generate_key(sender_domain)
        if name != "mail.eu.shop.example":
            signing.mark_published(keys[name])
    expected = {
        "news@eu.shop.example": "eu.shop.example",
        "news@x.eu.shop.example": "eu.shop.example",
        "news@SHOP.example.": "shop.example",
        "news@mail.eu.shop.example": None,  # its own domain decides, though it cannot sign yet
        "news@elsewhere.example": None,
    }
    for from_email, domain in expected.items():
        with django_assert_num_queries(2 if domain or "mail." in from_email else 1):
            found = signing.signing_key_for(sub, from_email)
        assert found == ((domain, keys[domain]) if domain else None), from_email
