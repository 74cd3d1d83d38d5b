import pytest
from django.urls import reverse

from accounts.models import Membership
from tests.factories import MembershipFactory, SubaccountFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db


def test_a_master_sees_only_its_own_subaccounts(client):
    mine = SubaccountFactory(name="Mine")
    SubaccountFactory(name="Theirs")
    client.force_login(MembershipFactory(account=mine.parent).user)
    response = client.get(reverse("accounts:subaccount_list"))
    assert b"Mine" in response.content
    assert b"Theirs" not in response.content


def test_another_masters_subaccount_page_is_a_404(client):
    theirs = SubaccountFactory()
    client.force_login(MembershipFactory().user)
    assert client.get(reverse("accounts:subaccount_detail", args=[theirs.pk])).status_code == 404


def test_a_subaccount_owner_cannot_open_the_masters_pages(client):
    sub, owner = subaccount_with_owner()
    sibling = SubaccountFactory(parent=sub.parent)
    client.force_login(owner)
    assert client.get(reverse("accounts:subaccount_list")).status_code == 404
    assert client.get(reverse("accounts:subaccount_detail", args=[sibling.pk])).status_code == 404


def test_a_viewer_sees_the_list_without_management_buttons(client):
    sub = SubaccountFactory(name="Customer X")
    client.force_login(MembershipFactory(account=sub.parent, role=Membership.Role.VIEWER).user)
    response = client.get(reverse("accounts:subaccount_list"))
    assert b"Customer X" in response.content
    assert b"Add subaccount" not in response.content
    assert b"Pause sending" not in response.content
