"""Which addresses carcloud may send requests to: by default public ones only (no SSRF).

Used by webhook deliveries and calendar syncs. A webhook or calendar URL is chosen by
an API caller, and the platform sends requests to it
from inside the operator's network; without a check, a brand key could make the
platform POST to its database, its NATS monitoring port or a cloud metadata
service. Before each attempt the host is resolved and every address it resolves
to must be public; loopback, private, link-local, multicast, reserved and
unspecified addresses are refused unless the operator allows them
(`CARCLOUD_WEBHOOK_ALLOW_PRIVATE=1`, for a test platform or the demo).

Limit: the HTTP client resolves the name again when it connects, so a DNS name
that changes its answer between the two (DNS rebinding) is not caught here; an
operator who must rule that out sends webhooks through an egress proxy.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from carcloud.errors import ValidationError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedTarget(ValidationError):
    """A webhook URL whose host is not a public address (and private ones are not allowed)."""


def is_public(address: Address) -> bool:
    """An address on the public internet."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


def _origin(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port, parts.path or "/"


@dataclass(frozen=True)
class TargetPolicy:
    """Whether private, loopback and link-local addresses may receive requests: all of
    them (`allow_private`), or only URLs under one of the `allowed` prefixes (scheme,
    host and port equal, path under the prefix's path), e.g. the demo's own calendar feed."""

    allow_private: bool = False
    allowed: tuple[str, ...] = ()

    def permits(self, url: str) -> bool:
        """The URL is under one of the `allowed` prefixes."""
        scheme, host, port, path = _origin(url)
        for prefix in self.allowed:
            p_scheme, p_host, p_port, p_path = _origin(prefix)
            under = path == p_path or path.startswith(p_path.rstrip("/") + "/")
            if (scheme, host, port) == (p_scheme, p_host, p_port) and host and under:
                return True
        return False

    async def check(self, url: str) -> None:
        """RefusedTarget if the URL's host is or resolves to a non-public address.

        OSError if the name does not resolve (a failed attempt, tried again later).
        """
        if self.allow_private or self.permits(url):
            return
        host = urlsplit(url).hostname or ""
        for address in await _addresses(host):
            if not is_public(address):
                raise RefusedTarget(
                    f"{host} is {address}, not a public address; set "
                    "CARCLOUD_WEBHOOK_ALLOW_PRIVATE=1 to deliver to private networks"
                )


async def _addresses(host: str) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    # A name that does not resolve now (OSError) is a failed attempt, retried later.
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
