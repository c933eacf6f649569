"""Which URLs a webhook may call: http or https only, and private addresses only where allowed.

The setting ``webhook_allowed_private_networks`` lists the private ranges a
webhook may reach; empty means any address (an office's receivers often sit
on its own network, even on this machine). Public addresses are always
allowed. The host is resolved and checked when a webhook is saved and again
before every delivery, so a name that later points inside is caught then.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> list[IPNetwork]:
    """The networks of the setting's text (comma-separated; bad parts are refused by the setting itself)."""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()]


def url_problem(url: str) -> str | None:
    """What is wrong with the form of ``url`` (scheme, host, port, credentials), or ``None``."""
    if not isinstance(url, str) or not url.strip():
        return "Enter the URL the events are sent to."
    if len(url) > 2000:
        return "A URL may have at most 2000 characters."
    if any(ch.isspace() for ch in url):
        return "A URL may not contain spaces."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "This is not a valid URL."
    if parts.scheme not in ("http", "https"):
        return "Only http:// and https:// URLs can receive webhooks."
    if not parts.hostname:
        return "The URL needs a host name, like https://example.com/hook."
    if parts.username or parts.password:
        return "Put no user name or password in the URL; receivers check the signature instead."
    if port == 0:
        return "The URL's port must be from 1 to 65535."
    return None


def _is_private(address: IPAddress) -> bool:
    return not address.is_global


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to; raises :class:`OSError` when it does not resolve."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def address_problem(url: str, allowed_private: str) -> str | None:
    """Resolve the URL's host and say why it may not be called (or ``None``): a host that does not
    resolve, an address that is never a receiver (unspecified, multicast), or a private address outside
    the allowed ranges when some are set."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        return f"The host {host!r} cannot be found ({getattr(exc, 'strerror', None) or exc})."
    networks = parse_networks(allowed_private)
    for address in addresses:
        if address.is_unspecified or address.is_multicast:
            return f"The host {host!r} points to {address}, which cannot receive webhooks."
        if networks and _is_private(address) and not any(address in net for net in networks):
            return (
                f"The host {host!r} points to the private address {address}, which is outside the networks "
                "webhooks may call (setting webhook_allowed_private_networks)."
            )
    return None
