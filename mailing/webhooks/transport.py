"""The one way out to a customer's URL. A webhook URL is chosen by a tenant, so a POST to it must not
reach our own network (SSRF): the host is resolved here, every address it resolves to is checked, and the
connection goes to a checked address (the Host header and TLS SNI keep the name), so a DNS answer that
changes between the check and the connect (rebinding) changes nothing. Timeouts bound every call,
redirects are never followed (a 3xx is a failure), and at most WEBHOOK_MAX_RESPONSE_BYTES of an answer
is read. WEBHOOK_ALLOW_PRIVATE_ADDRESSES (off in production) lets loopback through for tests and
development; nothing lets link-local, multicast or reserved addresses through."""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import unquote

import dns.exception
import dns.resolver
import httpx
from django.conf import settings

from accounts.errors import ValidationError

URL_MAX_LENGTH = 2000
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeAddress(ValidationError):
    """The URL's host is, or resolves to, an address webhooks may not reach."""


@dataclass(frozen=True)
class Target:
    """A webhook URL taken apart: what is connected to, and what the receiver must see."""

    url: httpx.URL
    host: str
    port: int
    username: str
    password: str


@dataclass(frozen=True)
class Outcome:
    status: int | None  # the HTTP status, None when there was no answer
    error: str  # empty when the receiver took it (2xx)
    duration_ms: int

    @property
    def ok(self) -> bool:
        return not self.error


def parse_url(url: str) -> Target:
    """Check a webhook URL's form (not its address). Raises ValidationError naming the problem."""
    url = (url or "").strip()
    if not url:
        raise ValidationError("Enter the URL to POST events to.", field="url")
    if len(url) > URL_MAX_LENGTH:
        raise ValidationError(f"The URL is longer than {URL_MAX_LENGTH} characters.", field="url")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        raise ValidationError(f"{url} is not a valid URL.", field="url") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValidationError("Enter an http:// or https:// URL with a host name.", field="url")
    if parsed.fragment:
        raise ValidationError("A webhook URL cannot have a #fragment.", field="url")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return Target(
        url=parsed, host=parsed.host, port=port,
        username=unquote(parsed.username), password=unquote(parsed.password),
    )  # fmt: skip


def refusal_for(address: IPAddress) -> str | None:
    """Why webhooks may not reach `address`, or None if they may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return refusal_for(address.ipv4_mapped)
    if address.is_loopback:
        return None if settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES else "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified or address.is_reserved:
        return "a reserved address"
    if address.is_private or not address.is_global:
        return "a private address"
    return None


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to: through the resolver in settings when one is set (as domain checks
    do), else the system's (which reads /etc/hosts)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        if settings.DNS_RESOLVER_NAMESERVERS:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = settings.DNS_RESOLVER_NAMESERVERS
            resolver.port = settings.DNS_RESOLVER_PORT
            resolver.lifetime = settings.DNS_RESOLVER_TIMEOUT
            found = []
            for kind in ("A", "AAAA"):
                try:
                    found += [ipaddress.ip_address(r.to_text()) for r in resolver.resolve(host, kind)]
                except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                    continue
            return found
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    except (OSError, dns.exception.DNSException):
        return []


def checked_addresses(target: Target) -> list[IPAddress]:
    """The addresses to connect to. Raises UnsafeAddress if any is refused (one bad answer is enough:
    which one a connection would use is not ours to know), ValidationError if there are none."""
    addresses = _resolve(target.host, target.port)
    if not addresses:
        raise ValidationError(f"{target.host} does not resolve to any address.", field="url")
    for address in addresses:
        reason = refusal_for(address)
        if reason:
            shown = target.host if target.host == str(address) else f"{target.host} resolves to {address},"
            raise UnsafeAddress(
                f"{shown} {reason}: webhooks can only be sent to public addresses.", field="url"
            )
    return addresses


def _read_bounded(response: httpx.Response) -> None:
    """Read (and drop) at most WEBHOOK_MAX_RESPONSE_BYTES of the answer: receivers owe us only a status."""
    seen = 0
    for chunk in response.iter_raw():
        seen += len(chunk)
        if seen >= settings.WEBHOOK_MAX_RESPONSE_BYTES:
            return


@functools.cache
def _tls() -> ssl.SSLContext:
    """One verifying TLS context for the process: loading the CA bundle costs ~90 ms, a POST far less."""
    return ssl.create_default_context()


def send(method: str, url: str, *, body: bytes = b"", headers: dict[str, str] | None = None) -> Outcome:
    """One request to a webhook URL. Never raises for what the receiver does; an unsafe or unresolvable
    URL is an Outcome with its reason too (a URL that was fine when added may resolve elsewhere now)."""
    started = time.monotonic()

    def outcome(status: int | None, error: str) -> Outcome:
        return Outcome(status, error[:500], int((time.monotonic() - started) * 1000))

    try:
        target = parse_url(url)
        addresses = checked_addresses(target)
    except ValidationError as exc:
        return outcome(None, exc.message)
    headers = {"User-Agent": "Mandrill-Webhook/1.0 (compatible)", **(headers or {})}
    netloc = target.url.netloc.decode("ascii")
    auth = (target.username, target.password) if target.username or target.password else None
    timeout = httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS)
    error = ""
    with httpx.Client(
        timeout=timeout, follow_redirects=False, trust_env=False, auth=auth, verify=_tls()
    ) as client:
        for address in addresses:
            connect_to = target.url.copy_with(
                host=str(address), port=target.port, username=None, password=None
            )
            request = client.build_request(
                method, connect_to, content=body or None, headers={**headers, "Host": netloc},
                extensions={"sni_hostname": target.host} if target.url.scheme == "https" else {},
            )  # fmt: skip
            try:
                response = client.send(request, stream=True)
                try:
                    _read_bounded(response)
                finally:
                    response.close()
            except httpx.ConnectError as exc:
                error = (
                    f"Could not connect to {target.host}: {exc}"
                    if str(exc)
                    else f"Could not connect to {target.host}"
                )
                continue  # another checked address may answer
            except httpx.TimeoutException:
                return outcome(None, f"Timed out after {settings.WEBHOOK_TIMEOUT_SECONDS:g} s")
            except httpx.HTTPError as exc:
                return outcome(None, f"The request failed: {exc}")
            if response.is_redirect:
                return outcome(
                    response.status_code, f"Answered {response.status_code} (a redirect; not followed)"
                )
            if not response.is_success:
                return outcome(response.status_code, f"Answered {response.status_code}")
            return outcome(response.status_code, "")
    return outcome(None, error)
