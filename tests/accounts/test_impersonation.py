"""Log in as: who may, what it changes, what stays refused, and the trail it leaves."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import impersonation, impersonation_session, lifecycle
from accounts.errors import PermissionDenied
from accounts.models import Account, AuditEvent, Membership
from tests.factories import MasterFactory, MembershipFactory, UserFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db


def _staff(master: Account, role: str = Membership.Role.ADMIN):
    return MembershipFactory(account=master, role=role).user


def _log_in_as(client: Client, sub: Account):
    return client.post(reverse("accounts:log_in_as", args=[sub.pk]))


def _target(kind: str, master: Account):
    """A user to log in as, of each kind the permission matrix covers."""
    if kind == "active":
        return subaccount_with_owner(master)[1]
    if kind == "paused":
        return subaccount_with_owner(master, status=Account.Status.PAUSED)[1]
    if kind == "closed":
        return subaccount_with_owner(master, status=Account.Status.CLOSED)[1]
    if kind == "not_accepted":
        return subaccount_with_owner(master, accepted=False)[1]
    if kind == "other_masters":
        return subaccount_with_owner(MasterFactory())[1]
    if kind == "renewed":
        sub, owner = subaccount_with_owner(master)
        Account.objects.filter(pk=sub.pk).update(
            kind=Account.Kind.STANDALONE, parent=None, former_parent=master
        )
        return owner
    if kind == "master_colleague":
        return _staff(master)
    raise AssertionError(kind)


ALLOWED_TARGETS = {"active", "paused"}
TARGETS = ["active", "paused", "closed", "not_accepted", "other_masters", "renewed", "master_colleague"]


@pytest.mark.parametrize("role", [Membership.Role.OWNER, Membership.Role.ADMIN, Membership.Role.VIEWER])
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("already_impersonating", [False, True])
def test_permission_matrix(role, target, already_impersonating):
    master = MasterFactory()
    hijacker = _staff(master, role)
    hijacked = _target(target, master)
    reason = impersonation.refusal_reason(
        hijacker=hijacker, hijacked=hijacked, already_impersonating=already_impersonating
    )
    allowed = role != Membership.Role.VIEWER and target in ALLOWED_TARGETS and not already_impersonating
    assert (reason is None) is allowed, reason
    if not allowed:
        assert reason and reason.endswith((".", "?"))


@pytest.mark.parametrize("flag", ["is_staff", "is_superuser"])
def test_operators_are_never_a_target(flag):
    master = MasterFactory()
    _sub, owner = subaccount_with_owner(master)
    setattr(owner, flag, True)
    owner.save()
    reason = impersonation.refusal_reason(hijacker=_staff(master), hijacked=owner)
    assert reason == "Operators' accounts cannot be logged in as."


def test_an_admin_logs_in_as_a_subaccount_and_back(client):
    # given
    master = MasterFactory()
    admin = _staff(master)
    sub, owner = subaccount_with_owner(master, name="Acme Shop")
    client.force_login(admin)
    # when
    response = _log_in_as(client, sub)
    # then the browser is the owner's, on the owner's dashboard, with the banner
    assert response.status_code == 302 and response["Location"] == reverse("accounts:dashboard")
    page = client.get(reverse("accounts:dashboard"))
    assert int(client.session["_auth_user_id"]) == owner.pk
    assert (
        f"You are viewing <strong>Acme Shop</strong> as <strong>{admin.email}</strong>"
        in page.content.decode()
    )
    assert b"Back to my account" in page.content
    # and back
    back = client.post(
        reverse("hijack:release"), {"next": reverse("accounts:subaccount_list") + f"#sub-{sub.pk}"}
    )
    assert back["Location"].endswith(f"#sub-{sub.pk}")
    assert int(client.session["_auth_user_id"]) == admin.pk
    assert client.get(reverse("accounts:subaccount_list")).status_code == 200
    actions = list(
        AuditEvent.objects.filter(account=sub)
        .order_by("created_at")
        .values_list("action", "actor", "real_actor")
    )
    assert actions == [
        ("impersonation.started", owner.pk, admin.pk),
        ("impersonation.ended", owner.pk, admin.pk),
    ]


def test_the_banner_survives_htmx_requests_and_every_page(client):
    master = MasterFactory()
    sub, _owner = subaccount_with_owner(master, name="Acme Shop")
    client.force_login(_staff(master))
    _log_in_as(client, sub)
    for name in ("accounts:dashboard", "accounts:activity"):
        assert b"Back to my account" in client.get(reverse(name)).content


def test_get_on_the_log_in_as_url_does_nothing(client):
    master = MasterFactory()
    admin = _staff(master)
    sub, _ = subaccount_with_owner(master)
    client.force_login(admin)
    assert client.get(reverse("accounts:log_in_as", args=[sub.pk])).status_code == 405
    assert client.get(reverse("hijack:acquire"), {"user_pk": sub.pk}).status_code in (400, 405)
    assert int(client.session["_auth_user_id"]) == admin.pk
    assert not AuditEvent.objects.exists()


def test_log_in_as_needs_a_csrf_token():
    master = MasterFactory()
    admin = _staff(master)
    sub, _ = subaccount_with_owner(master)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    assert _log_in_as(client, sub).status_code == 403
    assert int(client.session["_auth_user_id"]) == admin.pk


def test_a_refusal_is_a_clear_message_not_an_error(client):
    master = MasterFactory()
    sub, _ = subaccount_with_owner(master, accepted=False, name="Blue Bakery")
    client.force_login(_staff(master))
    response = _log_in_as(client, sub)
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert b"has not accepted the invite yet. Resend the invite?" in page.content


def test_another_masters_subaccount_is_a_404(client):
    sub, _ = subaccount_with_owner()
    client.force_login(_staff(MasterFactory()))
    assert _log_in_as(client, sub).status_code == 404


def test_hijacks_own_url_applies_our_check(client):
    sub, owner = subaccount_with_owner()
    viewer = _staff(sub.parent, Membership.Role.VIEWER)
    client.force_login(viewer)
    response = client.post(reverse("hijack:acquire"), {"user_pk": owner.pk})
    assert response.status_code == 403
    assert int(client.session["_auth_user_id"]) == viewer.pk


def test_while_impersonating_sensitive_actions_are_refused(client):
    master = MasterFactory()
    sub, owner = subaccount_with_owner(master)
    admin = _staff(master)
    client.force_login(admin)
    _log_in_as(client, sub)
    # the owner's password page is out of reach
    response = client.get(reverse("account_change_password"))
    assert response.status_code == 302
    assert (
        client.post(
            reverse("account_change_password"), {"oldpassword": "x", "password1": "y" * 12}
        ).status_code
        == 302
    )
    owner.refresh_from_db()
    assert owner.check_password("correct-horse-battery-9")
    # a second impersonation cannot start: the visitor is not agency staff in this session
    other, _ = subaccount_with_owner(master)
    assert _log_in_as(client, other).status_code == 404
    # and the services refuse by themselves, whatever the URL
    Account.objects.filter(pk=sub.pk).update(status=Account.Status.CLOSED)
    with pytest.raises(PermissionDenied):
        lifecycle.renew_account(actor=owner, real_actor=admin)
    with pytest.raises(PermissionDenied):
        lifecycle.delete_subaccount(actor=admin, master=master, subaccount_id=sub.pk, real_actor=admin)


def test_an_impersonation_ends_by_itself_after_its_time(client, settings):
    settings.IMPERSONATION_MAX_MINUTES = 60
    master = MasterFactory()
    admin = _staff(master)
    sub, _owner = subaccount_with_owner(master)
    client.force_login(admin)
    _log_in_as(client, sub)
    session = client.session
    session[impersonation_session.STARTED_AT_KEY] = (timezone.now() - timedelta(minutes=61)).isoformat()
    session.save()
    response = client.get(reverse("accounts:dashboard"))
    assert response.status_code == 302 and response["Location"] == reverse("accounts:subaccount_list")
    assert int(client.session["_auth_user_id"]) == admin.pk
    assert AuditEvent.objects.filter(account=sub, action="impersonation.expired", real_actor=admin).exists()


def test_logging_out_ends_the_impersonation_and_is_recorded(client):
    master = MasterFactory()
    admin = _staff(master)
    sub, _ = subaccount_with_owner(master)
    client.force_login(admin)
    _log_in_as(client, sub)
    client.post(reverse("account_logout"))
    assert "_auth_user_id" not in client.session
    assert "hijack_history" not in client.session
    assert AuditEvent.objects.filter(account=sub, action="impersonation.ended", real_actor=admin).exists()


def test_the_owner_sees_the_visit_on_their_activity_page(client):
    master = MasterFactory()
    admin = _staff(master)
    sub, owner = subaccount_with_owner(master)
    client.force_login(admin)
    _log_in_as(client, sub)
    client.post(reverse("hijack:release"))
    owner_client = Client()
    owner_client.force_login(owner)
    page = owner_client.get(reverse("accounts:activity")).content.decode()
    assert "impersonation.started" in page and "impersonation.ended" in page
    assert admin.email in page


def test_a_renewed_account_cannot_be_entered_by_its_former_master(client):
    master = MasterFactory()
    admin = _staff(master)
    sub, owner = subaccount_with_owner(master, status=Account.Status.CLOSED)
    lifecycle.renew_account(actor=owner)
    client.force_login(admin)
    assert _log_in_as(client, sub).status_code == 404
    assert impersonation.refusal_reason(hijacker=admin, hijacked=owner) is not None


def test_users_without_an_account_cannot_log_in_as_anyone():
    lonely = UserFactory()
    _sub, owner = subaccount_with_owner()
    assert (
        impersonation.refusal_reason(hijacker=lonely, hijacked=owner)
        == "Only an agency's staff can log in as a subaccount."
    )
