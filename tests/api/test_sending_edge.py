"""One answer to "who sends": the API and SMTP resolve the sender with the same function and refuse
alike; every path under /api/ answers in Mandrill's shape; calls Mandrill has and we lack say so."""

import smtplib
from email.message import EmailMessage

import pytest

from accounts import lifecycle
from accounts.errors import AccountClosed, PermissionDenied, UnknownSubaccount
from accounts.models import Account, Membership
from mailing.keys import create_api_key
from mailing.models import Message
from mailing.sending import resolve_sender
from mailing.smtp import build_controller
from tests.api.test_wire_format import assert_error, call
from tests.factories import MasterFactory, MembershipFactory, subaccount_with_owner
from tests.mailing.conftest import free_port


@pytest.fixture
def agency(db):
    master = MasterFactory(public_id="agency")
    admin = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    _, master_key = create_api_key(actor=admin, account=master, label="edge")
    shop, shop_owner = subaccount_with_owner(master, public_id="shop")
    _, shop_key = create_api_key(actor=shop_owner, account=shop, label="edge")
    closed, _ = subaccount_with_owner(master, public_id="closed-one")
    lifecycle.close_subaccount(actor=admin, master=master, subaccount_id=closed.pk)
    renewed, renewed_owner = subaccount_with_owner(master, public_id="renewed-one")
    lifecycle.close_subaccount(actor=admin, master=master, subaccount_id=renewed.pk)
    lifecycle.renew_account(actor=renewed_owner)
    return {"master": master, "master_key": master_key, "shop": shop, "shop_key": shop_key}


# --- the rule itself ----------------------------------------------------------------------------------


def test_resolve_sender_rules(agency):
    master, shop = agency["master"], agency["shop"]
    assert resolve_sender(account=master, subaccount_id=None) == master
    assert resolve_sender(account=master, subaccount_id="agency") == master  # naming oneself: oneself
    assert resolve_sender(account=master, subaccount_id="shop") == shop
    assert resolve_sender(account=shop, subaccount_id="shop") == shop
    with pytest.raises(UnknownSubaccount):
        resolve_sender(account=master, subaccount_id="nope")
    with pytest.raises(UnknownSubaccount):  # renewed away: no longer the agency's
        resolve_sender(account=master, subaccount_id="renewed-one")
    with pytest.raises(AccountClosed):
        resolve_sender(account=master, subaccount_id="closed-one")
    with pytest.raises(PermissionDenied):
        resolve_sender(account=shop, subaccount_id="agency")


# --- the API and SMTP agree ------------------------------------------------------------------------------

# (credentials, subaccount named) → what the API answers, what SMTP replies, and who sent if accepted.
CASES = [
    ("master", None, None, None, "agency"),
    ("master", "agency", None, None, "agency"),
    ("master", "shop", None, None, "shop"),
    ("shop", "shop", None, None, "shop"),
    ("master", "nope", "Unknown_Subaccount", "550 5.1.0", None),
    ("master", "renewed-one", "Unknown_Subaccount", "550 5.1.0", None),
    ("master", "closed-one", "ValidationError", "554 5.7.1", None),
    ("shop", "agency", "PermissionDenied", "550 5.7.1", None),
]


@pytest.fixture
def smtp_server(settings):
    port = free_port()
    controller = build_controller(hostname="127.0.0.1", port=port, require_tls_for_auth=False)
    controller.start()
    yield port
    controller.stop()


def _api_send(client, key, subaccount):
    message = {"from_email": "news@agency.test", "to": [{"email": "reader@example.test"}], "text": "hi"}
    if subaccount:
        message["subaccount"] = subaccount
    return call(client, "messages/send.json", {"key": key, "message": message})


def _smtp_send(port, username, key, subaccount) -> str:
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = "news@agency.test", "reader@example.test", "hi"
    if subaccount:
        email["X-MC-Subaccount"] = subaccount
    email.set_content("hi")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.login(username, key)
        try:
            smtp.send_message(email)
        except smtplib.SMTPDataError as refused:
            return f"{refused.smtp_code} {refused.smtp_error.decode()}"
    return "250"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("who", "subaccount", "api_error", "smtp_reply", "sent_as"), CASES)
def test_the_api_and_smtp_resolve_the_sender_alike(
    client, agency, smtp_server, who, subaccount, api_error, smtp_reply, sent_as
):
    key = agency[f"{who}_key"]
    username = "agency" if who == "master" else "shop"
    # when
    api_answer = _api_send(client, key, subaccount)
    smtp_answer = _smtp_send(smtp_server, username, key, subaccount)
    # then
    if api_error:
        assert_error(api_answer, api_error)
        assert smtp_answer.startswith(smtp_reply), smtp_answer
        assert not Message.objects.exists()
    else:
        assert api_answer.status_code == 200 and api_answer.json()[0]["status"] == "queued"
        assert smtp_answer == "250"
        senders = list(Message.objects.values_list("account__public_id", flat=True))
        assert senders == [sent_as, sent_as]


# --- every path under /api/ ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/", "/api/2.0/users/ping.json", "/api/1.0/", "/api/1.0/users", "/api/1.0/users/ping/extra"]
)
def test_every_path_under_api_answers_in_mandrills_shape(client, db, path):
    body = assert_error(client.post(path, "{}", content_type="application/json"), "Unknown_Url")
    assert "/api/1.0/" in body["message"]


def test_a_mandrill_call_we_lack_says_so_after_the_key_is_checked(client, agency):
    assert_error(call(client, "ips/list.json", {"key": "md-wrong"}), "Invalid_Key")
    body = assert_error(call(client, "ips/list.json", {"key": agency["master_key"]}), "Unsupported_Call")
    assert "does not support /ips/list" in body["message"]


def test_a_call_mandrill_does_not_have_is_unknown_after_the_key_is_checked(client, agency):
    assert_error(call(client, "users/nothing.json", {"key": "md-wrong"}), "Invalid_Key")
    body = assert_error(call(client, "users/nothing.json", {"key": agency["master_key"]}), "Unknown_Url")
    assert "not a call of the Mandrill API" in body["message"]


def test_the_api_deletes_through_the_service_without_a_typed_name(client, agency):
    answer = call(client, "subaccounts/delete.json", {"key": agency["master_key"], "id": "shop"})
    assert answer.status_code == 200 and answer.json()["id"] == "shop"
    assert not Account.objects.filter(public_id="shop").exists()
