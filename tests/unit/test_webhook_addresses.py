"""Webhooks never reach into the deployment's own networks unasked (server-side request forgery):
an address in the URL is checked when the subscription is made, and every address a name resolves
to is checked when the sender connects — to the checked address itself, so DNS rebinding fails."""

from __future__ import annotations

import http.server
import ipaddress
import socket
import threading
from collections.abc import Iterator

import pytest

from carepath import webhooks
from carepath.settings import SettingsError
from pathway.errors import InvalidRequest
from scheduler.deliveries import http_post
from scheduler.webhook_addresses import PUBLIC_ONLY, AddressPolicy, BlockedAddress, parse_networks


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
     "224.0.0.1", "240.0.0.1", "fd00::1", "fe80::1", "::", "ff02::1", "::ffff:10.0.0.1",
     "::ffff:169.254.169.254"],
)  # fmt: skip
def test_private_reserved_and_link_local_addresses_are_refused(address: str) -> None:
    why = PUBLIC_ONLY.refusal("hooks.example.org", ipaddress.ip_address(address))
    assert why is not None and "private or reserved" in why


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert PUBLIC_ONLY.refusal("hooks.example.org", ipaddress.ip_address(address)) is None


def test_loopback_only_when_the_url_names_it() -> None:
    here = ipaddress.ip_address("127.0.0.1")
    assert PUBLIC_ONLY.refusal("localhost", here) is None
    assert PUBLIC_ONLY.refusal("127.0.0.1", here) is None
    assert PUBLIC_ONLY.refusal("::1", ipaddress.ip_address("::1")) is None
    why = PUBLIC_ONLY.refusal("hooks.example.org", here)
    assert why is not None and "loopback" in why
    mapped = PUBLIC_ONLY.refusal("hooks.example.org", ipaddress.ip_address("::ffff:127.0.0.1"))
    assert mapped is not None and "loopback" in mapped


def test_an_allowed_network_lets_its_addresses_in_and_no_others() -> None:
    policy = AddressPolicy(parse_networks("10.20.0.0/16, fd12::/16"))
    assert policy.refusal("intranet.example", ipaddress.ip_address("10.20.3.4")) is None
    assert policy.refusal("intranet.example", ipaddress.ip_address("fd12::9")) is None
    assert policy.refusal("intranet.example", ipaddress.ip_address("10.21.0.1")) is not None


def test_a_bad_network_is_named() -> None:
    with pytest.raises(ValueError, match="'10.0.0.0/33' is not an IP network"):
        parse_networks("10.0.0.0/8, 10.0.0.0/33")


@pytest.mark.parametrize(
    "url",
    ["https://10.0.0.1/in", "https://169.254.169.254/latest/meta-data", "https://[fd00::1]/in",
     "https://[::ffff:192.168.0.1]/in", "https://0.0.0.0/in"],
)  # fmt: skip
def test_subscribing_to_a_private_address_is_refused_naming_the_field(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(webhooks.ALLOWED_NETWORKS, raising=False)
    assert webhooks.target_refusal(url) is not None
    with pytest.raises(InvalidRequest) as refused:
        webhooks.check_url(url)
    assert refused.value.field == "url"
    assert "CAREPATH_WEBHOOK_ALLOWED_NETWORKS" in str(refused.value)


def test_the_operator_can_allow_an_intranet_receiver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(webhooks.ALLOWED_NETWORKS, "10.0.0.0/8")
    assert webhooks.target_refusal("https://10.1.2.3/in") is None
    assert webhooks.policy_from_env().addresses.allowed == (ipaddress.ip_network("10.0.0.0/8"),)
    assert webhooks.target_refusal("https://192.168.0.1/in") is not None


def test_a_bad_allowed_networks_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(webhooks.ALLOWED_NETWORKS, "intranet")
    with pytest.raises(SettingsError, match="CAREPATH_WEBHOOK_ALLOWED_NETWORKS: 'intranet'"):
        webhooks.policy_from_env()


# The sender: what a name resolves to is checked when connecting ---------------------------


class _Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the standard library's name
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def resolves_to_loopback(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``rebind.example`` resolves to 127.0.0.1 (as a rebinding DNS server would make it)."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        looked_up.append(host)
        return real("127.0.0.1" if host == "rebind.example" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return looked_up


def test_a_named_loopback_receiver_is_reached(receiver: int) -> None:
    assert http_post(f"http://127.0.0.1:{receiver}/in", b"{}", {}, 5.0).status == 204


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_name_that_resolves_into_loopback_is_not_connected_to(
    scheme: str, receiver: int, resolves_to_loopback: list[str]
) -> None:
    answer = http_post(f"{scheme}://rebind.example:{receiver}/in", b"{}", {}, 5.0)
    assert answer.status is None
    assert "rebind.example resolves to 127.0.0.1, a loopback address" in (answer.error or "")
    assert resolves_to_loopback == ["rebind.example"]  # one lookup: the one that was checked


def test_the_connection_goes_to_the_checked_address(
    receiver: int, resolves_to_loopback: list[str]
) -> None:
    """Allowed into 127.0.0.0/8, the same name reaches the receiver: the socket was opened to
    the address that passed the check, with no second lookup in between."""
    policy = AddressPolicy(parse_networks("127.0.0.0/8"))
    answer = http_post(f"http://rebind.example:{receiver}/in", b"{}", {}, 5.0, policy)
    assert answer.status == 204
    assert resolves_to_loopback == ["rebind.example"]


def test_connect_refuses_before_opening_any_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.9.8.7", 443))],
    )
    opened: list[object] = []
    monkeypatch.setattr(socket, "socket", lambda *a: opened.append(a))
    with pytest.raises(BlockedAddress, match="10.9.8.7, a private or reserved address"):
        PUBLIC_ONLY.connect("hooks.example.org", 443, 5.0)
    assert opened == []
