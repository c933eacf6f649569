"""The addresses staff open: this machine's office-network (LAN) IPv4 addresses, and the URLs on them.

One place for the console's dashboard, its wizard and settings tab, ``appliance serve`` and the web
settings page: which listen addresses open the appliance to the office network, the URLs other
computers reach it at, and the words that warn that this traffic is plain HTTP.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping

import psutil

LOCAL_ONLY_HOST = "127.0.0.1"
NETWORK_HOST = "0.0.0.0"
_WILDCARDS = {"0.0.0.0", "", "::"}

# Interfaces of containers, virtual machines and bridges: other office computers cannot reach them.
_VIRTUAL_PREFIXES = (
    "docker",
    "br-",
    "veth",
    "virbr",
    "vmnet",
    "vboxnet",
    "lxcbr",
    "lxdbr",
    "cni",
    "flannel",
    "podman",
    "cali",
    "ifb",
    "dummy",
)

HTTPS_WARNING = (
    "Open to the office network, the appliance speaks plain HTTP: passwords and records cross the network "
    'unencrypted. Put HTTPS in front of it with a reverse proxy (the README\'s "HTTPS for the office network" '
    "shows a Caddy example) and set the trusted reverse proxy address."
)


def _usable(address: str) -> bool:
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast)


def _virtual(name: str) -> bool:
    return name.lower().startswith(_VIRTUAL_PREFIXES)


def lan_addresses(
    interfaces: Mapping[str, Iterable[tuple[int, str]]] | None = None,
    up: Mapping[str, bool] | None = None,
) -> list[str]:
    """This machine's IPv4 addresses other office computers can reach, in interface order.

    Skips loopback, link-local (169.254/16), interfaces that are down and container or VM bridges
    (docker0, br-…, veth…, virbr…). ``interfaces`` (name -> ``(family, address)`` pairs) and ``up``
    (name -> whether it is up) default to what psutil reads from this machine.
    """
    if interfaces is None:
        interfaces = {
            name: [(int(a.family), a.address) for a in addrs] for name, addrs in psutil.net_if_addrs().items()
        }
        if up is None:
            up = {name: stats.isup for name, stats in psutil.net_if_stats().items()}
    found: list[str] = []
    for name, pairs in interfaces.items():
        if _virtual(name) or (up is not None and not up.get(name, True)):
            continue
        for family, address in pairs:
            if family == socket.AF_INET and _usable(address) and address not in found:
                found.append(address)
    return found


def is_open_to_network(host: str) -> bool:
    """Whether listening on ``host`` lets other computers reach the appliance (a wildcard or a LAN address)."""
    host = host.strip()
    if host in _WILDCARDS:
        return True
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() != "localhost"


def staff_urls(host: str, port: int, addresses: Iterable[str] | None = None) -> list[str]:
    """The URLs staff on other computers open: one per LAN address for a wildcard ``host``, ``host``
    itself when it is a LAN address, none when the appliance listens on this computer only."""
    host = host.strip()
    if not is_open_to_network(host):
        return []
    if host in _WILDCARDS:
        return [f"http://{address}:{port}/" for address in (lan_addresses() if addresses is None else addresses)]
    shown = f"[{host}]" if ":" in host else host
    return [f"http://{shown}:{port}/"]
