"""A link that goes dark without closing: the agent notices, reconnects, loses nothing.

Between the agent and a real platform sits a TCP proxy that, at some moment, stops
forwarding in both directions but keeps every socket open (a cellular dead zone,
a NAT that forgot its mapping). TCP alone would notice after about 15 minutes;
the agent must notice within 1.5 × its keepalive, keep sampling into its outbox,
and come back through the proxy as soon as the proxy forwards again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from carcloud.timeutil import parse_rfc3339_us
from carcloud_agent.config import AgentConfig
from carcloud_agent.runtime import Agent
from carcloud_agent.sources import SignalValues
from tests.platform import Platform

ODOMETER = "Vehicle.TraveledDistance"
KEEPALIVE_S = 2
RECONNECT_MAX_S = 1.0
MARGIN_S = 4.0  # a loaded 2-core machine: the platform, its nats-server and this test share it


@dataclass
class Link:
    """One client connection through the proxy and, while it forwards, its upstream twin."""

    alive: bool
    sockets: list[asyncio.StreamWriter] = field(default_factory=list)


class BlackHoleProxy:
    """A TCP proxy that can stop forwarding without closing anything.

    `go_dark()` turns every existing link into a black hole (bytes read and dropped,
    both ways, sockets left open) and holds new connections in the dark too;
    `forward_again()` joins new connections to the target again. Dark links stay
    dark, as a flow whose NAT mapping is gone does.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.forwarding = True
        self.forwarded = 0  # connections joined to the platform
        self.held_dark = 0  # connections accepted while dark, never joined
        self._links: list[Link] = []
        self._handlers = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def go_dark(self) -> None:
        self.forwarding = False
        for link in self._links:
            link.alive = False

    def forward_again(self) -> None:
        self.forwarding = True

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for link in self._links:
            for writer in link.sockets:
                writer.transport.abort()
        for _ in range(200):
            if not self._handlers:
                break
            await asyncio.sleep(0.01)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._handlers += 1
        link = Link(alive=self.forwarding, sockets=[writer])
        self._links.append(link)
        try:
            if not link.alive:
                self.held_dark += 1
                await self._pipe(reader, None, link)
                return
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
            link.sockets.append(upstream_writer)
            self.forwarded += 1
            await asyncio.gather(
                self._pipe(reader, upstream_writer, link),
                self._pipe(upstream_reader, writer, link),
            )
        except OSError:
            pass
        finally:
            for socket_writer in link.sockets:
                socket_writer.transport.abort()
            self._handlers -= 1

    @staticmethod
    async def _pipe(
        source: asyncio.StreamReader, target: asyncio.StreamWriter | None, link: Link
    ) -> None:
        try:
            while chunk := await source.read(65536):
                if link.alive and target is not None:
                    target.write(chunk)
                    await target.drain()
        except OSError:
            pass
        # A live link passes a close on; a dark one does not (nothing gets through).
        if link.alive:
            for socket_writer in link.sockets:
                socket_writer.transport.abort()


def odometer_times(platform: Platform, vin: str) -> list[int]:
    """Vehicle times (µs) of every stored odometer point of the car, oldest first."""
    with platform.api() as api:
        points = api.get(f"/vehicles/{vin}/signals", path=ODOMETER, limit=100_000)["points"]
    return [parse_rfc3339_us(str(point["ts"])) for point in points]


async def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll a condition every 20 ms; seconds it took, or AssertionError naming it."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@pytest.mark.slow
async def test_a_link_that_goes_dark_is_dropped_and_redialled_and_no_sample_is_lost(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = await asyncio.to_thread(platform.register)
    proxy = BlackHoleProxy(platform.mqtt_port)
    proxy_port = await proxy.start()
    config = AgentConfig(
        vin=creds.vin, secret=creds.password, port=proxy_port, keepalive_s=KEEPALIVE_S,
        buffer_path=tmp_path / "outbox.db", reconnect_min_s=0.2, reconnect_max_s=RECONNECT_MAX_S,
        source={"kind": "simulator", "interval_s": 0.1, "speedup": 60.0},
    )  # fmt: skip
    agent = Agent(config)
    taken: list[int] = []  # the vehicle time of every sample the agent took
    sample = agent.source.sample

    def recording(dt_s: float) -> tuple[str, SignalValues] | None:
        due = sample(dt_s)
        if due is not None:
            taken.append(parse_rfc3339_us(due[0]))
        return due

    monkeypatch.setattr(agent.source, "sample", recording)
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    try:
        await wait_until(agent.connected.is_set, 30, "the first connection")

        async def stored() -> set[int]:
            return set(await asyncio.to_thread(odometer_times, platform, creds.vin))

        started = time.monotonic()
        while len(await stored()) < 5:
            assert time.monotonic() - started < 30, "no live data arrived through the proxy"
            await asyncio.sleep(0.2)

        proxy.go_dark()
        dark_after = len(taken)
        noticed_s = await wait_until(
            lambda: not agent.connected.is_set(),
            1.5 * KEEPALIVE_S + MARGIN_S,
            "the agent to notice the dead link",
        )
        # The deadline, not a lucky close: silence began up to half a keepalive before.
        assert noticed_s >= 1.5 * KEEPALIVE_S - KEEPALIVE_S / 2 - 0.2, noticed_s
        # Stay dark long enough that a reconnect attempt is caught in the dark as well.
        await wait_until(lambda: proxy.held_dark >= 1, 1.5 * KEEPALIVE_S + MARGIN_S, "a redial")
        await asyncio.sleep(0.5)
        assert not agent.connected.is_set()

        proxy.forward_again()
        back_s = await wait_until(
            agent.connected.is_set,
            1.5 * KEEPALIVE_S + RECONNECT_MAX_S + MARGIN_S,
            "the agent to reconnect through the proxy",
        )
        assert agent.connects == 2 and proxy.forwarded == 2
        assert len(taken) > dark_after + 10, "the agent stopped sampling while offline"

        # Everything taken until now arrives, each sample once, through the new link.
        expected = set(taken)
        started = time.monotonic()
        while not expected <= (have := await stored()):
            missing = len(expected - have)
            assert time.monotonic() - started < 60, f"{missing} samples never arrived"
            await asyncio.sleep(0.3)
    finally:
        stop.set()
        await asyncio.wait_for(running, 20)
        await proxy.close()
    times = await asyncio.to_thread(odometer_times, platform, creds.vin)
    assert len(times) == len(set(times)), "a sample is stored twice"
    assert set(times) <= set(taken), "storage holds a sample the agent never took"
    assert expected <= set(times)
    print(f"noticed after {noticed_s:.2f} s, back {back_s:.2f} s after the proxy forwarded again")
