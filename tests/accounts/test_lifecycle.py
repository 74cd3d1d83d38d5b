"""The subaccount lifecycle (DESIGN.md, "Lifecycle"), at the service level: every action in
accounts/lifecycle.py with its happy path, wrong state, wrong role and another master's subaccount."""

import re
import threading

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import connection
from django.urls import reverse

from accounts import signals
from accounts.errors import InvalidTransition, PermissionDenied, ValidationError
from accounts.forms import DeleteSubaccountForm
from accounts.lifecycle import (
    RESET_EMAILS_PER_HOUR,
    close_subaccount,
    create_subaccount,
    delete_subaccount,
    pause_subaccount,
    renew_account,
    reopen_subaccount,
    resend_invite,
    resume_subaccount,
    send_password_reset_email,
    set_archiving,
    update_subaccount,
)
from accounts.models import Account, AuditEvent, Invitation, Membership, Usage, User
from accounts.quota import month_start
from accounts.selectors import audit_events_for_account
from tests.conftest import requires_postgres
from tests.factories import MasterFactory, MembershipFactory, SubaccountFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db

INVITE_LINK = re.compile(re.escape(settings.SITE_URL) + r"(/invite/[A-Za-z0-9_-]+/)")
RESET_LINK = re.compile(re.escape(settings.SITE_URL) + r"(/accounts/password/reset/key/\S+/)")


def _member(master: Account | None = None, role: str = Membership.Role.ADMIN) -> User:
    return MembershipFactory(account=master or MasterFactory(), role=role).user


def _invite_path(message) -> str:
    return INVITE_LINK.search(message.body).group(1)


def _assert_untouched(sub: Account, **expected) -> None:
    sub.refresh_from_db()
    for field, value in expected.items():
        assert getattr(sub, field) == value
    assert not AuditEvent.objects.exists()


# --- create -------------------------------------------------------------------------------------------


def test_create_makes_an_active_subaccount_whose_owner_has_no_password_and_is_invited_after_commit(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    # given
    master = MasterFactory(name="Northwind")
    admin = _member(master)
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        sub = create_subaccount(
            actor=admin, master=master, name="Acme Shop", contact_email="Owner@Acme.test", monthly_limit=5000
        )
        assert mailoutbox == []  # nothing leaves before the commit
    # then
    assert len(callbacks) == 1
    assert (sub.kind, sub.status, sub.parent, sub.monthly_limit) == (
        Account.Kind.SUBACCOUNT,
        Account.Status.ACTIVE,
        master,
        5000,
    )
    owner = Membership.objects.get(account=sub, role=Membership.Role.OWNER).user
    assert owner.email == "owner@acme.test" == sub.contact_email
    assert not owner.has_usable_password()
    assert EmailAddress.objects.get(user=owner).verified is False
    (message,) = mailoutbox
    assert message.to == ["owner@acme.test"]
    assert "Northwind" in message.subject
    # and the link in it works
    page = client.get(_invite_path(message))
    assert page.status_code == 200
    assert b"Welcome to Acme Shop" in page.content


def test_create_generates_the_id_from_the_name_unique_within_the_master():
    master, other_master = MasterFactory(), MasterFactory()
    admin, other_admin = _member(master), _member(other_master)

    def create(actor, within, n):
        return create_subaccount(
            actor=actor,
            master=within,
            name="Acme Shop",
            contact_email=f"acme{n}@example.test",
            monthly_limit=10,
        ).public_id

    assert create(admin, master, 1) == "acme-shop"
    assert create(admin, master, 2) == "acme-shop-2"
    assert create(admin, master, 3) == "acme-shop-3"
    assert create(other_admin, other_master, 4) == "acme-shop"


def test_create_keeps_a_chosen_id_and_refuses_a_duplicate_within_the_master():
    master = MasterFactory()
    admin = _member(master)
    SubaccountFactory(parent=master, public_id="shop")
    with pytest.raises(ValidationError) as refused:
        create_subaccount(
            actor=admin,
            master=master,
            name="Shop",
            contact_email="a@example.test",
            monthly_limit=1,
            public_id="shop",
        )
    assert refused.value.field == "public_id"
    assert "shop" in refused.value.message
    assert not User.objects.filter(email="a@example.test").exists()


def test_create_refuses_an_address_that_already_has_a_login():
    master = MasterFactory()
    admin = _member(master)
    with pytest.raises(ValidationError) as refused:
        create_subaccount(actor=admin, master=master, name="Shop", contact_email=admin.email, monthly_limit=1)
    assert refused.value.field == "contact_email"
    assert not Account.objects.subaccounts_of(master).exists()


def test_create_writes_an_audit_event():
    master = MasterFactory()
    admin = _member(master)
    sub = create_subaccount(
        actor=admin,
        master=master,
        name="Acme",
        contact_email="a@example.test",
        monthly_limit=10,
        hourly_limit=2,
    )
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.account, event.master) == (
        "subaccount.created",
        admin,
        sub,
        master,
    )
    assert event.after["public_id"] == "acme"
    assert event.after["monthly_limit"] == 10
    assert event.after["hourly_limit"] == 2


def test_create_is_refused_for_a_closed_master():
    master = MasterFactory(status=Account.Status.CLOSED)
    with pytest.raises(InvalidTransition, match="closed"):
        create_subaccount(
            actor=_member(master), master=master, name="A", contact_email="a@example.test", monthly_limit=1
        )
    assert not Account.objects.subaccounts_of(master).exists()
    assert not AuditEvent.objects.exists()


def test_create_is_refused_to_a_viewer():
    master = MasterFactory()
    with pytest.raises(PermissionDenied):
        create_subaccount(
            actor=_member(master, Membership.Role.VIEWER),
            master=master,
            name="A",
            contact_email="a@example.test",
            monthly_limit=1,
        )
    assert not Account.objects.subaccounts_of(master).exists()
    assert not AuditEvent.objects.exists()


def test_create_under_another_master_is_refused(mailoutbox, django_capture_on_commit_callbacks):
    theirs = MasterFactory()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(PermissionDenied):
        create_subaccount(
            actor=_member(), master=theirs, name="A", contact_email="a@example.test", monthly_limit=1
        )
    assert not Account.objects.subaccounts_of(theirs).exists()
    assert not User.objects.filter(email="a@example.test").exists()
    assert not AuditEvent.objects.exists()
    assert mailoutbox == []


# --- update -------------------------------------------------------------------------------------------


def test_update_changes_limits_and_audits_only_what_changed():
    sub = SubaccountFactory(monthly_limit=1000, hourly_limit=None)
    admin = _member(sub.parent)
    update_subaccount(
        actor=admin,
        master=sub.parent,
        subaccount_id=sub.pk,
        changes={"monthly_limit": 50, "hourly_limit": "5", "name": sub.name},
    )
    sub.refresh_from_db()
    assert (sub.monthly_limit, sub.hourly_limit) == (50, 5)  # a lowered limit is stored as is
    event = AuditEvent.objects.get()
    assert event.action == "subaccount.updated"
    assert event.before == {"monthly_limit": 1000, "hourly_limit": None}
    assert event.after == {"monthly_limit": 50, "hourly_limit": 5}


def test_update_with_nothing_changed_writes_no_audit_event():
    sub = SubaccountFactory(monthly_limit=1000)
    update_subaccount(
        actor=_member(sub.parent), master=sub.parent, subaccount_id=sub.pk, changes={"monthly_limit": 1000}
    )
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("value", [0, -5, "many", "1.5", None])
def test_update_refuses_a_monthly_limit_that_is_not_a_positive_whole_number(value):
    sub = SubaccountFactory(monthly_limit=1000)
    with pytest.raises(ValidationError) as refused:
        update_subaccount(
            actor=_member(sub.parent),
            master=sub.parent,
            subaccount_id=sub.pk,
            changes={"monthly_limit": value},
        )
    assert refused.value.field == "monthly_limit"
    _assert_untouched(sub, monthly_limit=1000)


def test_update_refuses_an_id_another_subaccount_of_the_master_has():
    sub = SubaccountFactory(public_id="mine")
    SubaccountFactory(parent=sub.parent, public_id="taken")
    with pytest.raises(ValidationError, match="taken"):
        update_subaccount(
            actor=_member(sub.parent), master=sub.parent, subaccount_id=sub.pk, changes={"public_id": "taken"}
        )
    _assert_untouched(sub, public_id="mine")


def test_update_refuses_fields_that_are_not_details():
    sub = SubaccountFactory()
    with pytest.raises(ValidationError, match="status"):
        update_subaccount(
            actor=_member(sub.parent), master=sub.parent, subaccount_id=sub.pk, changes={"status": "closed"}
        )
    _assert_untouched(sub, status=Account.Status.ACTIVE)


def test_update_is_refused_for_a_closed_subaccount():
    sub = SubaccountFactory(status=Account.Status.CLOSED, monthly_limit=1000)
    with pytest.raises(InvalidTransition) as refused:
        update_subaccount(
            actor=_member(sub.parent), master=sub.parent, subaccount_id=sub.pk, changes={"monthly_limit": 5}
        )
    assert f"{sub.name} is closed" in refused.value.message
    _assert_untouched(sub, monthly_limit=1000)


def test_changing_the_contact_email_before_acceptance_moves_the_login_and_sends_a_new_invite(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    # given an owner invited at the wrong address
    master = MasterFactory()
    admin = _member(master)
    with django_capture_on_commit_callbacks(execute=True):
        sub = create_subaccount(
            actor=admin, master=master, name="Acme", contact_email="typo@acme.test", monthly_limit=10
        )
    old_path = _invite_path(mailoutbox[0])
    # when
    with django_capture_on_commit_callbacks(execute=True):
        update_subaccount(
            actor=admin, master=master, subaccount_id=sub.pk, changes={"contact_email": "right@acme.test"}
        )
    # then
    owner = Membership.objects.get(account=sub).user
    assert owner.email == "right@acme.test"
    assert list(EmailAddress.objects.filter(user=owner).values_list("email", "verified")) == [
        ("right@acme.test", False)
    ]
    assert len(mailoutbox) == 2
    assert mailoutbox[1].to == ["right@acme.test"]
    assert client.get(old_path).status_code == 410
    assert client.get(_invite_path(mailoutbox[1])).status_code == 200
    event = AuditEvent.objects.get(action="subaccount.updated")
    assert (event.before, event.after) == (
        {"contact_email": "typo@acme.test"},
        {"contact_email": "right@acme.test"},
    )


def test_changing_the_contact_email_after_acceptance_is_refused_with_a_clear_message(mailoutbox):
    sub, owner = subaccount_with_owner(accepted=True)
    with pytest.raises(ValidationError) as refused:
        update_subaccount(
            actor=_member(sub.parent),
            master=sub.parent,
            subaccount_id=sub.pk,
            changes={"contact_email": "new@example.test"},
        )
    assert refused.value.field == "contact_email"
    assert "accepted the invite" in refused.value.message
    owner.refresh_from_db()
    assert owner.email == sub.contact_email
    _assert_untouched(sub, contact_email=owner.email)
    assert mailoutbox == []


def test_update_is_refused_to_a_viewer():
    sub = SubaccountFactory(monthly_limit=1000)
    with pytest.raises(PermissionDenied):
        update_subaccount(
            actor=_member(sub.parent, Membership.Role.VIEWER),
            master=sub.parent,
            subaccount_id=sub.pk,
            changes={"monthly_limit": 5},
        )
    _assert_untouched(sub, monthly_limit=1000)


def test_update_of_another_masters_subaccount_is_not_found():
    sub = SubaccountFactory(monthly_limit=1000)
    admin = _member()
    with pytest.raises(Account.DoesNotExist):
        update_subaccount(
            actor=admin,
            master=admin.membership.account,
            subaccount_id=sub.pk,
            changes={"monthly_limit": 5},
        )
    _assert_untouched(sub, monthly_limit=1000)


# --- resend invite ------------------------------------------------------------------------------------


def _created(master: Account, admin: User, django_capture_on_commit_callbacks, **fields) -> Account:
    with django_capture_on_commit_callbacks(execute=True):
        return create_subaccount(
            actor=admin,
            master=master,
            name=fields.get("name", "Acme"),
            contact_email=fields.get("contact_email", "owner@acme.test"),
            monthly_limit=100,
        )


def test_resend_invite_replaces_the_old_link_with_a_new_one(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    master = MasterFactory()
    admin = _member(master)
    sub = _created(master, admin, django_capture_on_commit_callbacks)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        resend_invite(actor=admin, master=master, subaccount_id=sub.pk)
    # then
    first, second = mailoutbox
    assert second.to == ["owner@acme.test"]
    old = client.get(_invite_path(first))
    assert old.status_code == 410
    assert b"This invitation has been replaced" in old.content
    assert client.get(_invite_path(second)).status_code == 200
    assert Invitation.objects.filter(replaced_at__isnull=True).count() == 1
    assert AuditEvent.objects.filter(action="invite.resent", account=sub).count() == 1


def test_resend_invite_is_refused_once_the_owner_has_accepted(mailoutbox):
    sub, _owner = subaccount_with_owner(accepted=True)
    with pytest.raises(InvalidTransition) as refused:
        resend_invite(actor=_member(sub.parent), master=sub.parent, subaccount_id=sub.pk)
    assert "already accepted" in refused.value.message
    assert not Invitation.objects.exists()
    assert not AuditEvent.objects.exists()


def test_resend_invite_is_refused_for_a_closed_subaccount():
    sub, _owner = subaccount_with_owner(accepted=False, status=Account.Status.CLOSED)
    with pytest.raises(InvalidTransition, match="closed"):
        resend_invite(actor=_member(sub.parent), master=sub.parent, subaccount_id=sub.pk)
    assert not Invitation.objects.exists()
    assert not AuditEvent.objects.exists()


def test_resend_invite_is_refused_to_a_viewer():
    sub, _owner = subaccount_with_owner(accepted=False)
    with pytest.raises(PermissionDenied):
        resend_invite(
            actor=_member(sub.parent, Membership.Role.VIEWER), master=sub.parent, subaccount_id=sub.pk
        )
    assert not Invitation.objects.exists()
    assert not AuditEvent.objects.exists()


def test_resend_invite_for_another_masters_subaccount_is_not_found():
    sub, _owner = subaccount_with_owner(accepted=False)
    admin = _member()
    with pytest.raises(Account.DoesNotExist):
        resend_invite(actor=admin, master=admin.membership.account, subaccount_id=sub.pk)
    assert not Invitation.objects.exists()
    assert not AuditEvent.objects.exists()


# --- password reset email -----------------------------------------------------------------------------


def test_password_reset_email_sends_allauths_single_use_link_to_the_owner(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    sub, owner = subaccount_with_owner(accepted=True)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        send_password_reset_email(actor=_member(sub.parent), master=sub.parent, subaccount_id=sub.pk)
    # then
    (message,) = mailoutbox
    assert message.to == [owner.email]
    assert message.subject == "Choose a new password for Reseller Dashboard"
    assert AuditEvent.objects.get().action == "password_reset.sent"
    # and the link sets a password, once
    path = RESET_LINK.search(message.body).group(1)
    form_page = client.get(path, follow=True)
    action = form_page.redirect_chain[-1][0] if form_page.redirect_chain else path
    done = client.post(
        action, {"password1": "brand-new-secret-42", "password2": "brand-new-secret-42"}, follow=True
    )
    assert b"Your password has been changed" in done.content
    owner.refresh_from_db()
    assert owner.check_password("brand-new-secret-42")
    assert b"This link no longer works" in client.get(path, follow=True).content


def test_password_reset_email_is_rate_limited_per_subaccount(mailoutbox, django_capture_on_commit_callbacks):
    sub, _owner = subaccount_with_owner(accepted=True)
    admin = _member(sub.parent)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(RESET_EMAILS_PER_HOUR):
            send_password_reset_email(actor=admin, master=sub.parent, subaccount_id=sub.pk)
    assert RESET_EMAILS_PER_HOUR == 5
    # when the sixth is asked for within the hour
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(PermissionDenied, match="Too many"):
        send_password_reset_email(actor=admin, master=sub.parent, subaccount_id=sub.pk)
    # then
    assert len(mailoutbox) == 5
    assert AuditEvent.objects.filter(action="password_reset.sent").count() == 5


def test_password_reset_email_needs_an_owner():
    sub = SubaccountFactory()
    with pytest.raises(InvalidTransition, match="no owner"):
        send_password_reset_email(actor=_member(sub.parent), master=sub.parent, subaccount_id=sub.pk)
    assert not AuditEvent.objects.exists()


def test_password_reset_email_is_refused_to_a_viewer(mailoutbox, django_capture_on_commit_callbacks):
    sub, _owner = subaccount_with_owner()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(PermissionDenied):
        send_password_reset_email(
            actor=_member(sub.parent, Membership.Role.VIEWER), master=sub.parent, subaccount_id=sub.pk
        )
    assert mailoutbox == []
    assert not AuditEvent.objects.exists()


def test_password_reset_email_for_another_masters_subaccount_is_not_found(
    mailoutbox, django_capture_on_commit_callbacks
):
    sub, _owner = subaccount_with_owner()
    admin = _member()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Account.DoesNotExist):
        send_password_reset_email(actor=admin, master=admin.membership.account, subaccount_id=sub.pk)
    assert mailoutbox == []
    assert not AuditEvent.objects.exists()


# --- archiving ----------------------------------------------------------------------------------------


def test_archiving_is_turned_on_and_off_with_before_and_after_audited():
    sub = SubaccountFactory(archiving_enabled=False)
    admin = _member(sub.parent)
    set_archiving(actor=admin, master=sub.parent, subaccount_id=sub.pk, enabled=True)
    sub.refresh_from_db()
    assert sub.archiving_enabled is True
    set_archiving(actor=admin, master=sub.parent, subaccount_id=sub.pk, enabled=False)
    sub.refresh_from_db()
    assert sub.archiving_enabled is False
    off, on = AuditEvent.objects.all()  # newest first
    assert (on.action, on.before, on.after) == (
        "archiving.enabled",
        {"archiving_enabled": False},
        {"archiving_enabled": True},
    )
    assert (off.action, off.before, off.after) == (
        "archiving.disabled",
        {"archiving_enabled": True},
        {"archiving_enabled": False},
    )


def test_archiving_already_in_the_asked_state_changes_nothing():
    sub = SubaccountFactory(archiving_enabled=True)
    set_archiving(actor=_member(sub.parent), master=sub.parent, subaccount_id=sub.pk, enabled=True)
    _assert_untouched(sub, archiving_enabled=True)


def test_archiving_is_refused_to_a_viewer():
    sub = SubaccountFactory(archiving_enabled=False)
    with pytest.raises(PermissionDenied):
        set_archiving(
            actor=_member(sub.parent, Membership.Role.VIEWER),
            master=sub.parent,
            subaccount_id=sub.pk,
            enabled=True,
        )
    _assert_untouched(sub, archiving_enabled=False)


def test_archiving_of_another_masters_subaccount_is_not_found():
    sub = SubaccountFactory(archiving_enabled=False)
    admin = _member()
    with pytest.raises(Account.DoesNotExist):
        set_archiving(actor=admin, master=admin.membership.account, subaccount_id=sub.pk, enabled=True)
    _assert_untouched(sub, archiving_enabled=False)


# --- pause / resume / close / reopen ------------------------------------------------------------------

TRANSITIONS = {
    "pause": pause_subaccount,
    "resume": resume_subaccount,
    "close": close_subaccount,
    "reopen": reopen_subaccount,
}
ALLOWED = {
    ("pause", "active"): "paused",
    ("resume", "paused"): "active",
    ("close", "active"): "closed",
    ("close", "paused"): "closed",
    ("reopen", "closed"): "active",
}
ILLEGAL = [
    (action, status)
    for action in TRANSITIONS
    for status in Account.Status.values
    if (action, status) not in ALLOWED
]


@pytest.mark.parametrize("action, status", list(ALLOWED))
def test_every_allowed_transition_moves_the_state_and_is_audited(action, status):
    # given
    sub = SubaccountFactory(status=status)
    admin = _member(sub.parent)
    # when
    result = TRANSITIONS[action](actor=admin, master=sub.parent, subaccount_id=sub.pk)
    # then
    sub.refresh_from_db()
    assert sub.status == result.status == ALLOWED[(action, status)]
    assert (sub.paused_at is not None) == (sub.status == Account.Status.PAUSED)
    if sub.status == Account.Status.CLOSED:
        assert sub.closed_at is not None
    event = AuditEvent.objects.get()
    assert (
        event.action
        == {
            "pause": "subaccount.paused",
            "resume": "subaccount.resumed",
            "close": "subaccount.closed",
            "reopen": "subaccount.reopened",
        }[action]
    )
    assert (event.actor, event.account, event.master) == (admin, sub, sub.parent)
    assert (event.before, event.after) == ({"status": status}, {"status": sub.status})


def test_illegal_transitions_are_exactly_the_seven_others():
    assert len(ILLEGAL) == 7


@pytest.mark.parametrize("action, status", ILLEGAL)
def test_every_illegal_transition_is_refused_with_a_clear_message(action, status):
    sub = SubaccountFactory(status=status, name="Acme Shop")
    with pytest.raises(InvalidTransition) as refused:
        TRANSITIONS[action](actor=_member(sub.parent), master=sub.parent, subaccount_id=sub.pk)
    assert refused.value.message.startswith(f"Acme Shop is {'already ' if action == 'close' else ''}{status}")
    _assert_untouched(sub, status=status)


@pytest.mark.parametrize("action, status", list(ALLOWED))
def test_transitions_are_refused_to_a_viewer(action, status):
    sub = SubaccountFactory(status=status)
    with pytest.raises(PermissionDenied, match="owner or admin"):
        TRANSITIONS[action](
            actor=_member(sub.parent, Membership.Role.VIEWER), master=sub.parent, subaccount_id=sub.pk
        )
    _assert_untouched(sub, status=status)


@pytest.mark.parametrize("action, status", list(ALLOWED))
def test_transitions_of_another_masters_subaccount_are_not_found(action, status):
    sub = SubaccountFactory(status=status)
    admin = _member()
    with pytest.raises(Account.DoesNotExist):
        TRANSITIONS[action](actor=admin, master=admin.membership.account, subaccount_id=sub.pk)
    _assert_untouched(sub, status=status)


def test_resume_announces_it_after_commit_so_held_mail_can_go(django_capture_on_commit_callbacks):
    sub = SubaccountFactory(status=Account.Status.PAUSED)
    heard = []

    def receiver(sender, account, **kwargs):
        heard.append(account.pk)

    signals.account_resumed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            resume_subaccount(actor=_member(sub.parent), master=sub.parent, subaccount_id=sub.pk)
            assert heard == []
    finally:
        signals.account_resumed.disconnect(receiver)
    assert heard == [sub.pk]


def test_close_tells_an_owner_who_has_a_login(mailoutbox, django_capture_on_commit_callbacks):
    sub, owner = subaccount_with_owner(accepted=True, name="Acme Shop")
    with django_capture_on_commit_callbacks(execute=True):
        close_subaccount(actor=_member(sub.parent), master=sub.parent, subaccount_id=sub.pk)
    (message,) = mailoutbox
    assert message.to == [owner.email]
    assert message.subject == "Your account Acme Shop has been closed"
    assert settings.SITE_URL + reverse("account_login") in message.body


# --- renew --------------------------------------------------------------------------------------------


def test_renew_makes_a_closed_subaccounts_owner_standalone_and_tells_the_master(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    # given a closed subaccount, and its master's staff
    master = MasterFactory(name="Northwind")
    master_owner = _member(master, Membership.Role.OWNER)
    master_admin = _member(master, Membership.Role.ADMIN)
    _member(master, Membership.Role.VIEWER)
    sub, owner = subaccount_with_owner(
        master, status=Account.Status.CLOSED, monthly_limit=50_000, hourly_limit=100, name="Acme Shop"
    )
    Usage.objects.create(
        account=sub, billed_to=master, account_label=str(sub), window="month", start=month_start(), sent=7
    )
    # when
    with django_capture_on_commit_callbacks(execute=True):
        renewed = renew_account(actor=owner)
    # then
    sub.refresh_from_db()
    assert renewed == sub
    assert (sub.kind, sub.status, sub.parent, sub.former_parent) == (
        Account.Kind.STANDALONE,
        Account.Status.ACTIVE,
        None,
        master,
    )
    assert (sub.monthly_limit, sub.hourly_limit) == (settings.STANDALONE_MONTHLY_LIMIT, None)
    assert sub.renewed_at is not None
    assert Usage.objects.get().billed_to == master  # its past stays on the master's bill
    (message,) = mailoutbox
    assert sorted(message.to) == sorted([master_owner.email, master_admin.email])
    assert "Acme Shop" in message.subject
    event = AuditEvent.objects.get(action="account.renewed")
    assert (event.actor, event.account, event.master) == (owner, sub, master)
    assert event in audit_events_for_account(master)
    # and the master's pages no longer know it
    client.force_login(master_admin)
    for name in ("accounts:subaccount_detail", "accounts:subaccount_edit", "accounts:subaccount_activity"):
        assert client.get(reverse(name, args=[sub.pk])).status_code == 404
    assert client.post(reverse("accounts:subaccount_reopen", args=[sub.pk])).status_code == 404
    assert b"Acme Shop" not in client.get(reverse("accounts:subaccount_list")).content


def test_renew_keeps_the_id_unless_a_top_level_account_has_it():
    master = MasterFactory(public_id="acme")
    sub, owner = subaccount_with_owner(master, status=Account.Status.CLOSED, public_id="acme")
    renew_account(actor=owner)
    sub.refresh_from_db()
    assert sub.public_id == f"acme-{sub.pk}"


@pytest.mark.parametrize("status", [Account.Status.ACTIVE, Account.Status.PAUSED])
def test_renew_is_refused_for_a_subaccount_that_is_not_closed(status):
    sub, owner = subaccount_with_owner(status=status)
    with pytest.raises(InvalidTransition, match="Only a closed subaccount"):
        renew_account(actor=owner)
    _assert_untouched(sub, kind=Account.Kind.SUBACCOUNT, status=status)


def test_renew_is_refused_to_someone_who_is_not_the_owner():
    sub, _owner = subaccount_with_owner(status=Account.Status.CLOSED)
    viewer_of_sub = MembershipFactory(account=sub, role=Membership.Role.VIEWER).user
    master_admin = _member(sub.parent)
    for actor in (viewer_of_sub, master_admin):
        with pytest.raises(PermissionDenied):
            renew_account(actor=actor)
    _assert_untouched(sub, kind=Account.Kind.SUBACCOUNT, status=Account.Status.CLOSED, parent=sub.parent)


def test_renew_is_refused_while_impersonating(mailoutbox, django_capture_on_commit_callbacks):
    sub, owner = subaccount_with_owner(status=Account.Status.CLOSED)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(PermissionDenied, match="logged in as"),
    ):
        renew_account(actor=owner, real_actor=_member(sub.parent))
    _assert_untouched(sub, kind=Account.Kind.SUBACCOUNT, status=Account.Status.CLOSED)
    assert mailoutbox == []


def test_renew_of_another_masters_subaccount_is_impossible_for_its_staff():
    """Cross-tenant: renewing acts on the actor's own account only, so another agency cannot reach it."""
    sub, _owner = subaccount_with_owner(status=Account.Status.CLOSED)
    with pytest.raises(PermissionDenied):
        renew_account(actor=_member())
    _assert_untouched(sub, kind=Account.Kind.SUBACCOUNT, status=Account.Status.CLOSED)


# --- delete -------------------------------------------------------------------------------------------


def test_delete_with_the_wrong_name_is_refused():
    # The typed name is the dashboard's question (the API deletes without one): its form asks it.
    sub, owner = subaccount_with_owner(name="Acme Shop")
    form = DeleteSubaccountForm({"confirm_name": "Acme"}, subaccount_name=sub.name)
    assert not form.is_valid()
    assert "Acme Shop" in form.errors["confirm_name"][0]
    assert DeleteSubaccountForm({"confirm_name": " Acme Shop "}, subaccount_name=sub.name).is_valid()
    assert Account.objects.filter(pk=sub.pk).exists()
    assert User.objects.filter(pk=owner.pk).exists()
    assert not AuditEvent.objects.exists()


def test_delete_removes_the_subaccount_and_its_login_but_keeps_usage_and_the_trail():
    # given
    master = MasterFactory()
    admin = _member(master)
    sub, owner = subaccount_with_owner(master, name="Acme Shop", public_id="acme")
    Usage.objects.create(account=sub, billed_to=master, window="month", start=month_start(), sent=42)
    # when
    delete_subaccount(actor=admin, master=master, subaccount_id=sub.pk)
    # then
    assert not Account.objects.filter(pk=sub.pk).exists()
    assert not User.objects.filter(pk=owner.pk).exists()
    assert not EmailAddress.objects.filter(email=owner.email).exists()
    usage = Usage.objects.get()
    assert (usage.account, usage.billed_to, usage.account_label, usage.sent) == (
        None,
        master,
        "Acme Shop (acme)",
        42,
    )
    event = AuditEvent.objects.get()
    assert (event.action, event.account, event.master, event.account_label) == (
        "subaccount.deleted",
        None,
        master,
        "Acme Shop (acme)",
    )
    assert event.before["name"] == "Acme Shop"
    assert event in audit_events_for_account(master)


def test_delete_is_refused_while_impersonating():
    sub, _owner = subaccount_with_owner(name="Acme")
    admin = _member(sub.parent)
    with pytest.raises(PermissionDenied, match="logged in as"):
        delete_subaccount(actor=admin, master=sub.parent, subaccount_id=sub.pk, real_actor=admin)
    assert Account.objects.filter(pk=sub.pk).exists()
    assert not AuditEvent.objects.exists()


def test_delete_is_refused_to_a_viewer():
    sub, owner = subaccount_with_owner(name="Acme")
    with pytest.raises(PermissionDenied):
        delete_subaccount(
            actor=_member(sub.parent, Membership.Role.VIEWER),
            master=sub.parent,
            subaccount_id=sub.pk,
        )
    assert Account.objects.filter(pk=sub.pk).exists()
    assert User.objects.filter(pk=owner.pk).exists()
    assert not AuditEvent.objects.exists()


def test_delete_of_another_masters_subaccount_is_not_found():
    sub, owner = subaccount_with_owner(name="Acme")
    admin = _member()
    with pytest.raises(Account.DoesNotExist):
        delete_subaccount(actor=admin, master=admin.membership.account, subaccount_id=sub.pk)
    assert Account.objects.filter(pk=sub.pk).exists()
    assert User.objects.filter(pk=owner.pk).exists()
    assert not AuditEvent.objects.exists()


# --- concurrency (PostgreSQL) -------------------------------------------------------------------------


def _at_once(*calls) -> list:
    """Run each call in its own thread, released together; return each one's result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as exc:  # the refusal is the result under test
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@requires_postgres()
@pytest.mark.django_db(transaction=True)
def test_two_creates_with_the_same_name_at_once_get_distinct_ids():
    master = MasterFactory()
    admin = _member(master)
    results = _at_once(
        *[
            lambda n=n: create_subaccount(
                actor=admin, master=master, name="Acme Shop", contact_email=f"o{n}@acme.test", monthly_limit=1
            )
            for n in range(2)
        ]
    )
    assert sorted(result.public_id for result in results) == ["acme-shop", "acme-shop-2"]


@requires_postgres()
@pytest.mark.django_db(transaction=True)
def test_two_pauses_at_once_pause_once():
    sub = SubaccountFactory()
    admin = _member(sub.parent)
    results = _at_once(
        *[lambda: pause_subaccount(actor=admin, master=sub.parent, subaccount_id=sub.pk) for _ in range(2)]
    )
    assert sorted(type(result).__name__ for result in results) == ["Account", "InvalidTransition"]
    assert AuditEvent.objects.filter(action="subaccount.paused").count() == 1
