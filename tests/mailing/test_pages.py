import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, AuditEvent, Membership
from mailing import archive
from mailing.models import ApiKey, ArchivedMessage, Message
from tests.factories import MembershipFactory, create_archived, subaccount_with_owner

pytestmark = pytest.mark.django_db


def _message(account, **fields):
    defaults = {"from_email": "shop@example.test", "to_email": "client@example.test", "subject": "Hello"}
    return Message.objects.create(account=account, **(defaults | fields))


def _archived(account, **fields):
    defaults = {"from_email": "shop@example.test", "to_email": "client@example.test", "subject": "Receipt",
                "html": "<p>Thanks</p><script>alert(1)</script>", "sent_at": timezone.now()}  # fmt: skip
    return create_archived(account=account, **(defaults | fields))


def test_the_owner_sees_and_filters_only_their_own_messages(client):
    sub, owner = subaccount_with_owner()
    sibling, _ = subaccount_with_owner(sub.parent)
    _message(sub, to_email="ana@example.test", status=Message.Status.SENT, tags=["order"])
    _message(sub, to_email="ben@example.test", status=Message.Status.FAILED, last_error="550 no such user")
    _message(sibling, to_email="sibling@example.test")
    client.force_login(owner)
    page = client.get(reverse("mailing:message_list")).content.decode()
    assert "ana@example.test" in page and "ben@example.test" in page and "sibling@" not in page
    failed = client.get(reverse("mailing:message_list"), {"status": "failed"}).content.decode()
    assert "ben@example.test" in failed and "ana@example.test" not in failed
    tagged = client.get(
        reverse("mailing:message_list"), {"tag": "order"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "ana@example.test" in tagged and "ben@" not in tagged and "<html" not in tagged


def test_message_detail_and_another_tenants_message_is_a_404(client):
    sub, owner = subaccount_with_owner()
    mine = _message(sub, subject="My receipt", last_error="451 try later")
    theirs = _message(subaccount_with_owner(sub.parent)[0])
    client.force_login(owner)
    assert (
        "My receipt" in client.get(reverse("mailing:message_detail", args=[mine.public_id])).content.decode()
    )
    assert client.get(reverse("mailing:message_detail", args=[theirs.public_id])).status_code == 404


def test_a_master_sees_its_subaccounts_messages(client):
    sub, _ = subaccount_with_owner()
    _message(sub, to_email="viaagency@example.test")
    client.force_login(MembershipFactory(account=sub.parent, role=Membership.Role.VIEWER).user)
    assert "viaagency@example.test" in client.get(reverse("mailing:message_list")).content.decode()


def test_the_message_list_costs_the_same_queries_for_few_and_many(client):
    sub, owner = subaccount_with_owner()
    client.force_login(owner)
    _message(sub)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("mailing:message_list"))
    for n in range(60):
        _message(sub, to_email=f"r{n}@example.test")
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("mailing:message_list"))
    assert len(few) == len(many)


def test_archive_search_is_tenant_scoped_and_the_body_is_sandboxed(client):
    sub, owner = subaccount_with_owner()
    keep = _archived(sub, subject="Invoice 42", to_email="ana@example.test")
    _archived(sub, subject="Welcome", to_email="ben@example.test", sent_at=timezone.now() - timedelta(days=3))
    other = _archived(subaccount_with_owner(sub.parent)[0], subject="Invoice 42 of the sibling")
    client.force_login(owner)
    found = client.get(reverse("mailing:archive_list"), {"q": "invoice"}).content.decode()
    assert "ana@example.test" in found and "Welcome" not in found and "sibling" not in found
    dated = client.get(
        reverse("mailing:archive_list"), {"date_to": (timezone.now() - timedelta(days=2)).date().isoformat()}
    )
    assert "Welcome" in dated.content.decode() and "Invoice 42" not in dated.content.decode()
    detail = client.get(reverse("mailing:archive_detail", args=[keep.pk])).content.decode()
    assert "<iframe" in detail and "sandbox" in detail and "<script>alert" not in detail
    body = client.get(reverse("mailing:archive_body", args=[keep.pk]))
    assert (
        "sandbox" in body["Content-Security-Policy"]
        and "default-src 'none'" in body["Content-Security-Policy"]
    )
    assert body["X-Frame-Options"] == "SAMEORIGIN"
    assert client.get(reverse("mailing:archive_body", args=[other.pk])).status_code == 404


def test_the_archive_is_purged_after_the_retention_period(settings):
    settings.ARCHIVE_RETENTION_DAYS = 30
    sub, _ = subaccount_with_owner()
    _archived(sub, sent_at=timezone.now() - timedelta(days=31))
    fresh = _archived(sub, sent_at=timezone.now() - timedelta(days=29))
    assert archive.purge_archive() == 1
    assert list(ArchivedMessage.objects.all()) == [fresh]


def test_api_keys_page_shows_a_new_key_once_and_revokes(client):
    sub, owner = subaccount_with_owner()
    client.force_login(owner)
    created = client.post(reverse("mailing:api_keys"), {"label": "Shop"}, follow=True).content.decode()
    assert "md-" in created and "Copy it now" in created
    key = ApiKey.objects.get(account=sub)
    assert key.key_hash not in created
    again = client.get(reverse("mailing:api_keys")).content.decode()
    assert "Copy it now" not in again and f"{key.prefix}…" in again
    client.post(reverse("mailing:api_key_revoke", args=[key.pk]))
    key.refresh_from_db()
    assert key.revoked_at is not None
    empty = client.post(reverse("mailing:api_keys"), {"label": ""}).content.decode()
    assert "Give the key a label" in empty


def test_api_keys_are_refused_while_impersonating_and_foreign_keys_are_404(client):
    sub, _owner = subaccount_with_owner()
    admin = MembershipFactory(account=sub.parent, role=Membership.Role.ADMIN).user
    client.force_login(admin)
    client.post(reverse("accounts:log_in_as", args=[sub.pk]))
    page = client.post(reverse("mailing:api_keys"), {"label": "sneaky"}, follow=True).content.decode()
    assert "not allowed while you are logged in as someone else" in page
    assert not ApiKey.objects.filter(account=sub).exists()
    other_sub, other_owner = subaccount_with_owner()
    from mailing.keys import create_api_key

    foreign, _ = create_api_key(actor=other_owner, account=other_sub, label="x")
    assert client.post(reverse("mailing:api_key_revoke", args=[foreign.pk])).status_code == 404


def test_createapikey_prints_the_key_last(capsys):
    sub, owner = subaccount_with_owner()
    call_command("createapikey", owner.email, "--label", "CLI")
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("md-") and ApiKey.objects.get(account=sub).prefix == key[:10]


def test_seed_demo_refuses_to_run_in_production(settings):
    # its superuser's password and its API key are published in the README and printed by `make run`
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        call_command("seed_demo")
    assert not Account.objects.exists()
    assert not ApiKey.objects.exists()


def test_seed_demo_is_idempotent(capsys):
    call_command("seed_demo")
    counts = (
        Account.objects.count(),
        Message.objects.count(),
        ApiKey.objects.count(),
        AuditEvent.objects.count(),
    )
    call_command("seed_demo")
    assert (
        Account.objects.count(),
        Message.objects.count(),
        ApiKey.objects.count(),
        AuditEvent.objects.count(),
    ) == counts
    assert "owner@northwind.test" in capsys.readouterr().out


def test_seed_demo_makes_its_history_through_the_services():
    call_command("seed_demo", stdout=io.StringIO())
    by_action = {event.action: event for event in AuditEvent.objects.select_related("account")}
    paused, closed = by_action["subaccount.paused"], by_action["subaccount.closed"]
    assert paused.account.name == "Cobalt Clinic" and paused.actor_label == "admin@northwind.test"
    assert closed.account.name == "Delta Dental" and closed.before == {"status": "active"}
    assert {"archiving.enabled", "subaccount.updated", "invite.resent", "impersonation.started"} <= set(
        by_action
    )
    assert Account.objects.get(public_id="cobalt-clinic").paused_at is not None
    assert max(event.created_at for event in by_action.values()) < timezone.now()
