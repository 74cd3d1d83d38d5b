"""Mandrill's webhook signature: base64(HMAC-SHA1(auth_key, url + each POST field name and value, in
sorted name order)), over the URL exactly as registered (query string and `user:pass@` included)."""

from __future__ import annotations

import base64
import hashlib
import hmac

# The key Mandrill signs its empty test POST with, before the webhook's own key has been shown to anyone.
TEST_KEY = "test-webhook"


def signature(*, key: str, url: str, fields: dict[str, str]) -> str:
    signed = url + "".join(name + fields[name] for name in sorted(fields))
    digest = hmac.new(key.encode("utf-8"), signed.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")
