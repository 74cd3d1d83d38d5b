"""The DKIM signer signs with `cryptography`'s RSA over exactly what dkimpy would sign: for the same message
and time its DKIM-Signature equals dkimpy's byte for byte (RSA PKCS#1 v1.5 is deterministic), and every
signature verifies with `dkim.verify` against the public key. No database: the key is an unsaved row."""

import base64
from email import policy
from email.message import EmailMessage
from unittest import mock

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailing.deliverability import signing
from mailing.models import DkimKey

NOW = 1_795_000_000


@pytest.fixture(scope="module")
def private_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def key(private_key, settings):
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return DkimKey(selector="rs20261124", private_key=signing._fernet().encrypt(pem).decode("ascii"))


def _dns(private_key):
    public = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dnsfunc(name, timeout=5):
        assert name == b"rs20261124._domainkey.shop.example."
        return record

    return dnsfunc


def _mime(**headers) -> EmailMessage:
    mime = EmailMessage(policy=policy.SMTP)
    mime["From"] = headers.pop("From", "The Shop <news@shop.example>")
    mime["To"] = headers.pop("To", "reader@example.test")
    mime["Subject"] = headers.pop("Subject", "Your receipt")
    mime["Date"] = "Tue, 24 Nov 2026 20:00:00 +0000"
    mime["Message-ID"] = "<abc123@mail.example>"
    for name, value in headers.items():
        mime[name.replace("_", "-")] = value
    return mime


def _plain() -> bytes:
    mime = _mime()
    mime.set_content("Thanks for your order.\n")
    return mime.as_bytes()


def _non_ascii() -> bytes:
    mime = _mime(From="Café Ümlaut <news@shop.example>", Subject="Grüße aus Köln ✓ — ünïcødé " * 3)
    mime.set_content("Schöne Grüße — ünïcødé\n\n\n")
    mime.add_alternative("<p>Schöne Grüße ✓</p>", subtype="html")
    return mime.as_bytes()


def _with_attachments() -> bytes:
    mime = _mime(
        List_Unsubscribe="<https://t.example/u/abc>", List_Unsubscribe_Post="List-Unsubscribe=One-Click"
    )
    mime.set_content("Your invoice is attached.")
    mime.add_alternative("<p>Your invoice is <b>attached</b>.</p>", subtype="html")
    mime.add_attachment(b"%PDF-1.4" + bytes(range(256)) * 40, maintype="application", subtype="pdf",
                        filename="invoice.pdf")  # fmt: skip
    mime.add_attachment("a,b\n1,2\n", subtype="csv", filename="lines.csv")
    return mime.as_bytes()


def _folded() -> bytes:
    # Long folded headers (a To list and a Reply-To over several lines), odd whitespace the relaxed
    # canonicalisation must compress, bare LF line endings, a repeated header and trailing blank lines.
    return (
        b"From:   The Shop  <news@shop.example>\n"
        b"To: " + b",\n\t".join(b"Reader %d <reader%d@example.test>" % (i, i) for i in range(12)) + b"\n"
        b"Reply-To: help@shop.example,\n  billing@shop.example  \n"
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=  \t and more\n"
        b"Received: from a\nReceived: from b\n"
        b"Date: Tue, 24 Nov 2026 20:00:00 +0000\n"
        b"Message-ID: <folded@mail.example>\n"
        b"\n"
        b"Line with trailing spaces   \n\tindented   line\n\n\n\n"
    )


MESSAGES = {"plain": _plain, "non-ascii": _non_ascii, "attachments": _with_attachments, "folded": _folded}


def _dkimpy(message: bytes, key: DkimKey, now: int = NOW) -> bytes:
    with mock.patch("dkim.time.time", return_value=now):
        return dkim.sign(message, key.selector.encode(), b"shop.example", signing._private_pem(key.private_key),
                         canonicalize=(b"relaxed", b"relaxed"), include_headers=signing.SIGNED_HEADERS)  # fmt: skip


@pytest.mark.parametrize("name", MESSAGES)
def test_the_signature_equals_dkimpys_byte_for_byte(name, key):
    message = MESSAGES[name]()
    signer = signing.Signer(domain="shop.example", key=key)
    ours = signer(message, now=NOW)
    assert ours == _dkimpy(message, key)
    assert ours.endswith(b"\r\n") and b" b=" in ours


@pytest.mark.parametrize("name", MESSAGES)
def test_every_signature_verifies_with_dkimpy(name, key, private_key):
    message = MESSAGES[name]()
    signer = signing.Signer(domain="shop.example", key=key)
    assert dkim.verify(signer(message) + message, dnsfunc=_dns(private_key))


def test_a_changed_body_or_signed_header_no_longer_verifies(key, private_key):
    message = _with_attachments()
    signature = signing.Signer(domain="shop.example", key=key)(message)
    assert not dkim.verify(signature + message.replace(b"attached.", b"attached!"), dnsfunc=_dns(private_key))
    assert not dkim.verify(
        signature + message.replace(b"Your receipt", b"Your refund"), dnsfunc=_dns(private_key)
    )


def test_a_signer_reused_over_a_batch_hashes_each_body_rightly(key, private_key):
    # given one signer for a batch whose messages share or differ in their bodies
    signer = signing.Signer(domain="shop.example", key=key)
    messages = [
        _plain(),
        _non_ascii(),
        _plain().replace(b"reader@", b"other@"),
        _with_attachments(),
        _plain(),
    ]
    # when each is signed by it, then each signature is dkimpy's and verifies
    for message in messages:
        signature = signer(message, now=NOW)
        assert signature == _dkimpy(message, key)
        assert dkim.verify(signature + message, dnsfunc=_dns(private_key))
    assert len(signer.body_hashes) == 3


def test_the_key_is_decrypted_and_parsed_once_per_process(key, private_key):
    signing._private_key.cache_clear()
    signing._private_pem.cache_clear()
    with mock.patch.object(signing, "_fernet", wraps=signing._fernet) as fernet:
        for _ in range(5):
            signing.Signer(domain="shop.example", key=key)(_plain())
    assert fernet.call_count == 1
    # a rotated key (another encrypted text) is its own entry, never the old key
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    rotated = DkimKey(selector="rs20261124", private_key=signing._fernet().encrypt(pem).decode("ascii"))
    signature = signing.Signer(domain="shop.example", key=rotated)(_plain())
    assert not dkim.verify(signature + _plain(), dnsfunc=_dns(private_key))
    assert dkim.verify(signature + _plain(), dnsfunc=_dns(other))


def _copy(to: str, shared: bytes) -> tuple[bytes, bytes]:
    """One recipient's copy as the delivery's MimeBuilder makes it: its own header lines before the part
    its batch shares."""
    head = f"To: {to}\r\nMessage-ID: <{to}@mail.example>\r\nList-Unsubscribe: <https://t.example/u/{to}>\r\n"
    return head.encode(), shared


def _shared(body: str) -> bytes:
    mime = EmailMessage(policy=policy.SMTP)
    mime["From"] = "The Shop <news@shop.example>"
    mime["Subject"] = "Your   receipt"
    mime["Date"] = "Tue, 24 Nov 2026 20:00:00 +0000"
    mime.set_content(body)
    mime.add_alternative(f"<p>{body}</p>", subtype="html")
    return mime.as_bytes()


def _body_hash_of(signature: bytes) -> bytes:
    return dkim.util.parse_tag_value(signature.split(b":", 1)[1].replace(b"\r\n", b""))[b"bh"]


def test_copies_sharing_a_part_each_sign_as_the_whole_message_and_verify(key, private_key):
    # given one shared part and three copies with different To, Message-ID and List-Unsubscribe
    signer = signing.Signer(domain="shop.example", key=key)
    shared = _shared("Thanks for your order.\n")
    copies = [_copy(to, shared) for to in ("a@example.test", "b@example.test", "c@example.test")]
    signatures = []
    for head, part in copies:
        # when each is signed as a copy, then it is dkimpy's signature of the whole message, and verifies
        signature = signer.sign_copy(head, part, now=NOW)
        assert signature == _dkimpy(head + part, key)
        assert dkim.verify(signature + head + part, dnsfunc=_dns(private_key))
        signatures.append(signature)
    # the shared part was parsed and its body hashed once; each copy has its own signature
    assert len(signer.shared) == 1
    assert len(set(signatures)) == 3 and len({_body_hash_of(signature) for signature in signatures}) == 1
    # and one copy's signature does not verify another copy
    head_b, _ = copies[1]
    assert not dkim.verify(signatures[0] + head_b + shared, dnsfunc=_dns(private_key))


def test_a_copy_with_its_own_body_gets_its_own_body_hash(key, private_key):
    # given copies whose bodies differ per recipient (tracked links, merge tags): each its own shared part
    signer = signing.Signer(domain="shop.example", key=key)
    first, second = _shared("Hello Ann, your link: https://t.example/c/1\n"), _shared("Hello Bob.\n")
    body_hashes = set()
    for head, part in (_copy("ann@example.test", first), _copy("bob@example.test", second)):
        signature = signer.sign_copy(head, part, now=NOW)
        assert signature == _dkimpy(head + part, key)
        assert dkim.verify(signature + head + part, dnsfunc=_dns(private_key))
        body_hashes.add(_body_hash_of(signature))
    assert len(signer.shared) == 2 and len(body_hashes) == 2
    # the first copy's body under the second's signature does not verify
    head, _ = _copy("bob@example.test", second)
    assert not dkim.verify(signer.sign_copy(head, second) + head + first, dnsfunc=_dns(private_key))


def test_copies_signed_across_seconds_carry_their_own_time(key, private_key):
    signer = signing.Signer(domain="shop.example", key=key)
    head, shared = _copy("a@example.test", _shared("Thanks.\n"))
    for now in (NOW, NOW + 1, NOW):
        assert signer.sign_copy(head, shared, now=now) == _dkimpy(head + shared, key, now)


@pytest.mark.parametrize(
    "head, shared",
    [
        (b"To: a@example.test", b"\r\nFrom: news@shop.example\r\n\r\nHi.\r\n"),  # head without its CRLF
        (b"To: a@example.test\r\n", b" continued\r\nFrom: news@shop.example\r\n\r\nHi.\r\n"),  # a folded To
        (b"To: a@example.test\r\n\r\n", b"From: news@shop.example\r\n\r\nHi.\r\n"),  # head ends the headers
        (b"To: a@example.test\nCc: b@example.test\n", b"From: news@shop.example\n\nHi.\n"),  # bare LF
        (b"", b"From: news@shop.example\r\nTo: a@example.test\r\n\r\nHi.\r\n"),  # no head at all
    ],
)
def test_a_copy_that_is_not_plain_header_lines_before_its_part_is_signed_whole(
    head, shared, key, private_key
):
    signer = signing.Signer(domain="shop.example", key=key)
    signature = signer.sign_copy(head, shared, now=NOW)
    assert signature == _dkimpy(head + shared, key)
    assert dkim.verify(signature + head + shared, dnsfunc=_dns(private_key))


@pytest.mark.parametrize(
    "signed_headers",
    [
        signing.SIGNED_HEADERS,
        [b"from", b"to", b"to", b"to", b"to", b"reply-to", b"from", b"x-absent", b"x-absent"],
    ],
    ids=["ours", "over-signed"],
)
def test_a_header_in_both_parts_or_signed_twice_is_chosen_as_dkimpy_chooses(signed_headers, key, private_key):
    # given a copy whose own head repeats a header its shared part has too (To), and a header list that
    # names some twice (over-signing, so none can be added) and one the message lacks
    shared = _shared("Thanks.\n").replace(b"Subject:", b"To: shared@example.test\r\nSubject:")
    head = b"To: mine@example.test\r\nReply-To: help@shop.example\r\nTo: second@example.test\r\n"
    with mock.patch.object(signing, "SIGNED_HEADERS", signed_headers):
        signature = signing.Signer(domain="shop.example", key=key).sign_copy(head, shared, now=NOW)
        assert signature == _dkimpy(head + shared, key)
    assert dkim.verify(signature + head + shared, dnsfunc=_dns(private_key))
