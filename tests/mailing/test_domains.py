"""Sending domains, verified through the real dnspython lookup path against a small local DNS server."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.errors import ValidationError
from accounts.models import Membership
from mailing import domains
from mailing.models import Message, SenderDomain
from mailing.sending import OutgoingMessage, Recipient, accept_messages
from tests.factories import MembershipFactory, SubaccountFactory, subaccount_with_owner

pytestmark = [pytest.mark.django_db, pytest.mark.verified_domains_only]


def _admin(account):
    return MembershipFactory(account=account, role=Membership.Role.ADMIN).user


def _send(account, from_email="news@shop.example"):
    message = OutgoingMessage(
        from_email=from_email, subject="Hi", text="x", recipients=[Recipient("a@example.test")]
    )
    return accept_messages(account=account, message=message)[0]


def test_mail_from_an_unverified_domain_is_rejected_unsigned():
    sub = SubaccountFactory()
    result = _send(sub)
    assert (result.status, result.reject_reason) == ("rejected", "unsigned")
    # Recorded for the log (no body), never queued.
    [stored] = Message.objects.all()
    assert (stored.status, stored.reject_reason, stored.public_id) == ("rejected", "unsigned", result.id)


@pytest.mark.parametrize(
    "records, silent, expected",
    [
        ({}, set(), "No TXT record"),
        ({"_reseller-verify.shop.example": ["reseller-verify=wrong"]}, set(), "does not hold"),
        (None, {"_reseller-verify.shop.example"}, "timed out"),
    ],
)
def test_verification_failures_say_why(dns_server, records, silent, expected):
    sub = SubaccountFactory()
    admin = _admin(sub)
    sender_domain = domains.add_domain(actor=admin, account=sub, domain="Shop.Example.")
    dns_server.records = records or {}
    dns_server.silent = silent
    checked = domains.verify_domain(actor=admin, account=sub, domain_id=sender_domain.pk)
    assert checked.verified_at is None and expected in checked.last_error
    assert _send(sub).reject_reason == "unsigned"


def test_the_right_token_verifies_and_mail_flows(dns_server):
    sub = SubaccountFactory()
    admin = _admin(sub)
    sender_domain = domains.add_domain(actor=admin, account=sub, domain="shop.example")
    dns_server.records = {sender_domain.record_name: ["v=spf1 -all", sender_domain.record_value]}
    assert domains.verify_domain(actor=admin, account=sub, domain_id=sender_domain.pk).verified_at is not None
    assert _send(sub).status == "queued"
    assert _send(sub, "alerts@eu.shop.example").status == "queued"  # subdomains too
    assert _send(sub, "x@othershop.example").reject_reason == "unsigned"


@pytest.mark.parametrize(
    "bad", ["", "http://shop.example", "me@shop.example", "no_tld", "-bad.example", "a" * 300]
)
def test_bad_domains_are_refused(bad):
    sub = SubaccountFactory()
    with pytest.raises(ValidationError):
        domains.add_domain(actor=_admin(sub), account=sub, domain=bad)


def test_a_master_shares_a_verified_domain_with_chosen_and_future_subaccounts(dns_server):
    chosen, _ = subaccount_with_owner()
    master = chosen.parent
    other, _ = subaccount_with_owner(master)
    admin = _admin(master)
    sender_domain = domains.add_domain(actor=admin, account=master, domain="agency.example")
    with pytest.raises(ValidationError):  # not verified yet
        domains.share_domain(actor=admin, master=master, domain_id=sender_domain.pk, subaccount_ids=[chosen.pk],
                             all_subaccounts=False)  # fmt: skip
    dns_server.records = {sender_domain.record_name: [sender_domain.record_value]}
    domains.verify_domain(actor=admin, account=master, domain_id=sender_domain.pk)
    foreign = SubaccountFactory()
    domains.share_domain(actor=admin, master=master, domain_id=sender_domain.pk, subaccount_ids=[chosen.pk, foreign.pk],
                         all_subaccounts=False)  # fmt: skip
    assert _send(chosen, "news@agency.example").status == "queued"
    assert _send(other, "news@agency.example").reject_reason == "unsigned"
    assert list(sender_domain.shared_with.all()) == [chosen]  # the foreign one was ignored
    domains.share_domain(
        actor=admin, master=master, domain_id=sender_domain.pk, subaccount_ids=[], all_subaccounts=True
    )
    future, _ = subaccount_with_owner(master)
    assert _send(future, "news@agency.example").status == "queued"
    assert _send(foreign, "news@agency.example").reject_reason == "unsigned"


def test_the_domains_page_and_tenant_isolation(client, dns_server):
    sub, owner = subaccount_with_owner()
    client.force_login(owner)
    page = client.post(
        reverse("mailing:domain_list"), {"domain": "shop.example"}, follow=True
    ).content.decode()
    assert "_reseller-verify.shop.example" in page and "reseller-verify=" in page
    sender_domain = SenderDomain.objects.get(account=sub)
    dns_server.records = {sender_domain.record_name: [sender_domain.record_value]}
    row = client.post(
        reverse("mailing:domain_verify", args=[sender_domain.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Verified" in row and row.lstrip().startswith(
        f'<section class="card domain-card" id="domain-{sender_domain.pk}"'
    )
    assert "<header" not in row and 'hx-swap-oob="true"' in row  # a fragment, with the flash beside it
    theirs = SenderDomain.objects.create(account=SubaccountFactory(), domain="theirs.example", token="t")
    assert client.post(reverse("mailing:domain_verify", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("mailing:domain_remove", args=[theirs.pk])).status_code == 404
    assert (
        client.post(reverse("mailing:domain_share", args=[sender_domain.pk])).status_code == 404
    )  # not a master


# --- the per-process memory of allowed domains (API_KEY_CACHE_SECONDS) -----------------------------------


@pytest.fixture
def clock(monkeypatch):
    from reseller import process_cache

    now = {"t": 1000.0}
    monkeypatch.setattr(process_cache, "clock", lambda: now["t"])
    return now


def test_an_allowed_domain_is_remembered_and_a_removal_applies_within_the_ttl(settings, clock):
    # given a verified domain, used once
    settings.API_KEY_CACHE_SECONDS = 5
    sub = SubaccountFactory()
    sender_domain = SenderDomain.objects.create(
        account=sub, domain="shop.example", token="t", verified_at=timezone.now()
    )
    assert domains.may_send_from(sub, "news@shop.example")
    # when it is removed (by another process: this one's memory is not told)
    sender_domain.delete()
    # then it is still allowed here for at most the TTL, with no query, and refused after
    with CaptureQueriesContext(connection) as queries:
        assert domains.may_send_from(sub, "news@shop.example")
    assert len(queries) == 0
    clock["t"] += 5.01
    assert not domains.may_send_from(sub, "news@shop.example")


def test_a_refusal_is_never_remembered(settings):
    # a domain verified a moment after a refused send is usable at once
    settings.API_KEY_CACHE_SECONDS = 5
    sub = SubaccountFactory()
    assert not domains.may_send_from(sub, "news@shop.example")
    SenderDomain.objects.create(account=sub, domain="shop.example", token="t", verified_at=timezone.now())
    assert domains.may_send_from(sub, "news@shop.example")


def test_the_memory_is_per_account(settings):
    settings.API_KEY_CACHE_SECONDS = 5
    sub, stranger = SubaccountFactory(), SubaccountFactory()
    SenderDomain.objects.create(account=sub, domain="shop.example", token="t", verified_at=timezone.now())
    assert domains.may_send_from(sub, "news@shop.example")
    assert not domains.may_send_from(stranger, "news@shop.example")
