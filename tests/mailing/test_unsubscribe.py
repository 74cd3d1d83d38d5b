"""Unsubscribing: the link `*|UNSUB|*` puts in the mail and the List-Unsubscribe header (RFC 8058 one-click),
as a mail provider and a person use them."""

import email
import re
from email import policy
from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import Usage
from mailing.models import Message, MessageEvent, Suppression
from mailing.sending import OutgoingMessage, Recipient, accept_messages
from mailing.tracking import tokens
from tests.factories import SubaccountFactory

pytestmark = pytest.mark.django_db

ONE_CLICK = "List-Unsubscribe=One-Click"  # the exact form body Gmail and Yahoo POST (RFC 8058)


def _deliver(sub, smtp_sink, capture, **options):
    message = OutgoingMessage(
        from_email="news@example.test", subject="News", merge=True,
        html='<p>Hello</p><a href="*|UNSUB|*">Unsubscribe</a>', text="Unsubscribe: *|UNSUB|*",
        recipients=[Recipient(email="Ana@Example.test")], **options,
    )  # fmt: skip
    with capture(execute=True):
        [result] = accept_messages(account=sub, message=message)
    delivered = email.message_from_bytes(smtp_sink.received[-1].content, policy=policy.default)
    return result, delivered


@pytest.fixture
def delivered(smtp_sink, django_capture_on_commit_callbacks):
    sub = SubaccountFactory()
    result, mime = _deliver(sub, smtp_sink, django_capture_on_commit_callbacks)
    return sub, result, mime


def _header_path(mime) -> str:
    [url] = re.findall(r"<([^>]+)>", mime["List-Unsubscribe"])
    assert url.startswith(settings.TRACKING_BASE_URL + "/t/u/")
    return urlsplit(url).path


def test_the_mail_carries_one_click_headers_and_the_merged_link(delivered):
    _, result, mime = delivered
    assert mime["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = _header_path(mime)
    html = mime.get_body(preferencelist=("html",)).get_content()
    text = mime.get_body(preferencelist=("plain",)).get_content()
    assert f'href="{settings.TRACKING_BASE_URL}{path}"' in html and path in text
    assert tokens.message_of_unsubscribe(path.rsplit("/", 1)[1]) == result.id


def test_gmails_one_click_post_unsubscribes_once_and_suppresses(delivered):
    sub, result, mime = delivered
    provider = Client(enforce_csrf_checks=True)  # a mail provider has no CSRF token, nor a session
    response = provider.post(_header_path(mime), ONE_CLICK, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200 and "You are unsubscribed" in response.content.decode()
    entry = Suppression.objects.get(account=sub)
    assert (entry.email, entry.reason) == ("ana@example.test", "unsub")
    assert MessageEvent.objects.filter(message__public_id=result.id, kind="unsub").count() == 1
    usage = Usage.objects.get(account=sub, window=Usage.Window.HOUR)
    assert usage.unsubs == 1
    # the person clicks the link too: it changes nothing
    again = provider.post(_header_path(mime), ONE_CLICK, content_type="application/x-www-form-urlencoded")
    assert again.status_code == 200
    assert MessageEvent.objects.filter(kind="unsub").count() == 1
    usage.refresh_from_db()
    assert usage.unsubs == 1 and Suppression.objects.count() == 1


def test_get_asks_and_does_not_unsubscribe(client, delivered):
    _, _, mime = delivered
    page = client.get(_header_path(mime))
    assert page.status_code == 200
    content = page.content.decode()
    assert '<form method="post">' in content and "Unsubscribe</button>" in content
    assert not page.cookies  # no CSRF cookie, no session: a recipient is not a user
    assert not Suppression.objects.exists() and not MessageEvent.objects.filter(kind="unsub").exists()


def test_the_next_send_to_that_address_is_rejected_unsub_at_no_quota_cost(
    delivered, smtp_sink, django_capture_on_commit_callbacks
):
    sub, _, mime = delivered
    Client().post(_header_path(mime), ONE_CLICK, content_type="application/x-www-form-urlencoded")
    month_before = Usage.objects.get(account=sub, window=Usage.Window.MONTH).sent
    result, _ = _deliver(sub, smtp_sink, django_capture_on_commit_callbacks)
    assert (result.status, result.reject_reason) == ("rejected", "unsub")
    assert Usage.objects.get(account=sub, window=Usage.Window.MONTH).sent == month_before
    assert Message.objects.get(public_id=result.id).status == Message.Status.REJECTED


def test_forged_and_tampered_tokens_unsubscribe_nobody(client, delivered):
    _, result, mime = delivered
    token = _header_path(mime).rsplit("/", 1)[1]
    for attempt in [
        f"{result.id}:{'A' * 43}",
        tokens.open_token(result.id),  # signed, but for another purpose
        token[:-2],
        result.id,
    ]:
        response = client.post(f"/t/u/{attempt}", ONE_CLICK, content_type="application/x-www-form-urlencoded")
        assert response.status_code == 404
        assert "not valid" in response.content.decode()
    assert not Suppression.objects.exists()


def test_an_unsubscribe_link_reaches_only_its_own_accounts_list(delivered):
    # The token names one message; the address goes on that message's account's list and no other's.
    sub, _, mime = delivered
    other = SubaccountFactory(parent=sub.parent)
    Client().post(_header_path(mime), ONE_CLICK, content_type="application/x-www-form-urlencoded")
    assert list(Suppression.objects.values_list("account_id", flat=True)) == [sub.pk]
    assert not Suppression.objects.filter(account__in=[other, sub.parent]).exists()


def test_a_redirect_is_offered_only_when_the_message_named_it(smtp_sink, django_capture_on_commit_callbacks):
    sub = SubaccountFactory()
    message = OutgoingMessage(
        from_email="news@example.test", subject="News", merge=True,
        html='<a href="*|UNSUB:https://news.example/bye|*">Unsubscribe</a>',
        recipients=[Recipient(email="ben@example.test")],
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        [result] = accept_messages(account=sub, message=message)
    path = urlsplit(tokens.unsubscribe_url(result.id)).path
    named = Client().post(f"{path}?redirect={quote('https://news.example/bye', safe='')}")
    assert 'href="https://news.example/bye"' in named.content.decode()
    elsewhere = Client().post(f"{path}?redirect={quote('https://evil.example/', safe='')}")
    assert "evil.example" not in elsewhere.content.decode()


def test_a_sender_who_gives_its_own_list_unsubscribe_keeps_it(smtp_sink, django_capture_on_commit_callbacks):
    sub = SubaccountFactory()
    _, mime = _deliver(
        sub, smtp_sink, django_capture_on_commit_callbacks,
        headers={"List-Unsubscribe": "<mailto:leave@example.test>"},
    )  # fmt: skip
    assert mime.get_all("List-Unsubscribe") == ["<mailto:leave@example.test>"]
    assert mime["List-Unsubscribe-Post"] is None
