"""Free ports for child servers and tests come from below the kernel's ephemeral range,
where no outgoing connection can take them before the server binds them."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from carcloud.runtime import ports
from carcloud.runtime.ports import bindable, ephemeral_low, free_port


def test_ports_are_below_the_ephemeral_range_bindable_and_never_given_twice() -> None:
    low = ephemeral_low()
    given = [free_port() for _ in range(300)]
    assert len(set(given)) == len(given)
    assert all(ports.LOWEST <= port < low for port in given)
    assert all(bindable("127.0.0.1", port) for port in given)


def test_a_port_something_listens_on_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    free = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", free_port()))
        busy.listen()
        taken = busy.getsockname()[1]
        # Forgotten as given, so only the listener can make it skip `taken`.
        monkeypatch.setattr(ports, "_given", set())
        picks = iter([taken, free])
        monkeypatch.setattr(ports._rng, "randrange", lambda a, b: next(picks))
        port = free_port()
    assert port == free != taken


def test_the_kernels_range_is_read_and_a_machine_without_room_below_gets_a_kernel_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    narrow = tmp_path / "ip_local_port_range"
    narrow.write_text("10500\t60999\n")
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE", narrow)
    assert ephemeral_low() == 10500
    port = free_port()  # 500 ports below the range: too few to pick from at random
    assert port >= 10500 and bindable("127.0.0.1", port)
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE", tmp_path / "missing")
    assert ephemeral_low() == ports.DEFAULT_EPHEMERAL_LOW
