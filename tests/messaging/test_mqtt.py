"""The own MQTT client against a fake broker that can fall silent: half-open links.

The broker here speaks just enough MQTT 3.1.1 (CONNACK, SUBACK, PUBACK, PINGRESP)
and can be told to stop answering without closing anything, which is what a
cellular link or a NAT that forgot its mapping looks like from the car. A real
nats-server never does that on purpose, hence the fake.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest

from carcloud_agent.mqtt import MqttClient, MqttError

KEEPALIVE_S = 1
DEADLINE_S = 1.5 * KEEPALIVE_S
MARGIN_S = 1.5  # a loaded 2-core machine wakes timers late


class FakeBroker:
    """A one-port MQTT broker for tests; `silent` makes it swallow everything."""

    def __init__(self) -> None:
        self.silent = False  # read and drop every packet, answer nothing, close nothing
        self.reading = asyncio.Event()  # cleared: stop reading too, so the client's writes back up
        self.reading.set()
        self.answer_connect = True
        self.ack_publishes = True
        self.pings = 0
        self.connections_ended = 0
        self.ended = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for _ in range(100):  # let the handlers see their aborted sockets and finish
            if not self._writers:
                break
            await asyncio.sleep(0.01)

    def publish_to_clients(self, topic: str, payload: bytes) -> None:
        """A QoS 0 PUBLISH to every client (life from the server without a PINGRESP)."""
        body = struct.pack("!H", len(topic)) + topic.encode() + payload
        for writer in self._writers:
            writer.write(bytes([0x30, len(body)]) + body)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                await self.reading.wait()
                header, body = await read_packet(reader)
                if self.silent:
                    continue
                kind = header & 0xF0
                if kind == 0x10 and self.answer_connect:  # CONNECT
                    writer.write(b"\x20\x02\x00\x00")
                elif kind == 0xC0:  # PINGREQ
                    self.pings += 1
                    writer.write(b"\xd0\x00")
                elif kind == 0x80:  # SUBSCRIBE
                    writer.write(b"\x90\x03" + body[:2] + b"\x01")
                elif kind == 0x30 and header & 0x06 and self.ack_publishes:  # PUBLISH QoS 1
                    topic_length = struct.unpack("!H", body[:2])[0]
                    writer.write(b"\x40\x02" + body[2 + topic_length : 4 + topic_length])
                elif kind == 0xE0:  # DISCONNECT
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed or aborted its socket
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
            self.connections_ended += 1
            self.ended.set()


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One MQTT packet: its first byte and its body."""
    header = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return header, await reader.readexactly(length) if length else b""


@pytest.fixture
async def broker() -> AsyncIterator[FakeBroker]:
    running = FakeBroker()
    yield running
    await running.close()


async def connected_client(broker: FakeBroker, keepalive_s: int = KEEPALIVE_S) -> MqttClient:
    port = await broker.start()
    client = MqttClient("127.0.0.1", port, "WVWZZZ1JZXW000001", keepalive_s=keepalive_s)
    await client.connect()
    return client


async def test_a_server_that_falls_silent_is_noticed_within_one_and_a_half_keepalives(
    broker: FakeBroker,
) -> None:
    client = await connected_client(broker)
    loop = asyncio.get_running_loop()
    broker.silent = True
    went_silent = loop.time()
    try:
        await asyncio.wait_for(client.closed.wait(), DEADLINE_S + MARGIN_S)
        noticed_after = loop.time() - went_silent
        assert not client.connected
        assert client.close_reason is not None and "link is dead" in client.close_reason
        # Not before the deadline either: the last packet heard was at most this long ago.
        assert noticed_after >= DEADLINE_S - KEEPALIVE_S / 2 - 0.05
        # The socket is really closed, not just forgotten: the server sees it end.
        await asyncio.wait_for(broker.ended.wait(), 2)
        with pytest.raises(MqttError, match="not connected"):
            client.publish_nowait("vehicles/x/telemetry", b"{}")
    finally:
        await client.disconnect()


async def test_a_server_that_answers_pings_keeps_the_link_over_several_keepalives(
    broker: FakeBroker,
) -> None:
    client = await connected_client(broker)
    try:
        await asyncio.sleep(4 * KEEPALIVE_S)
        assert client.connected, client.close_reason
        assert broker.pings >= 4  # one every half keepalive: about 8
        assert broker.connections_ended == 0
    finally:
        await client.disconnect()


async def test_any_packet_from_the_server_counts_as_life_not_only_a_pingresp(
    broker: FakeBroker,
) -> None:
    client = await connected_client(broker)
    broker.silent = True  # no PINGRESP any more, but messages keep coming
    try:
        for _ in range(8):
            broker.publish_to_clients("vehicles/x/commands/1", b"{}")
            await asyncio.sleep(KEEPALIVE_S / 2)
        assert client.connected, client.close_reason
    finally:
        await client.disconnect()


async def test_pending_qos1_publishes_fail_instead_of_hanging_when_the_link_is_dropped(
    broker: FakeBroker,
) -> None:
    client = await connected_client(broker)
    broker.silent = True
    pending = [client.publish_nowait("vehicles/x/telemetry", b'{"seq": %d}' % n) for n in range(5)]
    big = await client.publish("vehicles/x/telemetry", b"x" * 1000)
    try:
        assert client.unacked == 6
        await asyncio.wait_for(client.closed.wait(), DEADLINE_S + MARGIN_S)
        # Cancelled (the client's way of saying "not acknowledged: send it again").
        for future in [*pending, big]:
            assert future.cancelled()
        assert client.unacked == 0
    finally:
        await client.disconnect()


async def test_a_subscribe_on_a_link_that_dies_raises_mqtt_error_not_cancelled(
    broker: FakeBroker,
) -> None:
    client = await connected_client(broker)
    broker.silent = True
    try:
        with pytest.raises(MqttError, match="lost before SUBACK"):
            await asyncio.wait_for(
                client.subscribe("vehicles/x/commands/+", timeout_s=30), DEADLINE_S + MARGIN_S
            )
    finally:
        await client.disconnect()


async def test_a_server_that_never_sends_connack_fails_the_connect_within_the_deadline(
    broker: FakeBroker,
) -> None:
    broker.answer_connect = False
    port = await broker.start()
    client = MqttClient("127.0.0.1", port, "WVWZZZ1JZXW000001", keepalive_s=KEEPALIVE_S)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(MqttError, match="no CONNACK"):
        await client.connect(timeout_s=30)
    assert loop.time() - started < DEADLINE_S + MARGIN_S
    await asyncio.wait_for(broker.ended.wait(), 2)


async def test_a_connect_cancelled_while_waiting_for_connack_closes_its_link(
    broker: FakeBroker,
) -> None:
    """A caller that gives up (a car stopping, a shutdown) while the CONNACK is awaited:
    the half-open link is closed at once, not left for the garbage collector."""
    broker.answer_connect = False
    port = await broker.start()
    client = MqttClient("127.0.0.1", port, "WVWZZZ1JZXW000001", keepalive_s=KEEPALIVE_S)
    connecting = asyncio.create_task(client.connect(timeout_s=30))
    for _ in range(200):  # until the broker holds the connection
        if broker._writers:
            break
        await asyncio.sleep(0.01)
    assert broker._writers, "the client never reached the broker"
    connecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await connecting
    await asyncio.wait_for(broker.ended.wait(), 2)  # the broker sees the link go
    assert not client.connected


async def test_disconnect_from_a_dead_link_does_not_hang(broker: FakeBroker) -> None:
    client = await connected_client(broker, keepalive_s=60)
    broker.silent = True
    broker.reading.clear()
    # Far more than the socket buffers take with nobody reading: the writer is paused,
    # and a DISCONNECT waiting for room would wait until TCP gives up.
    for _ in range(512):
        client.publish_nowait("vehicles/x/telemetry", b"x" * 60_000)
    await asyncio.sleep(0.2)
    assert client._writer is not None and client._writer.transport.get_write_buffer_size() > 0
    await asyncio.wait_for(client.disconnect(), 10)
    assert not client.connected
    broker.reading.set()
    await asyncio.wait_for(broker.ended.wait(), 2)


def test_keepalive_must_fit_the_connect_packet() -> None:
    with pytest.raises(ValueError, match="keepalive_s"):
        MqttClient("127.0.0.1", 1, "c", keepalive_s=70_000)
    with pytest.raises(ValueError, match="keepalive_s"):
        MqttClient("127.0.0.1", 1, "c", keepalive_s=-1)
    assert MqttClient("127.0.0.1", 1, "c", keepalive_s=0).silence_deadline_s is None


async def test_a_publish_on_a_link_closed_under_it_raises_mqtt_error_at_once(
    broker: FakeBroker,
) -> None:
    # The simulator publishes from a timer: the socket can be gone (reset by the server)
    # before the read loop has noticed. That must be the client's MqttError, which callers
    # handle, not the event loop's RuntimeError (uvloop), which ended a simulator run.
    client = await connected_client(broker)
    assert client._writer is not None
    client._writer.transport.abort()
    try:
        with pytest.raises(MqttError, match="not connected"):
            client.publish_nowait("vehicles/x/telemetry", b"{}")
        assert client.unacked == 0  # no packet id waits for a PUBACK that cannot come
    finally:
        await client.disconnect()
