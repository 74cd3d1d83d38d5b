"""The team page: owners invite staff with a role, change roles and remove people; the last owner stays;
admins never make owners; viewers only look; another account's member is a 404."""

import re
import threading

import pytest
from django.db import connection
from django.urls import reverse

from accounts import team
from accounts.errors import InvalidTransition, PermissionDenied, ValidationError
from accounts.lifecycle import delete_subaccount
from accounts.models import AuditEvent, Invitation, Membership, User
from tests.conftest import requires_postgres
from tests.factories import MasterFactory, MembershipFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db
Role = Membership.Role


@pytest.fixture
def agency():
    master = MasterFactory()
    return {
        "master": master,
        "owner": MembershipFactory(account=master, role=Role.OWNER),
        "admin": MembershipFactory(account=master, role=Role.ADMIN),
        "viewer": MembershipFactory(account=master, role=Role.VIEWER),
    }


def test_the_owner_invites_an_owner_through_the_invite_machinery(
    agency, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        member = team.invite_member(
            actor=agency["owner"].user, account=agency["master"], email="New@Northwind.test", role=Role.OWNER
        )
    assert member.role == Role.OWNER and member.user.email == "new@northwind.test"
    assert not member.user.has_usable_password()
    assert Invitation.objects.filter(user=member.user, account=agency["master"]).count() == 1
    (message,) = mailoutbox
    assert message.to == ["new@northwind.test"] and "invited you to its team" in message.subject
    assert "as owner" in message.body
    event = AuditEvent.objects.get(action="team.invited")
    assert (
        event.after == {"email": "new@northwind.test", "role": "owner"}
        and event.actor == agency["owner"].user
    )


def test_an_admin_cannot_make_owners(agency):
    with pytest.raises(PermissionDenied, match="Only an owner"):
        team.invite_member(
            actor=agency["admin"].user, account=agency["master"], email="x@x.test", role=Role.OWNER
        )
    with pytest.raises(PermissionDenied):
        team.change_role(actor=agency["admin"].user, account=agency["master"],
                         membership_id=agency["viewer"].pk, role=Role.OWNER)  # fmt: skip
    assert not User.objects.filter(email="x@x.test").exists()


def test_an_admin_cannot_demote_or_remove_an_owner(agency):
    with pytest.raises(PermissionDenied):
        team.change_role(actor=agency["admin"].user, account=agency["master"],
                         membership_id=agency["owner"].pk, role=Role.VIEWER)  # fmt: skip
    with pytest.raises(PermissionDenied):
        team.remove_member(
            actor=agency["admin"].user, account=agency["master"], membership_id=agency["owner"].pk
        )


def test_an_admin_may_invite_and_change_admins_and_viewers(agency):
    member = team.invite_member(
        actor=agency["admin"].user, account=agency["master"], email="v@x.test", role=Role.VIEWER
    )
    team.change_role(
        actor=agency["admin"].user, account=agency["master"], membership_id=member.pk, role=Role.ADMIN
    )
    member.refresh_from_db()
    assert member.role == Role.ADMIN
    event = AuditEvent.objects.get(action="team.role_changed")
    assert event.before["role"] == "viewer" and event.after["role"] == "admin"


def test_a_viewer_changes_nothing(agency):
    with pytest.raises(PermissionDenied):
        team.invite_member(
            actor=agency["viewer"].user, account=agency["master"], email="x@x.test", role=Role.VIEWER
        )
    with pytest.raises(PermissionDenied):
        team.remove_member(
            actor=agency["viewer"].user, account=agency["master"], membership_id=agency["admin"].pk
        )


def test_the_last_owner_cannot_be_demoted_or_removed(agency):
    owner = agency["owner"]
    with pytest.raises(PermissionDenied, match="last owner"):
        team.change_role(actor=owner.user, account=agency["master"], membership_id=owner.pk, role=Role.ADMIN)
    with pytest.raises(PermissionDenied, match="last owner"):
        team.remove_member(actor=owner.user, account=agency["master"], membership_id=owner.pk)
    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_with_a_second_owner_the_first_may_step_down(agency):
    second = team.invite_member(
        actor=agency["owner"].user, account=agency["master"], email="o2@x.test", role=Role.OWNER
    )
    team.change_role(
        actor=agency["owner"].user,
        account=agency["master"],
        membership_id=agency["owner"].pk,
        role=Role.ADMIN,
    )
    assert set(agency["master"].memberships.filter(role=Role.OWNER)) == {second}


def test_removing_a_member_removes_their_login_and_is_audited(agency):
    viewer = agency["viewer"]
    team.remove_member(actor=agency["owner"].user, account=agency["master"], membership_id=viewer.pk)
    assert not User.objects.filter(pk=viewer.user_id).exists()
    event = AuditEvent.objects.get(action="team.removed")
    assert event.before == {"email": viewer.user.email, "role": "viewer"}


def test_another_accounts_member_is_not_found(agency):
    stranger = MembershipFactory(role=Role.VIEWER)
    with pytest.raises(Membership.DoesNotExist):
        team.remove_member(actor=agency["owner"].user, account=agency["master"], membership_id=stranger.pk)
    with pytest.raises(Membership.DoesNotExist):
        team.change_role(
            actor=agency["owner"].user, account=agency["master"], membership_id=stranger.pk, role=Role.ADMIN
        )
    assert Membership.objects.filter(pk=stranger.pk, role=Role.VIEWER).exists()


def test_an_address_with_a_login_is_refused(agency):
    with pytest.raises(ValidationError) as refused:
        team.invite_member(
            actor=agency["owner"].user,
            account=agency["master"],
            email=agency["viewer"].user.email,
            role=Role.ADMIN,
        )
    assert refused.value.field == "email"


def test_a_customer_owner_manages_their_own_team_but_makes_no_owner():
    sub, owner = subaccount_with_owner()
    member = team.invite_member(actor=owner, account=sub, email="colleague@acme.test", role=Role.ADMIN)
    assert member.account == sub
    with pytest.raises(PermissionDenied, match="one owner"):
        team.invite_member(actor=owner, account=sub, email="boss@acme.test", role=Role.OWNER)
    with pytest.raises(PermissionDenied):
        team.remove_member(actor=owner, account=sub, membership_id=owner.membership.pk)


# --- the page ----------------------------------------------------------------------------------------------


def test_the_page_for_the_owner_has_every_role_and_buttons(client, agency):
    client.force_login(agency["owner"].user)
    page = client.get(reverse("accounts:team")).content.decode()
    assert agency["viewer"].user.email in page and "Send invite" in page
    assert '<option value="owner"' in page and "Change role" in page
    assert "The only owner" in page  # no buttons that can only be refused


def test_the_page_for_an_admin_offers_no_owner_role(client, agency):
    client.force_login(agency["admin"].user)
    page = client.get(reverse("accounts:team")).content.decode()
    assert '<option value="owner"' not in page and "Send invite" in page


def test_the_page_for_a_viewer_has_no_buttons(client, agency):
    client.force_login(agency["viewer"].user)
    page = client.get(reverse("accounts:team")).content.decode()
    assert agency["owner"].user.email in page
    assert "Send invite" not in page and "Change role" not in page and "Remove" not in page


def test_the_page_posts_and_refuses(client, agency):
    client.force_login(agency["owner"].user)
    response = client.post(reverse("accounts:team"), {"email": "new@x.test", "role": "admin"})
    assert response.status_code == 302 and User.objects.filter(email="new@x.test").exists()
    owner_id = agency["owner"].pk
    response = client.post(
        reverse("accounts:team_member_role", args=[owner_id]), {"role": "viewer"}, follow=True
    )
    assert "last owner" in response.content.decode()
    stranger = MembershipFactory()
    assert client.post(reverse("accounts:team_member_remove", args=[stranger.pk])).status_code == 404
    assert (
        client.post(reverse("accounts:team_member_role", args=[stranger.pk]), {"role": "viewer"}).status_code
        == 404
    )


@requires_postgres()
@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner():
    # given an agency with exactly two owners
    master = MasterFactory()
    first = MembershipFactory(account=master, role=Role.OWNER)
    second = MembershipFactory(account=master, role=Role.OWNER)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def demote(actor: Membership, target: Membership) -> None:
        try:
            barrier.wait(timeout=10)
            team.change_role(actor=actor.user, account=master, membership_id=target.pk, role=Role.ADMIN)
            result = "demoted"
        except PermissionDenied:
            result = "refused"
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    # when each demotes the other at the same moment
    threads = [threading.Thread(target=demote, args=pair) for pair in ((first, second), (second, first))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # then one wins, and the agency keeps an owner
    assert sorted(outcomes) == ["demoted", "refused"]
    assert Membership.objects.filter(account=master, role=Role.OWNER).count() == 1


def test_deleting_a_subaccount_removes_its_teams_logins():
    sub, owner = subaccount_with_owner()
    colleague = team.invite_member(actor=owner, account=sub, email="colleague@acme.test", role=Role.VIEWER)
    admin = MembershipFactory(account=sub.parent).user
    delete_subaccount(actor=admin, master=sub.parent, subaccount_id=sub.pk)
    assert not User.objects.filter(pk__in=[owner.pk, colleague.user_id]).exists()


def test_a_team_invite_page_says_whose_team(client, django_capture_on_commit_callbacks, mailoutbox):
    master = MasterFactory(name="Northwind Digital")
    owner = MembershipFactory(account=master, role=Role.OWNER).user
    with django_capture_on_commit_callbacks(execute=True):
        team.invite_member(actor=owner, account=master, email="new@northwind.test", role=Role.ADMIN)
    (link,) = re.findall(r"http\S+/invite/\S+", mailoutbox[0].body)
    page = client.get(link).content.decode()
    assert "You are invited to the team of Northwind Digital, as admin" in page


def test_a_pending_member_gets_a_fresh_invite_once_accepted_never(agency, client):
    member = team.invite_member(
        actor=agency["owner"].user, account=agency["master"], email="p@x.test", role=Role.VIEWER
    )
    first = Invitation.objects.get(user=member.user)
    client.force_login(agency["admin"].user)
    response = client.post(reverse("accounts:team_member_resend", args=[member.pk]), follow=True)
    assert "A new invite is on its way to p@x.test" in response.content.decode()
    first.refresh_from_db()
    assert first.replaced_at is not None and Invitation.objects.filter(user=member.user).count() == 2
    assert AuditEvent.objects.filter(action="invite.resent", after__email="p@x.test").exists()
    with pytest.raises(InvalidTransition):
        team.resend_member_invite(
            actor=agency["owner"].user, account=agency["master"], membership_id=agency["viewer"].pk
        )
    with pytest.raises(PermissionDenied):
        team.resend_member_invite(
            actor=agency["viewer"].user, account=agency["master"], membership_id=member.pk
        )
    assert (
        client.post(reverse("accounts:team_member_resend", args=[MembershipFactory().pk])).status_code == 404
    )
