"""Where a webhook may connect: never, unasked, into the deployment's own networks.

A subscriber chooses the URL; without this check an admin token (or a stolen one) could make
the scheduler POST to the cloud's metadata service, a database's HTTP port or an intranet
page — server-side request forgery. So every address a target resolves to is checked at the
moment of connecting, and the connection is made to the checked address itself (a name that
resolves to a public address for the check and a private one for the connection — DNS
rebinding — gets nowhere):

- a public (global unicast) address may be used;
- a loopback address only when the URL names loopback itself (``localhost``, ``127.0.0.1``,
  ``::1``): a sidecar receiver on the same host, never a public name that resolves there;
- anything else — private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16, the
  metadata services), shared (100.64/10), reserved, multicast, unspecified — only inside a
  network the operator allowed (``CAREPATH_WEBHOOK_ALLOWED_NETWORKS``).

Through a proxy from the environment the proxy connects, so there it is the proxy's policy.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import urllib.request
from dataclasses import dataclass
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


class BlockedAddress(OSError):
    """The target resolves only to addresses a webhook may not reach."""


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """``10.0.0.0/8, fd00::/8`` → networks; ValueError naming the entry that is not one."""
    networks = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not an IP network (like 10.0.0.0/8)") from None
    return tuple(networks)


def names_loopback(host: str) -> bool:
    """Whether the URL's host itself is loopback: ``localhost`` or a loopback literal."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    literal = ip_literal(host)
    return literal is not None and literal.is_loopback


def ip_literal(host: str) -> IPAddress | None:
    try:
        return _unmapped(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def _unmapped(address: IPAddress) -> IPAddress:
    """``::ffff:10.0.0.1`` is 10.0.0.1 (its IPv4 rules apply, not the IPv6 ones)."""
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """The networks, beyond the public internet, that the operator allows webhooks into."""

    allowed: tuple[IPNetwork, ...] = ()

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """None if ``host`` may be reached at ``address``; otherwise why not."""
        address = _unmapped(address)
        if any(address.version == n.version and address in n for n in self.allowed):
            return None
        if address.is_loopback:
            if names_loopback(host):
                return None
            return f"{host} resolves to {address}, a loopback address (name loopback itself)"
        if address.is_global and not address.is_multicast:
            return None
        return (
            f"{host} resolves to {address}, a private or reserved address "
            "(allow its network in CAREPATH_WEBHOOK_ALLOWED_NETWORKS)"
        )

    def connect(
        self, host: str, port: int, timeout: Any, source_address: Any = None
    ) -> socket.socket:
        """A socket to the first address of ``host`` that may be reached; BlockedAddress when
        none may (the connection goes to the checked address, not to a second lookup)."""
        refusals, last_error = [], None
        for family, kind, proto, _, sockaddr in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        ):
            why = self.refusal(host, ipaddress.ip_address(sockaddr[0].split("%")[0]))
            if why is not None:
                refusals.append(why)
                continue
            sock = socket.socket(family, kind, proto)
            try:
                if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                    sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                last_error = exc
        if last_error is not None:
            raise last_error
        raise BlockedAddress(refusals[0] if refusals else f"{host} resolves to no address")

    def opener(self) -> urllib.request.OpenerDirector:
        """An opener whose connections go only where this policy allows; no redirects."""
        policy = self

        def checked(address: tuple[str, int], timeout: Any, source: Any = None) -> socket.socket:
            return policy.connect(address[0], address[1], timeout, source)

        class Checked(http.client.HTTPConnection):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self._create_connection = checked  # the library sets its own here

        class CheckedTLS(http.client.HTTPSConnection):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self._create_connection = checked

        class HTTP(urllib.request.HTTPHandler):
            def http_open(self, req):  # type: ignore[no-untyped-def]
                return self.do_open(Checked, req)

        class HTTPS(urllib.request.HTTPSHandler):
            def https_open(self, req):  # type: ignore[no-untyped-def]
                return self.do_open(CheckedTLS, req, context=self._context)

        return urllib.request.build_opener(
            urllib.request.ProxyHandler({}), HTTP, HTTPS, NoRedirects
        )


PUBLIC_ONLY = AddressPolicy()  # public addresses, and loopback when the URL names it


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a 3xx is an answer like any other non-2xx: retried, never followed


def proxied(url: str) -> bool:
    """Whether the environment sends ``url`` through a proxy (which then makes the connection)."""
    parts = urllib.request.urlparse(url)
    proxies = urllib.request.getproxies()
    return parts.scheme in proxies and not urllib.request.proxy_bypass(parts.hostname or "")
