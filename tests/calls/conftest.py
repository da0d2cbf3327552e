"""Fixtures of the calls tests: the real Janus from Debian, reachable on the loopback range.

Janus never offers a loopback interface as an ICE candidate, and aiortc never offers
127.0.0.1: media between them on one machine needs a loopback-range address on an
interface that is not `lo`. The fixture puts 127.0.0.2 on one end of a veth pair of
our own (as root; CI runs as root); traffic to it stays on this machine. Without
Janus or the interface, the tests fail and say what to install or run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from carcloud.media.janus import MediaMissing, find_janus
from tests.conftest import start_platform
from tests.platform import Platform

MEDIA_ADDRESS = "127.0.0.2"
LINK = "ccmedia0"
PEER = "ccmedia1"


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="session")
def media_address() -> str:
    """127.0.0.2 on a veth interface: where Janus and the test's peers exchange media."""
    if MEDIA_ADDRESS in _ip("-br", "addr", "show", "dev", LINK).stdout:
        return MEDIA_ADDRESS
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail(
            f"the media tests need {MEDIA_ADDRESS} on a non-loopback interface; as root run: "
            f"ip link add {LINK} type veth peer name {PEER} && "
            f"ip addr add {MEDIA_ADDRESS}/32 dev {LINK} && ip link set {LINK} up && "
            f"ip link set {PEER} up"
        )
    for args in (
        ("link", "add", LINK, "type", "veth", "peer", "name", PEER),
        ("addr", "add", f"{MEDIA_ADDRESS}/32", "dev", LINK),
        ("link", "set", LINK, "up"),
        ("link", "set", PEER, "up"),
    ):
        done = _ip(*args)
        if done.returncode != 0 and "File exists" not in done.stderr:
            pytest.fail(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return MEDIA_ADDRESS


@pytest.fixture(scope="session")
def janus_installed() -> None:
    """Fail (never skip) when Debian's janus package is missing."""
    try:
        find_janus()
    except MediaMissing as exc:
        pytest.fail(f"{exc} (scripts/test installs it when run as root)")


@pytest.fixture(scope="module")
def media_platform(
    tmp_path_factory: pytest.TempPathFactory, media_address: str, janus_installed: None
) -> Iterator[Platform]:
    """`carcloud up` with its Janus child, media on 127.0.0.2, rooms closing after 2 s empty."""
    running = start_platform(
        Path(tmp_path_factory.mktemp("carcloud-media")),
        "--media", "on",
        "--media-interfaces", media_address,
        "--media-ports", "42000-42199",
        "--room-close-after-s", "2",
        "--max-rooms-per-brand", "3",
    )  # fmt: skip
    yield running
    running.stop()
