"""HTTPS to a checked address: the connection goes to the address we checked, and TLS still verifies the
certificate against the URL's name (sent as SNI), so pinning the address costs no security."""

import datetime
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailing.webhooks import transport

from .receiver import Receiver, start


def _certificate(name: str, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return cert_pem.decode(), server_tls


@pytest.fixture
def https_receiver(tmp_path, monkeypatch, dns_server, settings):
    """An HTTPS receiver on loopback whose certificate names hooks.example.test, which our resolver maps to
    127.0.0.1; the client trusts that certificate (and nothing else)."""
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    cert_pem, server_tls = _certificate("hooks.example.test", tmp_path)
    monkeypatch.setattr(transport, "_tls", lambda: ssl.create_default_context(cadata=cert_pem))
    dns_server.addresses["hooks.example.test"] = ["127.0.0.1"]
    dns_server.addresses["other.example.test"] = ["127.0.0.1"]
    got = Receiver()
    server = start(got, tls=server_tls)
    got.port = server.server_address[1]
    yield got
    server.shutdown()
    server.server_close()


def test_https_reaches_the_checked_address_and_verifies_the_name(https_receiver):
    outcome = transport.send("POST", f"https://hooks.example.test:{https_receiver.port}/hook", body=b"x=1")
    assert outcome.ok, outcome.error
    [request] = https_receiver.requests
    assert request.headers["Host"] == f"hooks.example.test:{https_receiver.port}"


def test_a_certificate_for_another_name_is_refused(https_receiver):
    outcome = transport.send("POST", f"https://other.example.test:{https_receiver.port}/hook", body=b"x=1")
    assert not outcome.ok and https_receiver.requests == []
    assert "certificate" in outcome.error.lower(), outcome.error
