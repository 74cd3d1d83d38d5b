"""Invitations (DESIGN.md, "Invites"): a hashed, single-use, expiring token that sets the owner's password."""

import re
import threading
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.invites import InviteNotUsable, InviteState, accept_invite, issue_invitation
from accounts.lifecycle import create_subaccount, resend_invite
from accounts.models import AuditEvent, Invitation, Membership
from accounts.tokens import hash_secret
from tests.conftest import requires_postgres
from tests.factories import MasterFactory, MembershipFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-new-secret-77"
INVITE_LINK = re.compile(re.escape(settings.SITE_URL) + r"/invite/([A-Za-z0-9_-]+)/")


@pytest.fixture
def invited(mailoutbox, django_capture_on_commit_callbacks):
    """A freshly created subaccount, its owner and the token from the invite email."""
    master = MasterFactory(name="Northwind")
    admin = MembershipFactory(account=master).user
    with django_capture_on_commit_callbacks(execute=True):
        sub = create_subaccount(
            actor=admin, master=master, name="Acme Shop", contact_email="owner@acme.test", monthly_limit=100
        )
    token = INVITE_LINK.search(mailoutbox[-1].body).group(1)
    owner = Membership.objects.get(account=sub).user
    return sub, owner, token, admin


def _url(token: str) -> str:
    return reverse("accounts:invite_accept", kwargs={"token": token})


def _post(client, token: str, password: str = PASSWORD, again: str | None = None):
    return client.post(_url(token), {"password1": password, "password2": again or password})


def test_the_token_is_stored_only_as_its_hash(invited):
    _sub, _owner, token, _admin = invited
    invitation = Invitation.objects.get()
    assert invitation.token_hash == hash_secret(token)
    assert token not in str(list(Invitation.objects.values()))


def test_the_invite_email_has_a_text_and_an_html_part_with_the_absolute_link(invited, mailoutbox):
    _sub, _owner, token, _admin = invited
    (message,) = mailoutbox
    link = settings.SITE_URL + _url(token)
    assert link in message.body
    ((html, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    assert f'href="{link}"' in html
    assert "Acme Shop" in html and "Northwind" in html
    assert f"{settings.INVITE_VALID_HOURS} hours" in message.body


def test_get_shows_the_form_and_never_consumes_the_invite(client, invited):
    _sub, owner, token, _admin = invited
    for _ in range(3):
        page = client.get(_url(token))
        assert page.status_code == 200
        assert b"Choose a password" in page.content
    assert Invitation.objects.get().accepted_at is None
    owner.refresh_from_db()
    assert not owner.has_usable_password()


def test_accepting_sets_the_password_verifies_the_address_and_logs_the_owner_in(client, invited):
    sub, owner, token, _admin = invited
    # when
    response = client.post(_url(token), {"password1": PASSWORD, "password2": PASSWORD}, follow=True)
    # then
    assert response.redirect_chain[-1][0] == reverse("accounts:dashboard")
    assert b"Acme Shop" in response.content
    assert int(client.session["_auth_user_id"]) == owner.pk
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
    assert EmailAddress.objects.get(user=owner).verified is True
    assert Invitation.objects.get().accepted_at is not None
    event = AuditEvent.objects.get(action="invite.accepted")
    assert (event.actor, event.account) == (owner, sub)


def test_a_weak_password_is_refused_and_the_link_stays_usable(client, invited):
    _sub, owner, token, _admin = invited
    # when
    response = _post(client, token, password="12345678")
    # then
    assert response.status_code == 200
    assert b"errorlist" in response.content
    assert Invitation.objects.get().accepted_at is None
    assert "_auth_user_id" not in client.session
    # and the same link still works
    assert _post(client, token).status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_two_different_passwords_are_refused_beside_the_second(client, invited):
    _sub, _owner, token, _admin = invited
    response = _post(client, token, again="something-else-42")
    assert b"The two passwords differ" in response.content
    assert Invitation.objects.get().accepted_at is None


def _assert_invalid_page(response, status: int, headline: bytes, owner) -> None:
    assert response.status_code == status
    assert headline in response.content
    assert owner.email.encode() not in response.content
    assert b"Acme" not in response.content
    assert b"<form" not in response.content or b"password1" not in response.content


def test_an_expired_invite_has_its_own_page(client, invited):
    _sub, owner, token, _admin = invited
    # given the link is older than INVITE_VALID_HOURS
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Invitation.objects.get().expires_at - Invitation.objects.get().created_at < timedelta(
        hours=settings.INVITE_VALID_HOURS
    )
    # then
    _assert_invalid_page(client.get(_url(token)), 410, b"This invitation has expired", owner)
    _assert_invalid_page(_post(client, token), 410, b"This invitation has expired", owner)
    owner.refresh_from_db()
    assert not owner.has_usable_password()


def test_an_invite_is_valid_for_invite_valid_hours(invited):
    invitation = Invitation.objects.get()
    assert abs(
        (invitation.expires_at - invitation.created_at) - timedelta(hours=settings.INVITE_VALID_HOURS)
    ) < timedelta(seconds=5)


def test_a_used_invite_has_its_own_page(client, invited):
    _sub, owner, token, _admin = invited
    _post(client, token)
    client.logout()
    _assert_invalid_page(client.get(_url(token)), 410, b"This invitation has already been used", owner)
    _assert_invalid_page(
        _post(client, token, password="another-secret-99"),
        410,
        b"This invitation has already been used",
        owner,
    )
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_a_replaced_invite_has_its_own_page(client, invited, mailoutbox, django_capture_on_commit_callbacks):
    sub, owner, token, admin = invited
    with django_capture_on_commit_callbacks(execute=True):
        resend_invite(actor=admin, master=sub.parent, subaccount_id=sub.pk)
    _assert_invalid_page(client.get(_url(token)), 410, b"This invitation has been replaced", owner)
    _assert_invalid_page(_post(client, token), 410, b"This invitation has been replaced", owner)
    new_token = INVITE_LINK.search(mailoutbox[-1].body).group(1)
    assert client.get(_url(new_token)).status_code == 200


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"), id="tampered"),
        pytest.param(lambda token: token[:20], id="truncated"),
        pytest.param(lambda token: "not-a-token", id="garbage"),
        pytest.param(lambda token: "x" * 500, id="overlong"),
    ],
)
def test_a_tampered_or_garbage_token_is_not_found(client, invited, make_token):
    _sub, owner, token, _admin = invited
    bad = make_token(token)
    _assert_invalid_page(client.get(_url(bad)), 404, b"This invitation link is not valid", owner)
    _assert_invalid_page(_post(client, bad), 404, b"This invitation link is not valid", owner)
    assert Invitation.objects.get().accepted_at is None


def test_an_invite_sent_to_an_old_address_no_longer_works():
    sub, owner = subaccount_with_owner(accepted=False)
    token = issue_invitation(account=sub, user=owner)
    owner.email = "moved@example.test"
    owner.save(update_fields=["email"])
    with pytest.raises(InviteNotUsable) as refused:
        accept_invite(token=token, password=PASSWORD)
    assert refused.value.state is InviteState.REPLACED


def test_accepting_while_someone_else_is_logged_in_switches_to_the_owner(client, invited):
    _sub, owner, token, admin = invited
    client.force_login(admin)
    response = _post(client, token)
    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == owner.pk


@requires_postgres()
@pytest.mark.django_db(transaction=True)
def test_two_people_accepting_the_same_invite_at_once_only_one_wins():
    # given an invite
    sub, owner = subaccount_with_owner(accepted=False)
    token = issue_invitation(account=sub, user=owner)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def accept(password: str) -> None:
        try:
            barrier.wait(timeout=10)
            accept_invite(token=token, password=password)
            result = f"won:{password}"
        except InviteNotUsable as exc:
            result = f"refused:{exc.state}"
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    # when two threads accept it at the same moment
    threads = [threading.Thread(target=accept, args=(p,)) for p in ("first-secret-123", "second-secret-456")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # then exactly one wins, and the password is the winner's
    assert sorted(o.split(":")[0] for o in outcomes) == ["refused", "won"]
    assert "refused:used" in outcomes
    winner = next(o for o in outcomes if o.startswith("won")).split(":")[1]
    owner.refresh_from_db()
    assert owner.check_password(winner)
    assert Invitation.objects.filter(accepted_at__isnull=False).count() == 1
    assert AuditEvent.objects.filter(action="invite.accepted").count() == 1


def test_an_open_invite_is_used_up_once_the_owner_set_a_password_another_way(client, invited):
    # given the owner chose a password through a reset link while the invite was still open
    _sub, owner, token, _admin = invited
    owner.set_password("set-by-reset-link-1")
    owner.save(update_fields=["password"])
    # then the invite can no longer set it again
    _assert_invalid_page(client.get(_url(token)), 410, b"This invitation has already been used", owner)
    _assert_invalid_page(_post(client, token), 410, b"This invitation has already been used", owner)
    owner.refresh_from_db()
    assert owner.check_password("set-by-reset-link-1")
