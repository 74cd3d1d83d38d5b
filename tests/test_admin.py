"""Operators find everything in the admin, the changelists open, and status changes go through the
lifecycle services (with a confirmation first and an audit row after)."""

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.errors import PermissionDenied
from accounts.models import Account, AuditEvent
from accounts.permissions import Operator
from mailing.keys import create_api_key
from mailing.models import Message
from tests.factories import MasterFactory, UserFactory, create_archived, create_message, subaccount_with_owner

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


def test_a_message_and_its_archived_copy_show_their_stored_body(client):
    sub, _ = subaccount_with_owner()
    message = create_message(
        account=sub, from_email="a@x.test", to_email="b@x.test", text="Stored once, shown"
    )
    copy = create_archived(account=sub, message=message, to_email="b@x.test", text="Stored once, shown",
                           sent_at=timezone.now())  # fmt: skip
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    for url in (reverse("admin:mailing_message_change", args=[message.pk]),
                reverse("admin:mailing_archivedmessage_change", args=[copy.pk])):  # fmt: skip
        assert "Stored once, shown" in client.get(url).content.decode()


def test_customers_cannot_open_the_admin(client):
    _sub, owner = subaccount_with_owner()
    client.force_login(owner)
    assert client.get("/admin/").status_code == 302


# --- status changes through the lifecycle services ------------------------------------------------------

CHANGELIST = "/admin/accounts/account/"


@pytest.fixture
def operator(client):
    user = UserFactory(is_staff=True, is_superuser=True, email="ops@service.test")
    client.force_login(user)
    return user


def _act(client, action: str, *accounts, confirmed: bool):
    data = {"action": action, "_selected_action": [a.pk for a in accounts]}
    if confirmed:
        data["confirmed"] = "yes"
    return client.post(CHANGELIST, data, follow=confirmed)


def test_an_action_asks_for_confirmation_first_and_changes_nothing(client, operator):
    sub, _owner = subaccount_with_owner()
    response = _act(client, "pause_selected", sub, confirmed=False)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Pause 1 account?" in page and "Yes, pause" in page and sub.name in page
    sub.refresh_from_db()
    assert sub.status == Account.Status.ACTIVE and not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("action", "start", "end", "audited"),
    [
        ("pause_selected", "active", "paused", "subaccount.paused"),
        ("resume_selected", "paused", "active", "subaccount.resumed"),
        ("close_selected", "active", "closed", "subaccount.closed"),
        ("reopen_selected", "closed", "active", "subaccount.reopened"),
    ],
)
def test_each_action_goes_through_the_lifecycle_service_and_is_audited(
    client, operator, action, start, end, audited
):
    sub, _owner = subaccount_with_owner(status=start)
    response = _act(client, action, sub, confirmed=True)
    sub.refresh_from_db()
    assert sub.status == end
    event = AuditEvent.objects.get(action=audited)
    assert event.actor == operator and event.actor_label == "ops@service.test (operator)"
    assert event.before == {"status": start} and event.after == {"status": end} and event.master == sub.parent
    assert response.status_code == 200


def test_closing_from_the_admin_tells_the_owner(
    client, operator, mailoutbox, django_capture_on_commit_callbacks
):
    sub, owner = subaccount_with_owner()
    with django_capture_on_commit_callbacks(execute=True):
        _act(client, "close_selected", sub, confirmed=True)
    assert [m.to for m in mailoutbox] == [[owner.email]]


def test_a_refused_transition_is_reported_and_others_still_happen(client, operator):
    paused, _ = subaccount_with_owner(status="paused")
    active, _ = subaccount_with_owner()
    master = MasterFactory()
    page = _act(client, "pause_selected", paused, active, master, confirmed=True).content.decode()
    for account in (paused, active, master):
        account.refresh_from_db()
    assert paused.status == "paused" and active.status == "paused" and master.status == "active"
    assert "only an active subaccount can be paused" in page
    assert "only a subaccount has this lifecycle" in page
    assert AuditEvent.objects.filter(action="subaccount.paused").count() == 1


def test_the_status_is_read_only_in_the_change_form(client, operator):
    sub, _owner = subaccount_with_owner()
    url = f"/admin/accounts/account/{sub.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="status"' not in page and "Pause, Resume, Close or Reopen" in page


def test_only_operators_act_as_operators():
    _sub, owner = subaccount_with_owner()
    with pytest.raises(PermissionDenied):
        Operator(owner)
