"""Finding and rewriting a message's links, and the open pixel: pure functions over the HTML and text a
recipient gets. The links are found at accept time (stored on the message, in order) and rewritten at
delivery by the same walk, each to a signed URL naming its index; a link whose text no longer matches the
stored one is left alone rather than sent somewhere else.

Links are found with a regular expression over `<a …>` tags, not a full HTML parser: it is what mail
senders do (Mandrill's own rewriting works on the markup too), it keeps the rest of the HTML byte for byte,
and it is fast. Only http(s) links are tracked; `mailto:`, `tel:`, anchors and `cid:` are left as they are,
and so is an `<a>` with Mandrill's `mc:disable-tracking` attribute. The unsubscribe link is never tracked.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

ANCHOR = re.compile(r"<a\s[^>]*>", re.IGNORECASE)
HREF = re.compile(r"""((?<![\w:-])href\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""", re.IGNORECASE)
TEXT_URL = re.compile(r"https?://[^\s<>\"')\]]+", re.IGNORECASE)
BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
MAX_LINKS = 500  # a message with more links keeps the rest untracked


def _trackable(url: str, skip_prefix: str) -> bool:
    return url.lower().startswith(("http://", "https://")) and not (
        skip_prefix and url.startswith(skip_prefix)
    )


def _anchors(markup: str, skip_prefix: str):
    """(match of the href attribute within the tag, tag match, the link) for each trackable anchor."""
    for tag in ANCHOR.finditer(markup):
        if "mc:disable-tracking" in tag.group(0).lower():
            continue
        href = HREF.search(tag.group(0))
        if href is None:
            continue
        url = html.unescape(next(group for group in href.groups()[1:] if group is not None)).strip()
        if _trackable(url, skip_prefix):
            yield tag, href, url


def _text_urls(text: str, skip_prefix: str):
    for found in TEXT_URL.finditer(text):
        url = found.group(0).rstrip(".,;:!?")
        if _trackable(url, skip_prefix):
            yield found, url


def links_in(*, html_body: str, text_body: str, skip_prefix: str = "") -> list[str]:
    """The trackable links, in order: the HTML's, then the text part's."""
    found = [url for _, _, url in _anchors(html_body, skip_prefix)]
    found += [url for _, url in _text_urls(text_body, skip_prefix)]
    return found[:MAX_LINKS]


def rewrite_html(markup: str, links: list[str], url_for: Callable[[int], str], skip_prefix: str = "") -> str:
    """The HTML with its i-th trackable link pointing at url_for(i), where it is still links[i]."""
    out, last = [], 0
    for index, (tag, href, url) in enumerate(_anchors(markup, skip_prefix)):
        if index < len(links) and links[index] == url:
            start = tag.start() + href.start()
            out += [markup[last:start], href.group(1), '"', html.escape(url_for(index)), '"']
            last = tag.start() + href.end()
    return "".join(out) + markup[last:]


def rewrite_text(
    text: str, links: list[str], url_for: Callable[[int], str], *, first: int, skip_prefix: str = ""
) -> str:
    """The text part with its URLs rewritten; the text's links are numbered from `first` (after the HTML's)."""
    out, last = [], 0
    for index, (found, url) in enumerate(_text_urls(text, skip_prefix), start=first):
        if index < len(links) and links[index] == url:
            out += [text[last : found.start()], url_for(index)]
            last = found.start() + len(url)
    return "".join(out) + text[last:]


def html_link_count(markup: str, skip_prefix: str = "") -> int:
    return sum(1 for _ in _anchors(markup, skip_prefix))


def with_pixel(markup: str, pixel_url: str) -> str:
    """The HTML with a one-pixel image at the end of its body (where mail clients load it last)."""
    image = (
        f'<img src="{html.escape(pixel_url)}" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">'
    )
    ends = list(BODY_END.finditer(markup))
    if not ends:
        return markup + image
    at = ends[-1].start()
    return markup[:at] + image + markup[at:]


def without_query(url: str) -> str:
    """`url_strip_qs`: the link as reported, without its query string (and fragment)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
