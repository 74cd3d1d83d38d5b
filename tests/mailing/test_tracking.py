"""Open and click tracking, checked on the mail as the relay received it: the pixel and the rewritten links
are fetched as a mail client would, and what is recorded is read back."""

import email
import re
from email import policy
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core import signing

from accounts.models import Usage
from mailing.models import Message, MessageEvent
from mailing.sending import OutgoingMessage, Recipient, accept_messages
from mailing.tracking import links, tokens
from tests.conftest import requires_postgres
from tests.factories import SubaccountFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
HTML = (
    '<html><body><p>Hi</p><a href="https://shop.example/order?id=42&amp;ref=mail">Your order</a> '
    "<a href='mailto:help@shop.example'>Help</a> <a href=\"https://shop.example/faq\" mc:disable-tracking>FAQ</a>"
    '<a href="https://shop.example/unsubscribe-elsewhere">Elsewhere</a></body></html>'
)
TEXT = "Your order: https://shop.example/order?id=42&ref=mail\nThanks."


def _send(sub, *, smtp_sink, capture, **options) -> tuple[Message, email.message.EmailMessage]:
    message = OutgoingMessage(
        from_email="shop@example.test", subject="Your order", html=HTML, text=TEXT,
        recipients=[Recipient(email="ana@example.test")], **options,
    )  # fmt: skip
    with capture(execute=True):
        [result] = accept_messages(account=sub, message=message)
    delivered = email.message_from_bytes(smtp_sink.received[-1].content, policy=policy.default)
    return Message.objects.get(public_id=result.id), delivered


def _html(delivered) -> str:
    return delivered.get_body(preferencelist=("html",)).get_content()


def _text(delivered) -> str:
    return delivered.get_body(preferencelist=("plain",)).get_content()


def _path(url: str) -> str:
    assert url.startswith(settings.TRACKING_BASE_URL + "/t/")
    return urlsplit(url).path


def _tracking_urls(body: str, kind: str) -> list[str]:
    return re.findall(re.escape(settings.TRACKING_BASE_URL) + rf"/t/{kind}/[^\"'\s<>]+", body)


@pytest.fixture
def tracked(smtp_sink, django_capture_on_commit_callbacks):
    sub = SubaccountFactory()
    return _send(sub, smtp_sink=smtp_sink, capture=django_capture_on_commit_callbacks,
                 track_opens=True, track_clicks=True)  # fmt: skip


def _usage(account) -> Usage:
    return Usage.objects.get(account=account, window=Usage.Window.HOUR)


def test_the_delivered_html_has_a_pixel_and_its_web_links_rewritten(tracked):
    message, delivered = tracked
    html = _html(delivered)
    [pixel] = _tracking_urls(html, "o")
    assert html.index(pixel) > html.index("Elsewhere")  # at the end of the body
    clicks = _tracking_urls(html, "c")
    assert len(clicks) == 2  # the order and "Elsewhere"; not mailto:, not mc:disable-tracking
    assert "https://shop.example/order" not in html and "mailto:help@shop.example" in html
    assert 'href="https://shop.example/faq"' in html
    assert message.tracked_links == [
        "https://shop.example/order?id=42&ref=mail",
        "https://shop.example/unsubscribe-elsewhere",
        "https://shop.example/order?id=42&ref=mail",  # the text part's
    ]
    # the text part's link is rewritten too, to its own index
    [text_click] = _tracking_urls(_text(delivered), "c")
    assert tokens.link_of_click(_path(text_click).rsplit("/", 1)[1]) == (message.public_id, 2)


def test_an_open_is_recorded_and_counted_unique_once(client, tracked):
    message, delivered = tracked
    [pixel] = _tracking_urls(_html(delivered), "o")
    for _ in range(2):
        response = client.get(_path(pixel), HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.9")
        assert response.status_code == 200 and response["Content-Type"] == "image/gif"
        assert response.content.startswith(b"GIF89a") and "no-store" in response["Cache-Control"]
    opens = MessageEvent.objects.filter(message=message, kind=MessageEvent.Kind.OPEN)
    assert opens.count() == 2
    assert opens.first().data == {"ip": "203.0.113.9", "user_agent": BROWSER, "user_agent_parsed": None,
                                  "location": None, "bot": False}  # fmt: skip
    message.refresh_from_db()
    assert message.opens == 2 and message.first_opened_at is not None
    usage = _usage(message.account)
    assert (usage.opens, usage.unique_opens) == (2, 1)
    assert not client.cookies  # no session made for a recipient


def test_a_click_redirects_to_the_messages_own_link_and_is_counted(client, tracked):
    message, delivered = tracked
    first, second = _tracking_urls(_html(delivered), "c")
    response = client.get(_path(first), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 302 and response["Location"] == "https://shop.example/order?id=42&ref=mail"
    assert (
        client.get(_path(second), HTTP_USER_AGENT=BROWSER)["Location"]
        == "https://shop.example/unsubscribe-elsewhere"
    )
    [click, _] = MessageEvent.objects.filter(message=message, kind=MessageEvent.Kind.CLICK)
    assert click.data["url"] == "https://shop.example/order?id=42&ref=mail" and click.data["bot"] is False
    usage = _usage(message.account)
    assert (usage.clicks, usage.unique_clicks) == (2, 1)
    message.refresh_from_db()
    assert message.clicks == 2


def test_url_strip_qs_reports_clicks_without_the_query_but_redirects_with_it(
    client, smtp_sink, django_capture_on_commit_callbacks
):
    sub = SubaccountFactory()
    _, delivered = _send(sub, smtp_sink=smtp_sink, capture=django_capture_on_commit_callbacks,
                               track_clicks=True, url_strip_qs=True)  # fmt: skip
    first = _tracking_urls(_html(delivered), "c")[0]
    assert (
        client.get(_path(first), HTTP_USER_AGENT=BROWSER)["Location"]
        == "https://shop.example/order?id=42&ref=mail"
    )
    assert MessageEvent.objects.get(kind="click").data["url"] == "https://shop.example/order"


@pytest.mark.parametrize(
    "agent", ["Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", ""]
)
def test_a_prefetching_proxy_is_marked_bot_and_not_counted(client, tracked, agent):
    message, delivered = tracked
    [pixel] = _tracking_urls(_html(delivered), "o")
    client.get(_path(pixel), HTTP_USER_AGENT=agent)
    event = MessageEvent.objects.get(message=message, kind=MessageEvent.Kind.OPEN)
    assert event.data["bot"] is True
    message.refresh_from_db()
    assert message.opens == 0 and message.first_opened_at is None
    assert _usage(message.account).opens == 0


def test_forged_tampered_and_foreign_tokens_record_nothing_and_redirect_nowhere(client, tracked):
    message, delivered = tracked
    first = _path(_tracking_urls(_html(delivered), "c")[0])
    token = first.rsplit("/", 1)[1]
    value, signature = token.rsplit(":", 1)
    other_message = Message.objects.create(
        account=SubaccountFactory(), from_email="x@example.test", to_email="y@example.test",
        track_clicks=True, tracked_links=["https://evil.example/"],
    )  # fmt: skip
    attempts = [
        f"{message.public_id}.0:{'A' * len(signature)}",  # forged signature
        f"{value[:-1]}9:{signature}",  # another index, same signature
        f"{other_message.public_id}.0:{signature}",  # another message, same signature
        signing.Signer(salt="another-purpose").sign(f"{message.public_id}.0"),  # signed for something else
        tokens.open_token(message.public_id),  # an open token is not a click token
        "https%3A%2F%2Fevil.example%2F",
        f"{message.public_id}.7",  # unsigned
    ]
    for attempt in attempts:
        response = client.get(f"/t/c/{attempt}", HTTP_USER_AGENT=BROWSER)
        assert response.status_code == 404, attempt
    # a genuine token for an index the message does not have
    assert client.get(f"/t/c/{tokens.click_token(message.public_id, 9)}").status_code == 404
    # a pixel with a bad token still answers the image, and records nothing
    bad_pixel = client.get(f"/t/o/{message.public_id}:{signature}", HTTP_USER_AGENT=BROWSER)
    assert bad_pixel.status_code == 200 and bad_pixel["Content-Type"] == "image/gif"
    assert not MessageEvent.objects.filter(kind__in=["open", "click"]).exists()
    # a query string cannot choose where a click goes
    response = client.get(first + "?url=https://evil.example/&next=https://evil.example/")
    assert response["Location"] == "https://shop.example/order?id=42&ref=mail"


def test_another_accounts_message_is_reached_only_through_its_own_signed_links(client, tracked):
    # Tenancy on /t/: no login, so the only way to a message is a token signed for it. A token for one
    # account's message records on that message, and never on another account's.
    message, delivered = tracked
    sibling, _ = subaccount_with_owner(message.account.parent)
    theirs = Message.objects.create(account=sibling, from_email="x@example.test", to_email="y@example.test",
                                    track_opens=True)  # fmt: skip
    client.get(_path(_tracking_urls(_html(delivered), "o")[0]), HTTP_USER_AGENT=BROWSER)
    opens = MessageEvent.objects.filter(kind=MessageEvent.Kind.OPEN)
    assert list(opens.values_list("message_id", "account_id")) == [(message.pk, message.account_id)]
    assert not Usage.objects.filter(account=sibling).exists() and theirs.opens == 0


def test_tracking_off_leaves_the_html_untouched(smtp_sink, django_capture_on_commit_callbacks):
    sub = SubaccountFactory()
    message, delivered = _send(sub, smtp_sink=smtp_sink, capture=django_capture_on_commit_callbacks)
    html = _html(delivered)
    assert html.strip() == HTML and message.tracked_links == []
    assert TEXT in _text(delivered).replace("\r\n", "\n")


def test_the_accounts_defaults_apply_when_the_message_does_not_say(
    smtp_sink, django_capture_on_commit_callbacks
):
    sub = SubaccountFactory(track_opens=True, track_clicks=False)
    _, delivered = _send(sub, smtp_sink=smtp_sink, capture=django_capture_on_commit_callbacks)
    assert len(_tracking_urls(_html(delivered), "o")) == 1 and not _tracking_urls(_html(delivered), "c")
    # the message's own choice wins over the default
    _, delivered = _send(
        sub, smtp_sink=smtp_sink, capture=django_capture_on_commit_callbacks, track_opens=False
    )
    assert not _tracking_urls(_html(delivered), "o")


def test_the_api_takes_the_tracking_fields(client):
    from mailing.keys import create_api_key
    from tests.factories import MembershipFactory

    sub = SubaccountFactory()
    owner = MembershipFactory(account=sub).user
    _, key = create_api_key(actor=owner, account=sub, label="t")
    body = {"key": key, "message": {"from_email": "a@example.test", "to": [{"email": "b@example.test"}],
                                    "html": HTML, "track_opens": True, "track_clicks": True, "url_strip_qs": True}}  # fmt: skip
    result = client.post("/api/1.0/messages/send.json", body, content_type="application/json").json()[0]
    stored = Message.objects.get(public_id=result["_id"])
    assert (stored.track_opens, stored.track_clicks, stored.url_strip_qs) == (True, True, True)
    bad = client.post("/api/1.0/messages/send.json", body | {"message": body["message"] | {"track_opens": "yes"}},
                      content_type="application/json")  # fmt: skip
    assert bad.json()["name"] == "ValidationError"


def test_rewriting_keeps_a_link_that_changed_since_it_was_stored():
    html = '<a href="https://a.example/">A</a><a href="https://b.example/">B</a>'
    rewritten = links.rewrite_html(html, ["https://a.example/", "https://other.example/"], lambda i: f"T{i}")
    assert rewritten == '<a href="T0">A</a><a href="https://b.example/">B</a>'


def test_the_endpoints_refuse_writes_and_need_no_login(client, tracked):
    _, delivered = tracked
    pixel = _path(_tracking_urls(_html(delivered), "o")[0])
    assert client.post(pixel).status_code == 405
    assert client.head(pixel).status_code == 200
    assert not MessageEvent.objects.filter(kind="open").exists()  # HEAD records nothing


def test_the_api_reports_opens_and_clicks(client, tracked):
    from mailing.keys import create_api_key
    from tests.factories import MembershipFactory

    message, delivered = tracked
    sub = message.account
    client.get(
        _path(_tracking_urls(_html(delivered), "o")[0]), HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.9"
    )
    client.get(_path(_tracking_urls(_html(delivered), "o")[0]), HTTP_USER_AGENT="GoogleImageProxy")  # a bot
    client.get(_path(_tracking_urls(_html(delivered), "c")[0]), HTTP_USER_AGENT=BROWSER)
    _, key = create_api_key(actor=MembershipFactory(account=sub).user, account=sub, label="t")

    def call(name, **body):
        return client.post(
            f"/api/1.0/{name}.json", {"key": key, **body}, content_type="application/json"
        ).json()

    info = call("messages/info", id=message.public_id)
    assert (info["opens"], info["clicks"]) == (1, 1)
    assert info["opens_detail"] == [
        {"ts": info["opens_detail"][0]["ts"], "ip": "203.0.113.9", "location": None, "ua": BROWSER}
    ]
    assert info["clicks_detail"][0]["url"] == "https://shop.example/order?id=42&ref=mail"
    counted = {"opens": 1, "unique_opens": 1, "clicks": 1, "unique_clicks": 1}
    user = call("users/info")
    for period in ("today", "last_7_days", "last_30_days", "all_time"):
        assert {k: user["stats"][period][k] for k in counted} == counted, period
    sender = call("senders/info", address="shop@example.test")
    assert {k: sender[k] for k in counted} == counted
    # the agency's view of its subaccount
    master_key = create_api_key(
        actor=MembershipFactory(account=sub.parent).user, account=sub.parent, label="m"
    )[1]
    detail = client.post(
        "/api/1.0/subaccounts/info.json",
        {"key": master_key, "id": sub.public_id},
        content_type="application/json",
    ).json()
    assert {k: detail["last_30_days"][k] for k in counted} == counted
    # another account's key does not reach the message
    other = SubaccountFactory()
    other_key = create_api_key(actor=MembershipFactory(account=other).user, account=other, label="o")[1]
    refused = client.post(
        "/api/1.0/messages/info.json",
        {"key": other_key, "id": message.public_id},
        content_type="application/json",
    ).json()
    assert refused["name"] == "Unknown_Message"


def test_the_message_page_shows_the_timeline_to_its_account_only(client, tracked):
    from accounts.models import Membership
    from tests.factories import MembershipFactory

    message, delivered = tracked
    client.get(_path(_tracking_urls(_html(delivered), "o")[0]), HTTP_USER_AGENT=BROWSER)
    client.get(
        _path(_tracking_urls(_html(delivered), "c")[0]), HTTP_USER_AGENT="Mozilla/5.0 Barracuda link check"
    )
    owner = MembershipFactory(account=message.account, role=Membership.Role.OWNER).user
    client.force_login(owner)
    page = client.get(f"/messages/{message.public_id}/").content.decode()
    timeline = page[page.index(">Timeline</h2>") :]
    assert timeline.index("Delivered") < timeline.index("Opened") < timeline.index("Clicked")
    assert (
        "Followed https://shop.example/order?id=42&amp;ref=mail (by a mail proxy or link scanner" in timeline
    )
    stranger = MembershipFactory(account=SubaccountFactory(), role=Membership.Role.OWNER).user
    client.force_login(stranger)
    assert client.get(f"/messages/{message.public_id}/").status_code == 404


@requires_postgres()
@pytest.mark.django_db(transaction=True)
def test_simultaneous_opens_count_one_unique():
    import threading

    from django.db import connection

    from mailing.tracking import recording

    sub = SubaccountFactory()
    message = Message.objects.create(account=sub, from_email="a@example.test", to_email="b@example.test",
                                     track_opens=True)  # fmt: skip
    barrier = threading.Barrier(8)

    def reader():
        try:
            barrier.wait()
            recording.record_open(public_id=message.public_id, visit=recording.Visit(user_agent=BROWSER))
        finally:
            connection.close()

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    message.refresh_from_db()
    assert message.opens == 8
    usage = _usage(sub)
    assert (usage.opens, usage.unique_opens) == (8, 1)


def test_only_the_href_attribute_is_rewritten():
    html = '<a data-href="https://data.example/" href="https://real.example/" title="href=x">R</a>'
    found = links.links_in(html_body=html, text_body="")
    assert found == ["https://real.example/"]
    assert (
        links.rewrite_html(html, found, lambda i: "T")
        == '<a data-href="https://data.example/" href="T" title="href=x">R</a>'
    )
