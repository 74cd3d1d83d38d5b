"""What tracking adds to a message as it leaves (mailing/mime.py asks here): the open pixel, links
rewritten through signed click URLs, and the List-Unsubscribe headers. What a message asked for was
decided at accept time and stored on it (track_opens, track_clicks, tracked_links)."""

from __future__ import annotations

from ..models import Message
from . import links, tokens


def links_to_track(*, html_body: str, text_body: str) -> list[str]:
    """The links a message with click tracking stores at accept time, in the order delivery rewrites them."""
    return links.links_in(html_body=html_body, text_body=text_body, skip_prefix=tokens.own_prefix())


def delivered_bodies(message: Message) -> tuple[str, str]:
    """(html, text) as this recipient gets them. Untracked messages are returned untouched."""
    html_body, text_body = message.html, message.text
    if message.track_clicks and message.tracked_links:
        prefix = tokens.own_prefix()

        def url_for(index: int) -> str:
            return tokens.click_url(message.public_id, index)

        first_text_link = links.html_link_count(html_body, prefix)
        html_body = links.rewrite_html(html_body, message.tracked_links, url_for, prefix)
        text_body = links.rewrite_text(text_body, message.tracked_links, url_for, first=first_text_link,
                                       skip_prefix=prefix)  # fmt: skip
    if message.track_opens and html_body:
        html_body = links.with_pixel(html_body, tokens.open_url(message.public_id))
    return html_body, text_body


def unsubscribe_headers(message: Message) -> dict[str, str]:
    """RFC 2369's List-Unsubscribe with RFC 8058's one-click POST, naming this message; none when the
    sender gave its own List-Unsubscribe."""
    if any(name.lower() == "list-unsubscribe" for name in message.headers):
        return {}
    return {
        "List-Unsubscribe": f"<{tokens.unsubscribe_url(message.public_id)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
