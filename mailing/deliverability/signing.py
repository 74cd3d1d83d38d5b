"""DKIM: a key pair per sending domain (RSA 2048, the private key encrypted at rest), rotation by
selector, and the signature every outgoing message gets in the worker.

The encryption key comes from DKIM_ENCRYPTION_KEY (a Fernet key); without one it is derived from
SECRET_KEY, which ties the DKIM keys to it: production should set its own, so rotating SECRET_KEY does not
make every domain's key unreadable.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from functools import lru_cache

import dkim
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from django.conf import settings
from django.utils import timezone
from dkim.canonicalization import CanonicalizationPolicy

from accounts.models import Account

from ..models import DkimKey, SenderDomain

KEY_BITS = 2048
# RFC 6376 §5.4.1 and §8: sign what identifies and describes the message, including headers that are
# absent (signing an absent From-like header stops one being added later).
SIGNED_HEADERS = [
    b"from", b"reply-to", b"subject", b"date", b"to", b"cc", b"message-id", b"mime-version",
    b"content-type", b"content-transfer-encoding", b"in-reply-to", b"references", b"list-unsubscribe",
    b"list-unsubscribe-post",
]  # fmt: skip


def _fernet() -> Fernet:
    configured = getattr(settings, "DKIM_ENCRYPTION_KEY", "")
    key = (
        configured.encode()
        if configured
        else base64.urlsafe_b64encode(hashlib.sha256(b"dkim-keys:" + settings.SECRET_KEY.encode()).digest())
    )
    return Fernet(key)


def new_selector(now=None) -> str:
    """Selectors name their key's birth (rs20261124a), so a rotation gets a new one and old ones sort."""
    now = now or timezone.now()
    return f"rs{now:%Y%m%d%H%M%S}"


def unused_selector(domain: SenderDomain, now=None) -> str:
    """A selector this domain has not used: a rotation within the same second as the last key (a double
    click, a retried request) gets a letter after it. Call with the domain's row locked."""
    base = new_selector(now)
    taken = set(domain.dkim_keys.filter(selector__startswith=base).values_list("selector", flat=True))
    candidates = [base, *(f"{base}{letter}" for letter in "abcdefghijklmnopqrstuvwxyz")]
    return next((c for c in candidates if c not in taken), f"{base}{secrets.token_hex(4)}")


def generate_key(domain: SenderDomain, *, selector: str | None = None) -> DkimKey:
    """Make and store a new key pair for `domain` (the caller's transaction)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKey.objects.create(
        domain=domain,
        selector=selector or new_selector(),
        private_key=_fernet().encrypt(pem).decode("ascii"),
        public_key=base64.b64encode(public).decode("ascii"),
    )


def active_key(domain: SenderDomain) -> DkimKey | None:
    """The key that signs: the newest one whose record a check has found. An unpublished key never
    signs (receivers could not verify it); after a rotation the old key signs until the new one is seen."""
    return (
        domain.dkim_keys.filter(retired_at__isnull=True, published_at__isnull=False)
        .order_by("-created_at", "-pk")
        .first()
    )


def newest_key(domain: SenderDomain) -> DkimKey | None:
    """The key whose record the domain page asks to publish."""
    return domain.dkim_keys.filter(retired_at__isnull=True).order_by("-created_at", "-pk").first()


def mark_published(key: DkimKey) -> None:
    """The check found `key`'s record: it signs from now on, and the older keys retire."""
    now = timezone.now()
    if key.published_at is None:
        key.published_at = now
        key.save(update_fields=["published_at"])
    key.domain.dkim_keys.filter(retired_at__isnull=True, created_at__lt=key.created_at).update(retired_at=now)


@lru_cache(maxsize=256)
def _private_pem(encrypted: str) -> bytes:
    # Decrypting costs less than signing, but a batch signs with few keys: keep them for the process.
    return _fernet().decrypt(encrypted.encode("ascii"))


@lru_cache(maxsize=256)
def _private_key(encrypted: str) -> rsa.RSAPrivateKey:
    """The parsed key, once per key per process: a worker decrypts and parses a domain's key the first
    time it signs with it, not for every message. Keyed by the encrypted text, so a rotated key is a new
    entry and a retired one ages out."""
    return serialization.load_pem_private_key(_private_pem(encrypted), password=None)


RELAXED = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
_HEADER_NAME = b"DKIM-Signature"
_PKCS1_V15 = padding.PKCS1v15()
_PREHASHED_SHA256 = utils.Prehashed(hashes.SHA256())


class Signer:
    """Signs messages from one domain with one key, as dkimpy's `dkim.sign(..., canonicalize=(relaxed,
    relaxed), include_headers=SIGNED_HEADERS)` would, byte for byte, but with `cryptography`'s RSA
    (OpenSSL, ~0.3 ms) instead of dkimpy's own (pure Python, ~7 ms).

    dkimpy still does what it is trusted for: parsing the message (`rfc822_parse`), canonicalising
    headers and body, selecting the signed headers (`select_headers`) and folding the DKIM-Signature
    (`fold`); the steps below follow `DKIM.sign`, `DomainSigner.gen_header` and `hash_headers` (dkimpy
    1.1.8, pinned) in order, only the RSA step differs. tests/mailing/test_dkim_signer.py proves it: the b=
    values equal dkimpy's for the same message and time, and every signature verifies with `dkim.verify`.

    A batch's copies share everything but their first few headers (mailing/mime.py's MimeBuilder), so
    `sign_copy` parses, canonicalises and hashes that shared part once for the last few seen: a copy
    costs the RSA signature and its own few headers. A whole message signed alone keeps its body hash
    for the last few bodies.
    """

    BODY_HASHES_KEPT = 4  # bodies kept as keys: each may hold large attachments
    SHARED_KEPT = 4  # shared parts kept, likewise
    TAGS_KEPT = 4  # one per second and body a batch spans

    def __init__(self, *, domain: str, key: DkimKey) -> None:
        self.domain = domain.encode("idna")
        self.selector = key.selector.encode()
        self.private_key = _private_key(key.private_key)
        self.body_hashes: dict[bytes, bytes] = {}
        self.shared: dict[bytes, tuple[dict[bytes, list[tuple[bytes, bytes]]], bytes]] = {}
        self.tags: dict[tuple[bytes, bytes], tuple[list[tuple[bytes, bytes]], tuple[bytes, bytes]]] = {}

    def __call__(self, message: bytes, *, now: float | None = None) -> bytes:
        """The DKIM-Signature header line (with its CRLF) for `message`, to put in front of it."""
        headers, body = dkim.rfc822_parse(message)
        signed = dkim.select_headers(RELAXED.canonicalize_headers(headers), SIGNED_HEADERS)
        return self._signature(signed, self._body_hash(body), now)

    def sign_copy(self, head: bytes, shared: bytes, *, now: float | None = None) -> bytes:
        """`self(head + shared)`, for `head`, whole header lines naming one recipient's copy, in front of
        `shared`, the rest of the message, which the batch's other copies share: its headers are
        canonicalised and its body hashed once. A head that is not plain header lines ending in CRLF
        (or a shared part that would continue its last header) is signed as one message."""
        if not _whole_header_lines(head) or shared[:1] in (b" ", b"\t"):
            return self(head + shared, now=now)
        found = self.shared.get(shared)
        if found is None:
            headers, body = dkim.rfc822_parse(shared)
            found = (_newest_first(RELAXED.canonicalize_headers(headers)), _body_hash(body))
            _keep(self.shared, shared, found, self.SHARED_KEPT)
        shared_headers, body_hash = found
        head_headers = _newest_first(RELAXED.canonicalize_headers(dkim.rfc822_parse(head)[0]) if head else [])
        return self._signature(_selected(head_headers, shared_headers), body_hash, now)

    def _signature(self, signed: list[tuple[bytes, bytes]], body_hash: bytes, now: float | None) -> bytes:
        """The DKIM-Signature over `signed`, the canonical header fields SIGNED_HEADERS chose, in order."""
        timestamp = str(int(time.time() if now is None else now)).encode("ascii")
        fields, signature_header = self._tags(timestamp, body_hash)
        # dkim.hash_headers: the signed headers, then the DKIM-Signature without b= and without its
        # final CRLF.
        digest = hashlib.sha256()
        for name, value in [*signed, signature_header]:
            digest.update(name)
            digest.update(b":")
            digest.update(value)
        signature = self.private_key.sign(digest.digest(), _PKCS1_V15, _PREHASHED_SHA256)
        value = b"; ".join(b"=".join(f) for f in [*fields, (b"b", base64.b64encode(signature))]) + b"\r\n"
        return _HEADER_NAME + b": " + dkim.fold(value, namelen=len(_HEADER_NAME), linesep=b"\r\n")

    def _tags(self, timestamp: bytes, body_hash: bytes):
        """The tags before b=, and the DKIM-Signature as hashed (canonical, b= empty): the same for every
        message signed in the same second with the same body."""
        found = self.tags.get((timestamp, body_hash))
        if found is None:
            fields = [
                (b"v", b"1"),
                (b"a", b"rsa-sha256"),
                (b"c", b"relaxed/relaxed"),
                (b"d", self.domain),
                (b"i", b"@" + self.domain),
                (b"q", b"dns/txt"),
                (b"s", self.selector),
                (b"t", timestamp),
                (b"h", b" : ".join(SIGNED_HEADERS)),
                (b"bh", body_hash),
            ]
            # as dkimpy: b= folds onto its own line, so adding the value refolds nothing
            value = dkim.fold(
                b"; ".join(b"=".join(f) for f in [*fields, (b"b", b"0" * 60)]),
                namelen=len(_HEADER_NAME),
                linesep=b"\r\n",
            )
            unsigned = b" " + dkim.RE_BTAG.sub(b"\\1", value)
            [(name, canonical)] = RELAXED.canonicalize_headers(
                [(_HEADER_NAME, dkim.RE_BTAG.sub(b"\\1", unsigned))]
            )
            found = (fields, (name, canonical.rstrip()))
            _keep(self.tags, (timestamp, body_hash), found, self.TAGS_KEPT)
        return found

    def _body_hash(self, body: bytes) -> bytes:
        found = self.body_hashes.get(body)
        if found is None:
            found = _body_hash(body)
            _keep(self.body_hashes, body, found, self.BODY_HASHES_KEPT)
        return found


def _body_hash(body: bytes) -> bytes:
    return base64.b64encode(hashlib.sha256(RELAXED.canonicalize_body(body)).digest())


def _keep(cache: dict, key, value, kept: int) -> None:
    """Add to a small cache that forgets its oldest entry."""
    if len(cache) >= kept:
        cache.pop(next(iter(cache)))
    cache[key] = value


def _newest_first(canonical: list[tuple[bytes, bytes]]) -> dict[bytes, list[tuple[bytes, bytes]]]:
    """Canonical header fields by (lowercase) name, the last in the message first."""
    by_name: dict[bytes, list[tuple[bytes, bytes]]] = {}
    for field in reversed(canonical):
        by_name.setdefault(field[0], []).append(field)
    return by_name


def _selected(head: dict, shared: dict) -> list[tuple[bytes, bytes]]:
    """`dkim.select_headers(head + shared, SIGNED_HEADERS)` from both parts' fields by name: each name
    of SIGNED_HEADERS takes the last field of that name not yet taken, from the bottom of the message
    (the shared part) up."""
    taken: dict[bytes, int] = {}
    selected = []
    for name in SIGNED_HEADERS:
        index = taken.get(name, 0)
        below, above = shared.get(name, ()), head.get(name, ())
        if index < len(below):
            selected.append(below[index])
        elif index - len(below) < len(above):
            selected.append(above[index - len(below)])
        else:
            continue
        taken[name] = index + 1
    return selected


def _whole_header_lines(head: bytes) -> bool:
    """Header lines each ending in CRLF, none empty (none ends the header section), or nothing."""
    return not head or (
        head.endswith(b"\r\n")
        and not head.startswith(b"\r\n")
        and b"\r\n\r\n" not in head
        and head.count(b"\n") == head.count(b"\r\n")
    )


def sign(message: bytes, *, domain: str, key: DkimKey) -> bytes:
    """The DKIM-Signature header line (with its CRLF) for `message`, to put in front of it. To sign many
    messages with one key, make one `Signer` and call it."""
    return Signer(domain=domain, key=key)(message)


def signing_key_for(account: Account, from_email: str) -> tuple[str, DkimKey] | None:
    """The domain and key that sign mail `account` sends from `from_email`: the verified domain it may
    use that is the From domain or its parent (its own, or its master's shared one), or None."""
    from_domain = from_email.rsplit("@", 1)[-1].strip().lower().rstrip(".")
    labels = from_domain.split(".")
    # Only the From domain and its parents are read, not every domain an agency shares.
    candidates = [".".join(labels[i:]) for i in range(len(labels))]
    usable = SenderDomain.objects.usable_by(account).filter(domain__in=candidates).only("pk", "domain")
    for sender_domain in sorted(usable, key=lambda d: -len(d.domain)):  # the most specific domain signs
        key = active_key(sender_domain)
        return (sender_domain.domain, key) if key else None
    return None
