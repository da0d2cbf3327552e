"""A lean asyncio MQTT 3.1.1 publisher for load tests (QoS 1, many connections, one process).

paho spends most of its time in Python bookkeeping; a benchmark's publisher must
cost less CPU than the system it measures, so this speaks the few packets it
needs (CONNECT, PUBLISH QoS 1, PUBACK, DISCONNECT) directly.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable


def _remaining_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


class LoadPublisher:
    """One MQTT connection that publishes QoS 1 with a bounded window of unacknowledged messages."""

    def __init__(self, host: str, port: int, vin: str, password: str, window: int = 200) -> None:
        self.host, self.port, self.vin, self.password = host, port, vin, password
        self.window = asyncio.Semaphore(window)
        self.next_id = 1
        self.sent_at: dict[int, float] = {}
        self.acked = 0
        self.on_ack: Callable[[float], None] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self.topic = _string(f"vehicles/{vin}/telemetry")

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        flags = 0x80 | 0x40  # username, password; clean session off: a persistent session
        body = (
            _string("MQTT")
            + bytes([4, flags])
            + struct.pack("!H", 60)
            + _string(self.vin)
            + _string(self.vin)
            + _string(self.password)
        )
        self._writer.write(b"\x10" + _remaining_length(len(body)) + body)
        header = await self._reader.readexactly(4)
        if header[0] != 0x20 or header[3] != 0:
            raise ConnectionError(f"{self.vin}: CONNACK refused with code {header[3]}")
        self._reader_task = asyncio.create_task(self._read_acks())

    async def _read_acks(self) -> None:
        assert self._reader is not None
        reader = self._reader
        while True:
            try:
                packet = await reader.readexactly(4)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if packet[0] & 0xF0 == 0x40:
                packet_id = struct.unpack("!H", packet[2:4])[0]
                sent = self.sent_at.pop(packet_id, None)
                self.acked += 1
                self.window.release()
                if sent is not None and self.on_ack is not None:
                    self.on_ack(sent)

    async def publish(self, payload: bytes) -> None:
        """Send one QoS 1 PUBLISH once the window has room."""
        assert self._writer is not None
        await self.window.acquire()
        packet_id = self.next_id
        self.next_id = self.next_id % 65535 + 1
        body = self.topic + struct.pack("!H", packet_id) + payload
        self.sent_at[packet_id] = time.perf_counter()
        self._writer.write(b"\x32" + _remaining_length(len(body)) + body)
        if self._writer.transport.get_write_buffer_size() > 256 * 1024:
            await self._writer.drain()

    async def wait_acked(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.perf_counter() + timeout
        while self.acked < count:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{self.vin}: {self.acked}/{count} PUBACKs")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.write(b"\xe0\x00")
            await self._writer.drain()
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except ConnectionError:
                pass
        if self._reader_task is not None:
            self._reader_task.cancel()
