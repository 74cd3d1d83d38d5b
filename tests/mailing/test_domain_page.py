"""The domain page: the four records to publish with their check in words, copy buttons, and the
Rotate DKIM key action (owners and admins only, audited, another account's domain is a 404)."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent, Membership
from mailing import domains
from mailing.models import DkimKey
from tests.factories import MembershipFactory, SubaccountFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db


def _member(account, role=Membership.Role.ADMIN):
    return MembershipFactory(account=account, role=role).user


def test_the_page_lists_each_record_with_its_check_in_words(client, dns_server):
    # given a domain whose ownership and SPF records are published, DKIM is wrong and DMARC missing
    sub = SubaccountFactory()
    admin = _member(sub)
    sender_domain = domains.add_domain(actor=admin, account=sub, domain="shop.example")
    key = DkimKey.objects.get(domain=sender_domain)
    dns_server.records = {
        sender_domain.record_name: [sender_domain.record_value],
        "shop.example": [domains.spf_record(sender_domain)],
        key.record_name: ["v=DKIM1; k=rsa; p=somethingelse"],
    }
    domains.verify_domain(actor=admin, account=sub, domain_id=sender_domain.pk)
    client.force_login(admin)
    # when the page is opened
    page = client.get(reverse("mailing:domain_list")).content.decode()
    # then each record is there to copy, with its state
    for name, value in (
        (sender_domain.record_name, sender_domain.record_value),
        (key.record_name, key.record_value),
        ("_dmarc.shop.example", domains.dmarc_record(sender_domain)),
    ):
        assert name in page and value in page
    assert "include:spf.reseller.example" in page
    assert page.count('class="badge dns-valid">Valid<') == 2  # ownership and SPF
    assert 'class="badge dns-wrong">Wrong<' in page  # DKIM: a record, not ours
    assert 'class="badge dns-missing">Missing<' in page  # DMARC: none
    assert "does not hold this key" in page
    assert page.count("data-copy=") == 8
    assert "js/copy.js" in page and "<script>" not in page  # the CSP allows no inline script


def test_a_domain_never_checked_says_so():
    sub = SubaccountFactory()
    sender_domain = domains.add_domain(actor=_member(sub), account=sub, domain="shop.example")
    states = {record.key: record.state_words for record in domains.records_to_publish(sender_domain)}
    assert states == dict.fromkeys(("ownership", "dkim", "spf", "dmarc"), "Not checked yet")


def test_rotating_the_dkim_key_makes_a_new_selector_and_audits_it(client):
    sub = SubaccountFactory()
    admin = _member(sub)
    sender_domain = domains.add_domain(actor=admin, account=sub, domain="shop.example")
    sender_domain.dns_checks = {"dkim": {"valid": True, "error": None, "state": "valid"}}
    sender_domain.save()
    old = DkimKey.objects.get()
    client.force_login(admin)
    response = client.post(reverse("mailing:domain_rotate_dkim", args=[sender_domain.pk]), follow=True)
    assert "New DKIM key made for shop.example" in response.content.decode()
    new = DkimKey.objects.exclude(pk=old.pk).get()
    assert new.record_name in response.content.decode()
    old.refresh_from_db()
    assert old.retired_at is None  # it signs until the new record is found
    sender_domain.refresh_from_db()
    assert "dkim" not in sender_domain.dns_checks
    event = AuditEvent.objects.get(action="domain.dkim_rotated")
    assert event.actor == admin and event.after == {"domain": "shop.example", "selector": new.selector}


def test_a_viewer_sees_no_rotate_button_and_cannot_rotate(client):
    sub = SubaccountFactory()
    sender_domain = domains.add_domain(actor=_member(sub), account=sub, domain="shop.example")
    viewer = _member(sub, Membership.Role.VIEWER)
    client.force_login(viewer)
    assert "Rotate DKIM key" not in client.get(reverse("mailing:domain_list")).content.decode()
    response = client.post(reverse("mailing:domain_rotate_dkim", args=[sender_domain.pk]), follow=True)
    assert "Only an owner or admin" in response.content.decode()
    assert DkimKey.objects.count() == 1
    assert not AuditEvent.objects.filter(action="domain.dkim_rotated").exists()


def test_another_accounts_domain_cannot_be_rotated(client):
    theirs, _ = subaccount_with_owner()
    sender_domain = domains.add_domain(actor=_member(theirs), account=theirs, domain="theirs.example")
    _ours, owner = subaccount_with_owner()
    client.force_login(owner)
    assert client.post(reverse("mailing:domain_rotate_dkim", args=[sender_domain.pk])).status_code == 404
    assert DkimKey.objects.filter(domain=sender_domain).count() == 1


def test_two_rotations_in_the_same_second_get_two_selectors():
    sub = SubaccountFactory()
    admin = _member(sub)
    sender_domain = domains.add_domain(actor=admin, account=sub, domain="shop.example")
    for _ in range(2):
        domains.rotate_dkim_key(actor=admin, account=sub, domain_id=sender_domain.pk)
    assert DkimKey.objects.filter(domain=sender_domain).values("selector").distinct().count() == 3
