"""What Mandrill does to a message's bodies on request: `auto_text` (a plain-text part made from the
HTML, for clients and filters that want one) and `inline_css` (styles moved into style attributes,
because many mail clients ignore <style> blocks); and the one-line subject every message gets."""

from __future__ import annotations

import html as html_lib
import re

import css_inline

from accounts.errors import ValidationError

_BLOCK_END = re.compile(r"</(p|div|h[1-6]|li|tr|table|blockquote)>|<br\s*/?>", re.IGNORECASE)
_LINK = re.compile(r"<a\s[^>]*href=[\"']([^\"']+)[\"'][^>]*>(.*?)</a>", re.IGNORECASE | re.DOTALL)
_HIDDEN = re.compile(r"<(style|script|head)\b.*?</\1>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
# Everything str.splitlines() breaks on: a header may hold none of it.
_LINE_BREAKS = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]+")


def subject_line(subject: str) -> str:
    """The subject as mail clients show it: one line. A line break (typed, or brought by a merge
    variable such as an address) becomes a space, here at accept time, rather than an accepted message
    that the MIME builder refuses at delivery."""
    return _LINE_BREAKS.sub(" ", subject)


def auto_text(html: str) -> str:
    """Readable text from HTML: blocks become lines, links keep their address, entities are decoded."""
    text = _HIDDEN.sub("", html)
    text = _LINK.sub(
        lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(1) != m.group(2) else m.group(1), text
    )
    text = _BLOCK_END.sub("\n", text)
    text = html_lib.unescape(_TAG.sub("", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def inline_css(html: str) -> str:
    try:
        return css_inline.inline(html)
    except ValueError as exc:  # css_inline's InlineError: the CSS or HTML could not be read
        raise ValidationError(
            f"inline_css could not inline the message's styles: {exc}", field="html"
        ) from None
