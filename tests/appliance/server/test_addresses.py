"""The addresses staff open: this machine's office-network IPv4 addresses and the URLs on them."""

from __future__ import annotations

import ipaddress
import socket

from appliance.server.addresses import is_open_to_network, lan_addresses, staff_urls

V4, V6 = int(socket.AF_INET), int(socket.AF_INET6)
MACHINE = {
    "lo": [(V4, "127.0.0.1"), (V6, "::1")],
    "eth0": [(V4, "192.168.1.20"), (V6, "fe80::1%eth0"), (V6, "fd00::2")],
    "wlan0": [(V4, "169.254.10.3"), (V4, "10.0.0.7")],
    "docker0": [(V4, "172.17.0.1")],
    "br-3f2a": [(V4, "172.18.0.1")],
    "veth12ab": [(V4, "172.17.0.5")],
    "virbr0": [(V4, "192.168.122.1")],
    "eth1": [(V4, "192.168.5.5")],
}


def test_only_reachable_ipv4_addresses_of_real_interfaces_are_offered():
    found = lan_addresses(MACHINE, up={"eth1": False})
    assert found == ["192.168.1.20", "10.0.0.7"]  # no loopback, link-local, bridge, IPv6 or down interface


def test_this_machines_addresses_are_never_loopback_or_link_local():
    for address in lan_addresses():
        ip = ipaddress.IPv4Address(address)
        assert not ip.is_loopback and not ip.is_link_local


def test_staff_urls_follow_the_listen_address():
    assert staff_urls("127.0.0.1", 8765, ["192.168.1.20"]) == []
    assert staff_urls("localhost", 8765, ["192.168.1.20"]) == []
    assert staff_urls("::1", 8765, ["192.168.1.20"]) == []
    assert staff_urls("0.0.0.0", 8765, ["192.168.1.20", "10.0.0.7"]) == [
        "http://192.168.1.20:8765/",
        "http://10.0.0.7:8765/",
    ]
    assert staff_urls("192.168.1.20", 9000) == ["http://192.168.1.20:9000/"]
    assert staff_urls("0.0.0.0", 8765) == [f"http://{a}:8765/" for a in lan_addresses()]


def test_which_listen_addresses_open_the_appliance_to_the_network():
    assert not any(is_open_to_network(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost", " 127.0.0.1 "))
    assert all(is_open_to_network(h) for h in ("0.0.0.0", "", "::", "192.168.1.20", "office-pc.lan"))
