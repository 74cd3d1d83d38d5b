"""SMTP submission with Python's own smtplib against the server, started in the test."""

import smtplib
import ssl
import subprocess
import threading
from email.message import EmailMessage

import pytest
from django.db import connection

from accounts.models import Account, Membership, Usage
from mailing.keys import create_api_key
from mailing.models import Message
from mailing.smtp import build_controller
from tests.conftest import requires_postgres
from tests.factories import MasterFactory, MembershipFactory, subaccount_with_owner
from tests.mailing.conftest import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(settings):
    settings.SMTP_FAILED_AUTH_PER_MINUTE = 3
    port = free_port()
    controller = build_controller(hostname="127.0.0.1", port=port, require_tls_for_auth=False)
    controller.start()
    yield port
    controller.stop()


@pytest.fixture
def accounts():
    master = MasterFactory(public_id="agency")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    _, master_key = create_api_key(actor=owner, account=master, label="smtp")
    sub, sub_owner = subaccount_with_owner(master, public_id="shop", monthly_limit=5)
    _, sub_key = create_api_key(actor=sub_owner, account=sub, label="smtp")
    other, _ = subaccount_with_owner(master, public_id="other")
    return {"master": master, "master_key": master_key, "sub": sub, "sub_key": sub_key, "other": other}


def _email(to="client@example.test", **headers) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Shop <orders@shop.test>"
    message["To"] = to
    message["Subject"] = "Your order"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Thanks for your order")
    message.add_alternative("<p>Thanks for your order</p>", subtype="html")
    message.add_attachment(b"receipt", maintype="application", subtype="pdf", filename="receipt.pdf")
    return message


def _send(port, username, password, message, rcpt=None):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.login(username, password)
        return client.send_message(message, to_addrs=rcpt)


def test_send_as_self_is_stored_with_tags_metadata_and_attachment(server, accounts):
    message = _email(X_MC_Tags="order, receipt", X_MC_Metadata='{"order": "42"}')
    _send(server, "shop", accounts["sub_key"], message, rcpt=["client@example.test", "bcc@example.test"])
    stored = Message.objects.filter(account=accounts["sub"]).order_by("to_email")
    assert [m.to_email for m in stored] == ["bcc@example.test", "client@example.test"]
    first = stored[0]
    assert first.tags == ["order", "receipt"] and first.metadata == {"order": "42"}
    assert first.text.strip() == "Thanks for your order" and "<p>" in first.html
    assert first.attachments[0]["name"] == "receipt.pdf"
    assert not any(name.lower().startswith("x-mc-") for name in first.headers)


def test_x_mc_track_asks_for_tracking_and_is_not_delivered(server, accounts):
    message = _email(X_MC_Track="opens, clicks_all", X_MC_URLStripQS="true")
    _send(server, "shop", accounts["sub_key"], message)
    stored = Message.objects.get(account=accounts["sub"])
    assert (stored.track_opens, stored.track_clicks, stored.url_strip_qs) == (True, True, True)
    assert not any(name.lower().startswith("x-mc-") for name in stored.headers)
    _send(server, "shop", accounts["sub_key"], _email(to="other@example.test"))
    untracked = Message.objects.get(account=accounts["sub"], to_email="other@example.test")
    assert (untracked.track_opens, untracked.track_clicks) == (False, False)  # the account's default


def test_a_master_sends_as_its_subaccount_with_x_mc_subaccount(server, accounts):
    _send(server, "agency", accounts["master_key"], _email(X_MC_Subaccount="shop"))
    assert Message.objects.get().account == accounts["sub"]


def test_a_subaccount_cannot_send_as_another(server, accounts):
    with pytest.raises(smtplib.SMTPDataError) as refused:
        _send(server, "shop", accounts["sub_key"], _email(X_MC_Subaccount="other"))
    assert refused.value.smtp_code == 550
    assert not Message.objects.exists()


def test_an_unknown_subaccount_is_550(server, accounts):
    with pytest.raises(smtplib.SMTPDataError) as refused:
        _send(server, "agency", accounts["master_key"], _email(X_MC_Subaccount="ghost"))
    assert refused.value.smtp_code == 550 and b"ghost" in refused.value.smtp_error


@pytest.mark.parametrize("username, which", [("shop", "master_key"), ("nobody", "sub_key"), ("shop", None)])
def test_bad_credentials_are_refused(server, accounts, username, which):
    with pytest.raises(smtplib.SMTPAuthenticationError):
        _send(server, username, accounts[which] if which else "md-wrong", _email())


def test_failed_auth_is_throttled_per_ip(server, accounts):
    for _ in range(3):
        with pytest.raises(smtplib.SMTPAuthenticationError):
            _send(server, "shop", "md-wrong", _email())
    with pytest.raises(smtplib.SMTPAuthenticationError) as throttled:
        _send(server, "shop", accounts["sub_key"], _email())  # even the right key, for a while
    assert throttled.value.smtp_code == 454


def test_over_quota_is_refused_at_data_and_nothing_is_queued(server, accounts):
    Usage.objects.create(account=accounts["sub"], billed_to=accounts["master"], window=Usage.Window.MONTH,
                         start=__import__("accounts.quota", fromlist=["x"]).month_start(), sent=5)  # fmt: skip
    with pytest.raises(smtplib.SMTPDataError) as refused:
        _send(server, "shop", accounts["sub_key"], _email())
    assert refused.value.smtp_code == 550
    assert b"monthly-limit-reached" in refused.value.smtp_error
    # The refusal is on record for the log (no body), never queued.
    assert set(Message.objects.values_list("status", "content")) == {(Message.Status.REJECTED, None)}


def test_a_paused_account_is_accepted_and_held(server, accounts):
    Account.objects.filter(pk=accounts["sub"].pk).update(status=Account.Status.PAUSED, monthly_limit=1000)
    _send(server, "shop", accounts["sub_key"], _email())
    assert Message.objects.get().status == Message.Status.HELD


def test_a_closed_account_cannot_log_in(server, accounts):
    Account.objects.filter(pk=accounts["sub"].pk).update(status=Account.Status.CLOSED)
    with pytest.raises(smtplib.SMTPAuthenticationError):
        _send(server, "shop", accounts["sub_key"], _email())


def test_mail_without_auth_is_refused(server, accounts):
    with (
        smtplib.SMTP("127.0.0.1", server, timeout=10) as client,
        pytest.raises(smtplib.SMTPSenderRefused) as refused,
    ):
        client.send_message(_email())
    assert refused.value.smtp_code == 530


def test_oversize_is_refused(server, accounts, settings):
    message = _email()
    message.add_attachment(b"x" * 200_000, maintype="application", subtype="octet-stream", filename="big.bin")
    with smtplib.SMTP("127.0.0.1", server, timeout=10) as client:
        client.login("shop", accounts["sub_key"])
        assert "size" in client.esmtp_features
        with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as refused:
            client.sendmail(
                "orders@shop.test",
                ["a@example.test"],
                message.as_bytes() + b"y" * int(client.esmtp_features["size"]),
            )
    assert refused.value.smtp_code == 552


@requires_postgres()  # SQLite serialises writers by failing them ("database is locked": a 451, rightly)
def test_concurrent_smtp_clients_never_pass_the_limit(server, accounts):
    accepted, refused = [], []

    def client():
        try:
            for _ in range(3):
                try:
                    _send(server, "shop", accounts["sub_key"], _email())
                    accepted.append(1)
                except smtplib.SMTPDataError as exc:
                    assert exc.smtp_code == 550
                    refused.append(1)
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(accepted) == 5 and len(refused) == 13
    assert (
        Message.objects.filter(account=accounts["sub"]).exclude(status=Message.Status.REJECTED).count() == 5
    )


@pytest.fixture
def tls_server(tmp_path, settings):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip("openssl is needed to make a test certificate")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    port = free_port()
    controller = build_controller(
        hostname="127.0.0.1", port=port, tls_context=context, require_tls_for_auth=True
    )
    controller.start()
    yield port
    controller.stop()


def test_auth_only_after_starttls_when_a_certificate_is_configured(tls_server, accounts):
    with smtplib.SMTP("127.0.0.1", tls_server, timeout=10) as client:
        client.ehlo()
        assert "auth" not in client.esmtp_features and "starttls" in client.esmtp_features
        client.starttls(context=ssl._create_unverified_context())
        client.ehlo()
        client.login("shop", accounts["sub_key"])
        client.send_message(_email())
    assert Message.objects.count() == 1


@pytest.mark.verified_domains_only
def test_an_unverified_from_domain_is_refused_unsigned(server, accounts):
    with pytest.raises(smtplib.SMTPDataError) as refused:
        _send(server, "shop", accounts["sub_key"], _email())
    assert refused.value.smtp_code == 550 and b"unsigned" in refused.value.smtp_error
    assert b"orders@shop.test" in refused.value.smtp_error
    assert set(Message.objects.values_list("status", "reject_reason")) == {
        (Message.Status.REJECTED, "unsigned")
    }


def test_an_invalid_recipient_only_is_refused(server, accounts):
    with pytest.raises(smtplib.SMTPDataError) as refused:
        _send(server, "shop", accounts["sub_key"], _email(), rcpt=["not-an-address"])
    assert refused.value.smtp_code == 550 and b"No valid recipient" in refused.value.smtp_error


def test_connections_per_ip_are_limited(server, accounts, settings):
    settings.SMTP_MAX_CONNECTIONS_PER_IP = 1
    with smtplib.SMTP("127.0.0.1", server, timeout=10) as first:
        first.ehlo()
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", server, timeout=10)
        assert refused.value.smtp_code == 421


def test_a_connections_account_is_read_once_and_a_stale_copy_cannot_send(accounts):
    # given: a subaccount that logged in, sending two messages on its connection
    from django.test.utils import CaptureQueriesContext

    from mailing import smtp
    from mailing.smtp import Refusal, Sender, submit

    sender = Sender(account_id=accounts["sub"].pk, username="shop")
    data = _email().as_bytes()
    with CaptureQueriesContext(connection) as queries:
        submit(sender, "orders@shop.test", ["a@example.test"], data)
        submit(sender, "orders@shop.test", ["b@example.test"], data)
    # then: the login's account (with its master) was read for the first message only
    logins = [q for q in queries.captured_queries if 'FROM "accounts_account" LEFT OUTER JOIN' in q["sql"]]
    assert len(logins) == 1
    assert Message.objects.filter(account=accounts["sub"]).count() == 2
    # when: the account is closed meanwhile, its cached copy still open
    Account.objects.filter(pk=accounts["sub"].pk).update(status=Account.Status.CLOSED)
    assert smtp.authenticated_accounts.get(accounts["sub"].pk).status == Account.Status.ACTIVE
    with pytest.raises(Refusal):
        submit(sender, "orders@shop.test", ["c@example.test"], data)
    # then: nothing more was stored
    assert Message.objects.filter(account=accounts["sub"]).count() == 2


def test_only_the_headers_that_pass_through_are_kept_each_as_parsed():
    from mailing import raw

    message = raw.parse(
        b"From: Shop <orders@shop.test>\r\nTo: a@example.test\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\n"
        b"X-Campaign: =?utf-8?q?No=C3=ABl?=\r\nReply-To: help@shop.test\r\nReceived: from somewhere\r\n"
        b"X-Repeated: one\r\nX-Repeated: two\r\n\r\nHello\r\n"
    )
    outgoing = raw.outgoing(message, envelope_from="orders@shop.test", recipients=["a@example.test"],
                            options=raw.McOptions())  # fmt: skip
    assert outgoing.headers == {"X-Campaign": "Noël", "Reply-To": "help@shop.test", "X-Repeated": "two"}
    assert outgoing.headers == {
        name: str(value) for name, value in message.items() if raw._passes_through(name)
    }
    assert outgoing.subject == "Café"


def test_a_header_seen_before_is_not_parsed_again_unless_it_is_long():
    from mailing import raw

    raw._parsed_header.cache_clear()
    long_subject = "x" * (raw.CACHED_HEADER_CHARS + 1)
    first, second = (
        raw.parse(f"Content-Type: text/plain; charset=utf-8\r\nSubject: {subject}\r\n\r\nHi\r\n".encode())
        for subject in ("Hello", long_subject)
    )
    assert first["Content-Type"] is second["Content-Type"]  # one parse, shared: header values are immutable
    assert first.get_content_type() == "text/plain" and first.get_param("charset") == "utf-8"
    assert str(first["Subject"]) == "Hello"
    kept = raw._parsed_header.cache_info().currsize
    assert str(second["Subject"]) == long_subject
    assert raw._parsed_header.cache_info().currsize == kept  # parsed, not kept


@requires_postgres()  # the servers are other processes: they need the test database by its name
def test_several_server_processes_share_the_port_and_stop_together(accounts):
    # given: `smtpd --processes 2` on one port, for an account whose mail is held (nothing to deliver)
    import os
    import sys
    import time
    from pathlib import Path

    from django.conf import settings

    Account.objects.filter(pk=accounts["sub"].pk).update(status=Account.Status.PAUSED, monthly_limit=1000)
    port = free_port()
    database = settings.DATABASES["default"]
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT'] or 5432}/{database['NAME']}"
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_CURRENT_TEST")} | {
        "DATABASE_URL": url, "REDIS_URL": settings.REDIS_URL or "", "LOG_LEVEL": "WARNING",
        "REQUIRE_VERIFIED_SENDING_DOMAIN": "false",
    }  # fmt: skip
    root = Path(__file__).resolve().parents[2]
    server = subprocess.Popen([sys.executable, "manage.py", "smtpd", "--port", str(port), "--processes", "2"],
                              cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip

    def listeners() -> int:
        found = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True)
        return len(found.stdout.splitlines())

    try:
        deadline = time.monotonic() + 60
        while listeners() < 2 and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.2)
        assert listeners() == 2, (
            server.stderr.read().decode() if server.poll() is not None else "not listening"
        )
        # when: twelve connections, each with one message
        for n in range(12):
            _send(port, "shop", accounts["sub_key"], _email(to=f"client{n}@example.test"))
    finally:
        server.terminate()
        exit_code = server.wait(timeout=30)
    # then: every message was taken, and SIGTERM stopped both servers cleanly
    assert Message.objects.filter(account=accounts["sub"], status=Message.Status.HELD).count() == 12
    assert exit_code == 0
    assert listeners() == 0
