"""The Webhooks page: add, edit, reset the key, send a test batch, delete; viewers see it but no buttons;
another account's webhook is a 404."""

import pytest
from django.urls import reverse

from accounts.models import Membership
from mailing.models import Webhook
from mailing.webhooks import hooks
from tests.factories import MasterFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, master_admin):
    _, admin = master_admin
    client.force_login(admin)
    return client


def test_an_admin_adds_a_webhook_from_the_page(admin_client, master_admin, receiver):
    master, _ = master_admin
    response = admin_client.post(
        reverse("mailing:webhook_list"),
        {"url": receiver.url, "description": "Shop", "events": ["send", "hard_bounce", "account.paused"],
         "include_subaccounts": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    webhook = Webhook.objects.get(account=master)
    assert webhook.events == ["send", "hard_bounce", "account.paused"] and webhook.include_subaccounts
    page = admin_client.get(reverse("mailing:webhook_list")).content.decode()
    assert receiver.url in page and webhook.auth_key in page and "Send a test batch" in page


def test_a_url_that_fails_the_check_is_shown_beside_the_field(admin_client, receiver):
    receiver.head_status = 500
    receiver.replies = [500]
    response = admin_client.post(reverse("mailing:webhook_list"), {"url": receiver.url, "events": ["send"]})
    assert response.status_code == 200
    assert "did not accept the check" in response.content.decode()
    assert not Webhook.objects.exists()


def test_htmx_actions_answer_the_row(admin_client, master_admin, receiver):
    master, admin = master_admin
    webhook = hooks.add_webhook(actor=admin, account=master, url=receiver.url)
    old_key = webhook.auth_key
    url = reverse("mailing:webhook_action", args=[webhook.pk, "reset-key"])
    response = admin_client.post(url, headers={"HX-Request": "true"})
    webhook.refresh_from_db()
    assert response.status_code == 200 and webhook.auth_key != old_key
    assert f'id="webhook-{webhook.pk}"' in response.content.decode()

    response = admin_client.post(
        reverse("mailing:webhook_action", args=[webhook.pk, "test"]), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and "test" in response.content.decode()
    assert len(receiver.posts()) == 1

    response = admin_client.post(
        reverse("mailing:webhook_action", args=[webhook.pk, "delete"]), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and f'id="webhook-{webhook.pk}"' not in response.content.decode()
    assert not Webhook.objects.exists()


def test_an_admin_edits_a_webhook(admin_client, master_admin, receiver):
    master, admin = master_admin
    webhook = hooks.add_webhook(actor=admin, account=master, url=receiver.url)
    response = admin_client.post(
        reverse("mailing:webhook_edit", args=[webhook.pk]),
        {"url": receiver.url, "description": "New", "events": ["open"]},
    )
    assert response.status_code == 302
    webhook.refresh_from_db()
    assert webhook.description == "New" and webhook.events == ["open"]


def test_a_viewer_sees_webhooks_but_no_buttons_and_cannot_post(client, master_admin, receiver):
    master, admin = master_admin
    webhook = hooks.add_webhook(actor=admin, account=master, url=receiver.url)
    viewer = MembershipFactory(account=master, role=Membership.Role.VIEWER).user
    client.force_login(viewer)

    page = client.get(reverse("mailing:webhook_list")).content.decode()
    assert receiver.url in page
    assert "Add a webhook" not in page and "Reset key" not in page and "Send a test batch" not in page
    assert webhook.auth_key not in page
    edit = client.get(reverse("mailing:webhook_edit", args=[webhook.pk])).content.decode()
    assert "Save webhook" not in edit and "disabled" in edit

    client.post(reverse("mailing:webhook_action", args=[webhook.pk, "reset-key"]))
    client.post(reverse("mailing:webhook_edit", args=[webhook.pk]), {"url": receiver.url, "events": ["open"]})
    client.post(reverse("mailing:webhook_action", args=[webhook.pk, "delete"]))
    after = Webhook.objects.get()
    assert after.auth_key == webhook.auth_key and after.events == webhook.events


def test_another_accounts_webhook_is_404(admin_client, receiver):
    other = MasterFactory()
    other_admin = MembershipFactory(account=other, role=Membership.Role.ADMIN).user
    theirs = hooks.add_webhook(actor=other_admin, account=other, url=receiver.url)
    assert admin_client.get(reverse("mailing:webhook_edit", args=[theirs.pk])).status_code == 404
    for action in ("reset-key", "test", "delete"):
        assert (
            admin_client.post(reverse("mailing:webhook_action", args=[theirs.pk, action])).status_code == 404
        )
    assert (
        admin_client.post(reverse("mailing:webhook_action", args=[theirs.pk, "explode"])).status_code == 404
    )
    assert Webhook.objects.filter(pk=theirs.pk).exists()
