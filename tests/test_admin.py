"""Operators find everything in the admin, and the changelists open."""

import pytest
from django.urls import reverse

from mailing.keys import create_api_key
from mailing.models import Message
from tests.factories import UserFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "model",
    ["accounts/account", "accounts/user", "accounts/membership", "accounts/invitation", "accounts/auditevent",
     "accounts/usage", "accounts/limitalert", "mailing/apikey", "mailing/message", "mailing/archivedmessage",
     "mailing/senderdomain", "mailing/webhook"],
)  # fmt: skip
def test_every_changelist_opens_for_an_operator(client, model):
    sub, owner = subaccount_with_owner()
    create_api_key(actor=owner, account=sub, label="k")
    Message.objects.create(account=sub, from_email="a@x.test", to_email="b@x.test")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.get(f"/admin/{model}/", {"q": "x"})
    assert response.status_code == 200


def test_the_api_key_admin_never_shows_the_hash(client):
    sub, owner = subaccount_with_owner()
    api_key, _ = create_api_key(actor=owner, account=sub, label="k")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:mailing_apikey_change", args=[api_key.pk])).content.decode()
    assert api_key.key_hash not in page and api_key.prefix in page


def test_customers_cannot_open_the_admin(client):
    _sub, owner = subaccount_with_owner()
    client.force_login(owner)
    assert client.get("/admin/").status_code == 302
