"""Free TCP ports for the servers carcloud starts itself (Janus) and for tests and benches.

A port from `bind(port 0)` lies in the kernel's ephemeral range, the range it also
takes the local ports of outgoing connections from. Between handing such a port out
and the server binding it, a client connection elsewhere on the machine (a test's
connection to PostgreSQL or NATS) can get the same port, and the server then fails
with "address already in use". CI saw exactly that. The ports here are picked at random
below the ephemeral range, where the kernel never puts an outgoing connection; a port
something listens on is skipped because it cannot be bound.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_EPHEMERAL_LOW = 32768  # Linux's default start of the range
LOWEST = 10_000  # below this lie the well-known and commonly configured ports
ATTEMPTS = 200

_rng = random.SystemRandom()
_given: set[int] = set()  # not handed out twice by one process, bound or not yet
_lock = threading.Lock()


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux's default where unknown)."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return DEFAULT_EPHEMERAL_LOW


def bindable(host: str, port: int) -> bool:
    """Whether a server could bind `host:port` now: nothing listens there (a closed
    connection's TIME_WAIT does not count; servers bind with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now, outside the ephemeral range where possible.

    Falls back to a port of the kernel's choosing when the range below is too small or
    full (a machine configured with a low ephemeral range).
    """
    low = ephemeral_low()
    with _lock:
        if low - LOWEST >= 1000:
            for _ in range(ATTEMPTS):
                port = _rng.randrange(LOWEST, low)
                if port not in _given and bindable(host, port):
                    _given.add(port)
                    return port
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        _given.add(port)
        return port
