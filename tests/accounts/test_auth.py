import re

import pytest
from django.urls import reverse

from accounts.models import Membership
from tests.factories import PASSWORD, MembershipFactory, UserFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def test_a_master_admin_logs_in_by_email_and_lands_on_the_subaccount_list(client):
    membership = MembershipFactory(role=Membership.Role.ADMIN)
    response = client.post(LOGIN, {"login": membership.user.email, "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("accounts:subaccount_list")
    assert b"No subaccounts yet" in response.content


def test_a_subaccount_owner_lands_on_their_own_dashboard(client):
    _sub, owner = subaccount_with_owner(name="Acme Shop")
    response = client.post(LOGIN, {"login": owner.email, "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("accounts:dashboard")
    assert b"Acme Shop" in response.content


def test_a_wrong_password_gets_a_clear_message_and_no_session(client):
    membership = MembershipFactory()
    response = client.post(LOGIN, {"login": membership.user.email, "password": "wrong"})
    assert response.status_code == 200
    assert b"not correct" in response.content
    assert "_auth_user_id" not in client.session


def test_logout_is_a_post_and_ends_the_session(client):
    membership = MembershipFactory()
    client.force_login(membership.user)
    client.post("/accounts/logout/")
    assert client.get(reverse("accounts:subaccount_list")).status_code == 302


def test_pages_require_login(client):
    response = client.get(reverse("accounts:subaccount_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_there_is_no_public_sign_up(client):
    response = client.post(
        "/accounts/signup/", {"email": "new@example.test", "password1": "a-long-password-1"}
    )
    assert b"Sign-up is by invitation" in response.content
    assert not UserFactory._meta.model.objects.filter(email="new@example.test").exists()


def test_password_reset_end_to_end_and_the_link_works_once(client, mailoutbox):
    user = MembershipFactory().user
    # given a reset request
    response = client.post("/accounts/password/reset/", {"email": user.email}, follow=True)
    assert b"Check your email" in response.content
    assert len(mailoutbox) == 1
    link = re.search(r"http://\S+/accounts/password/reset/key/\S+/", mailoutbox[0].body).group(0)
    # in development the link follows the address the site was visited at (the test client's host)
    assert link.startswith("http://testserver/")
    path = link.split("http://testserver", 1)[1]
    # when the link is used
    form_page = client.get(path, follow=True)
    action = form_page.redirect_chain[-1][0] if form_page.redirect_chain else path
    done = client.post(
        action, {"password1": "brand-new-secret-42", "password2": "brand-new-secret-42"}, follow=True
    )
    assert b"Your password has been changed" in done.content
    user.refresh_from_db()
    assert user.check_password("brand-new-secret-42")
    # then the same link is refused the second time
    again = client.get(path, follow=True)
    assert b"This link no longer works" in again.content


def test_password_reset_does_not_reveal_whether_an_address_exists(client, mailoutbox):
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.test"}, follow=True)
    assert b"Check your email" in response.content
    assert mailoutbox == []


def test_password_reset_is_rate_limited_per_address(client, mailoutbox):
    user = MembershipFactory().user
    for _ in range(5):
        client.post("/accounts/password/reset/", {"email": user.email})
    response = client.post("/accounts/password/reset/", {"email": user.email})
    assert response.status_code == 429
    assert len(mailoutbox) == 5
