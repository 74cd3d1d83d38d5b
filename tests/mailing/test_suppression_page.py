"""The suppressions page: each account's list, searched and filtered, with removal and addition by hand
(audited, owners and admins only), a CSV export, and a master managing each subaccount's list. Another
tenant's list or entry is a 404."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, Membership
from mailing.deliverability import suppression
from mailing.models import Suppression
from tests.factories import MasterFactory, MembershipFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db
URL = "/suppressions/"


@pytest.fixture
def agency():
    master = MasterFactory(name="Northwind")
    admin = MembershipFactory(account=master, role=Membership.Role.ADMIN).user
    viewer = MembershipFactory(account=master, role=Membership.Role.VIEWER).user
    shop, shop_owner = subaccount_with_owner(master, name="Acme Shop")
    sibling, sibling_owner = subaccount_with_owner(master, name="Sibling Co")
    now = timezone.now()
    Suppression.objects.create(account=shop, email="gone@example.com", reason="hard-bounce",
                               detail="550 5.1.1 user unknown")  # fmt: skip
    Suppression.objects.create(account=shop, email="angry@example.com", reason="spam")
    Suppression.objects.create(account=shop, email="full@example.com", reason="soft-bounce",
                               expires_at=now + timedelta(days=10))  # fmt: skip
    Suppression.objects.create(account=shop, email="old@example.com", reason="soft-bounce",
                               expires_at=now - timedelta(days=1))  # fmt: skip
    Suppression.objects.create(account=sibling, email="sibling-secret@example.com", reason="custom")
    return {"master": master, "admin": admin, "viewer": viewer, "shop": shop, "shop_owner": shop_owner,
            "sibling": sibling, "sibling_owner": sibling_owner}  # fmt: skip


def _page(client, **query):
    response = client.get(URL, query)
    assert response.status_code == 200
    return response.content.decode()


def test_a_subaccount_sees_its_list_in_force_and_filters_it(client, agency):
    client.force_login(agency["shop_owner"])
    page = _page(client)
    for email in ("gone@example.com", "angry@example.com", "full@example.com"):
        assert email in page
    assert "old@example.com" not in page  # expired: not in force
    assert "sibling-secret@example.com" not in page
    assert "gone@" in _page(client, q="gone") and "angry@" not in _page(client, q="gone")
    by_reason = _page(client, reason="spam")
    assert "angry@example.com" in by_reason and "gone@example.com" not in by_reason
    expired = _page(client, expiry="expired")
    assert "old@example.com" in expired and "gone@example.com" not in expired
    permanent = _page(client, expiry="permanent")
    assert "full@example.com" not in permanent and "gone@example.com" in permanent
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert "No address matches these filters" in _page(client, date_from=tomorrow)


def test_a_subaccount_cannot_open_a_siblings_list_or_remove_its_entries(client, agency):
    client.force_login(agency["shop_owner"])
    assert client.get(URL, {"account": agency["sibling"].pk}).status_code == 404
    assert (
        client.get(reverse("mailing:suppression_csv"), {"account": agency["sibling"].pk}).status_code == 404
    )
    theirs = Suppression.objects.get(email="sibling-secret@example.com")
    assert client.post(reverse("mailing:suppression_remove", args=[theirs.pk])).status_code == 404
    assert Suppression.objects.filter(pk=theirs.pk).exists()


def test_another_agencys_subaccount_and_entries_are_404_for_a_master(client, agency):
    other_sub, _ = subaccount_with_owner(MasterFactory())
    entry = Suppression.objects.create(account=other_sub, email="x@example.com", reason="spam")
    client.force_login(agency["admin"])
    assert client.get(URL, {"account": other_sub.pk}).status_code == 404
    assert client.get(URL, {"account": "not-a-number"}).status_code == 404
    assert client.post(reverse("mailing:suppression_remove", args=[entry.pk])).status_code == 404
    assert Suppression.objects.filter(pk=entry.pk).exists()
    assert not AuditEvent.objects.filter(action="suppression.removed").exists()


def test_the_master_chooses_a_subaccount_and_manages_its_list_with_audit(client, agency):
    client.force_login(agency["admin"])
    shop = agency["shop"]
    page = _page(client, account=shop.pk)
    assert "Suppression list of Acme Shop" in page and "gone@example.com" in page
    assert "sibling-secret@example.com" not in page
    assert '<option value="' + str(agency["sibling"].pk) + '"' in page  # the chooser lists them
    # remove one
    entry = Suppression.objects.get(email="gone@example.com")
    response = client.post(reverse("mailing:suppression_remove", args=[entry.pk]), follow=True)
    assert "gone@example.com removed from the list" in response.content.decode()
    assert not Suppression.objects.filter(pk=entry.pk).exists()
    removed = AuditEvent.objects.get(action="suppression.removed")
    assert (removed.account, removed.actor, removed.master) == (shop, agency["admin"], agency["master"])
    assert removed.before["email"] == "gone@example.com" and removed.before["reason"] == "hard-bounce"
    # add one by hand, to the subaccount's list
    response = client.post(f"{URL}?account={shop.pk}", {"email": "Pest@Example.com", "comment": "asked"},
                           follow=True)  # fmt: skip
    assert "pest@example.com added" in response.content.decode()
    added = Suppression.objects.get(account=shop, email="pest@example.com")
    assert (added.reason, added.detail) == ("custom", "asked")
    event = AuditEvent.objects.get(action="suppression.added")
    assert event.account == shop and event.after == {"email": "pest@example.com", "reason": "custom"}
    # and both show on the activity page in words
    activity = client.get("/activity/").content.decode()
    assert "Address removed from the suppression list" in activity
    assert "Address added to the suppression list" in activity


def test_a_bad_address_is_refused_beside_the_field(client, agency):
    client.force_login(agency["shop_owner"])
    response = client.post(URL, {"email": "not an address"})
    assert response.status_code == 200
    assert 'id="email-error"' in response.content.decode()
    assert not AuditEvent.objects.filter(action="suppression.added").exists()


def test_a_viewer_reads_but_cannot_remove_or_add(client, agency):
    client.force_login(agency["viewer"])
    page = _page(client, account=agency["shop"].pk)
    assert "gone@example.com" in page
    assert "Remove" not in page and "Add address" not in page
    entry = Suppression.objects.get(email="gone@example.com")
    response = client.post(reverse("mailing:suppression_remove", args=[entry.pk]), follow=True)
    assert "Only an owner or admin" in response.content.decode()
    assert Suppression.objects.filter(pk=entry.pk).exists()
    client.post(f"{URL}?account={agency['shop'].pk}", {"email": "x@example.com"})
    assert not Suppression.objects.filter(email="x@example.com").exists()
    assert not AuditEvent.objects.filter(action__startswith="suppression.").exists()


def test_a_viewers_refused_htmx_removal_keeps_the_row_and_says_why(client, agency):
    client.force_login(agency["viewer"])
    entry = Suppression.objects.get(email="gone@example.com")
    response = client.post(reverse("mailing:suppression_remove", args=[entry.pk]), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith(f'<tr id="suppression-{entry.pk}"')
    assert "Only an owner or admin" in body


def test_the_csv_export_holds_the_filtered_list_and_defuses_formulas(client, agency):
    Suppression.objects.create(account=agency["shop"], email="=cmd@example.com", reason="hard-bounce",
                               detail="=HYPERLINK(\"http://evil\")")  # fmt: skip
    client.force_login(agency["admin"])
    response = client.get(reverse("mailing:suppression_csv"), {"account": agency["shop"].pk})
    assert re.search(r'-suppressions-\d{4}-\d{2}-\d{2}\.csv"$', response["Content-Disposition"])
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == suppression.CSV_COLUMNS
    by_email = {row[0]: row for row in rows[1:]}
    assert set(by_email) == {"gone@example.com", "angry@example.com", "full@example.com", "'=cmd@example.com"}
    assert by_email["gone@example.com"][1:3] == ["hard-bounce", "550 5.1.1 user unknown"]
    assert by_email["'=cmd@example.com"][2].startswith("'=")
    assert by_email["full@example.com"][5]  # expires
    spam_only = client.get(
        reverse("mailing:suppression_csv"), {"account": agency["shop"].pk, "reason": "spam"}
    )
    assert len(list(csv.reader(io.StringIO(b"".join(spam_only.streaming_content).decode())))) == 2
