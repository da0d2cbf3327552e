"""A small asyncio MQTT 3.1.1 client: the cloud's own connection, and thousands of simulated cars.

paho runs one socket loop (and usually one thread) per client and spends tens of
microseconds of Python per message; a fleet simulator needs thousands of
clients on one core. This client speaks exactly what a car needs: CONNECT with
a will, PUBLISH QoS 0/1 with PUBACK tracking, SUBSCRIBE, incoming PUBLISH with
PUBACK, PINGREQ keepalive and DISCONNECT.

A link can die without either side hearing of it: a cellular hand-over or a NAT
that forgets its mapping drops every packet but closes nothing, and TCP gives up
only after about 15 minutes of retransmissions, while QoS 1 messages wait for
PUBACKs that never come. So the client pings every keepalive/2 and treats
silence as death: when nothing at all has arrived from the server for 1.5 ×
keepalive (PINGRESP, PUBACK, PUBLISH, anything), it aborts the socket, fails
what waits for an acknowledgement, and sets `closed`, so the caller's reconnect
loop starts over. 1.5 × keepalive is also how long the server waits for us
(MQTT 3.1.1, 3.1.2.10), so both ends give up on a dead link at about the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}

log = logging.getLogger(__name__)

SILENCE_FACTOR = 1.5  # keepalives without a packet from the server after which the link is dead
MAX_KEEPALIVE_S = 65535  # the CONNECT field is two bytes
DISCONNECT_FLUSH_S = 5.0  # how long DISCONNECT may wait for room in the socket

MessageHandler = Callable[[str, bytes], Awaitable[None] | None]


class MqttError(Exception):
    """The connection failed or was refused."""


class ConnectRefused(MqttError):
    """CONNACK with a non-zero return code."""

    def __init__(self, code: int) -> None:
        super().__init__(f"connection refused: {CONNACK_REASONS.get(code, f'code {code}')}")
        self.code = code


def _varint(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("!H", len(raw)) + raw


@dataclass(frozen=True)
class Will:
    """The message the server publishes if the connection drops without DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


class MqttClient:
    """One MQTT connection. Use `async with` or connect()/disconnect().

    `keepalive_s` (whole seconds, 0 = off) sets both the ping interval (half of it)
    and the silence deadline (1.5 × it) after which the link is dropped; `closed`
    is set then and `close_reason` says why.
    """

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        *,
        will: Will | None = None,
        keepalive_s: int = 30,
        clean_session: bool = False,
        on_message: MessageHandler | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not 0 <= keepalive_s <= MAX_KEEPALIVE_S or int(keepalive_s) != keepalive_s:
            raise ValueError(f"keepalive_s must be whole seconds in 0..{MAX_KEEPALIVE_S}")
        self.ssl_context = ssl_context
        self.host, self.port, self.client_id = host, port, client_id
        self.username, self.password = username, password
        self.will, self.keepalive_s, self.clean_session = will, keepalive_s, clean_session
        self.on_message = on_message
        self.session_present = False
        self.close_reason: str | None = None
        self._last_heard = 0.0  # loop time of the last packet from the server
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._next_id = 0
        self._acks: dict[int, asyncio.Future[list[int] | None]] = {}
        self.closed: asyncio.Event = asyncio.Event()
        self.closed.set()

    def __repr__(self) -> str:
        return f"MqttClient({self.client_id!r} at {self.host}:{self.port})"

    @property
    def connected(self) -> bool:
        return not self.closed.is_set()

    @property
    def unacked(self) -> int:
        return len(self._acks)

    @property
    def silence_deadline_s(self) -> float | None:
        """How long the server may say nothing before the link counts as dead (None: never)."""
        return self.keepalive_s * SILENCE_FACTOR if self.keepalive_s else None

    async def __aenter__(self) -> MqttClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    async def connect(self, timeout_s: float = 10.0) -> None:
        """Open the connection; ConnectRefused on a CONNACK refusal.

        The CONNACK is awaited no longer than the silence deadline either: a link that
        went dark during the handshake is as dead as one that goes dark later.
        """
        deadline = self.silence_deadline_s
        connack_timeout_s = timeout_s if deadline is None else min(timeout_s, deadline)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self.ssl_context), timeout_s
            )
        except (OSError, TimeoutError) as exc:
            raise MqttError(f"cannot reach {self.host}:{self.port}: {exc}") from exc
        self._reader, self._writer = reader, writer
        flags = 0x00 if not self.clean_session else 0x02
        payload = _string(self.client_id)
        if self.will is not None:
            flags |= 0x04 | (self.will.qos << 3) | (0x20 if self.will.retain else 0)
            payload += _string(self.will.topic) + _string(self.will.payload)
        if self.username is not None:
            flags |= 0x80
            payload += _string(self.username)
        if self.password is not None:
            flags |= 0x40
            payload += _string(self.password)
        body = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", self.keepalive_s) + payload
        writer.write(b"\x10" + _varint(len(body)) + body)
        try:
            head = await asyncio.wait_for(reader.readexactly(4), connack_timeout_s)
        except (asyncio.IncompleteReadError, OSError, TimeoutError) as exc:
            # OSError: a reset, or a TLS alert (ssl.SSLError) sent after the handshake.
            self._close_transport(abort=True)
            raise MqttError(f"no CONNACK from {self.host}:{self.port}: {exc!r}") from exc
        except BaseException:
            # Cancelled while waiting (the caller stopped): the link is not left open, to
            # be found by the garbage collector after its event loop has gone.
            self._close_transport(abort=True)
            raise
        if head[0] != 0x20 or head[3] != 0:
            self._close_transport()
            raise ConnectRefused(head[3])
        self.session_present = bool(head[2] & 1)
        self.close_reason = None
        self._last_heard = asyncio.get_running_loop().time()
        self.closed.clear()
        self._tasks = [
            asyncio.create_task(self._read_loop(), name=f"mqtt-read-{self.client_id}"),
            asyncio.create_task(self._keepalive(), name=f"mqtt-ping-{self.client_id}"),
        ]

    def _packet_id(self) -> int:
        self._next_id = self._next_id % 65535 + 1
        while self._next_id in self._acks:
            self._next_id = self._next_id % 65535 + 1
        return self._next_id

    def _send(self, packet: bytes) -> None:
        self._check_open()
        assert self._writer is not None
        self._writer.write(packet)

    def _check_open(self) -> None:
        # The transport can be closed (the peer reset it) before the read loop has noticed:
        # writing then would raise the event loop's RuntimeError, not an MqttError.
        if self._writer is None or self.closed.is_set() or self._writer.is_closing():
            raise MqttError(f"{self.client_id}: not connected")

    async def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[list[int] | None]:
        """Send a PUBLISH; the future completes on PUBACK (at once for QoS 0)."""
        done = self.publish_nowait(topic, payload, qos, retain)
        if self._writer is not None and self._writer.transport.get_write_buffer_size() > 1 << 20:
            try:
                await self._writer.drain()
            except ConnectionError as exc:  # dropped while waiting for room
                raise MqttError(f"{self.client_id}: connection lost: {exc}") from exc
        return done

    def publish_nowait(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[list[int] | None]:
        """Queue a PUBLISH without waiting for socket room (the caller paces itself)."""
        self._check_open()  # before a packet id is taken for a PUBACK that cannot come
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[int] | None] = loop.create_future()
        header = 0x30 | (qos << 1) | (1 if retain else 0)
        body = _string(topic)
        if qos:
            packet_id = self._packet_id()
            body += struct.pack("!H", packet_id)
            self._acks[packet_id] = done
        else:
            done.set_result(None)
        self._send(bytes([header]) + _varint(len(body) + len(payload)) + body + payload)
        return done

    async def subscribe(self, topic: str, qos: int = 1, timeout_s: float = 10.0) -> int:
        """Subscribe and wait for SUBACK; returns the granted QoS or 0x80 (refused).

        TimeoutError without a SUBACK in time, MqttError if the link drops first (not
        the CancelledError of the abandoned future, which would read as our own
        task being cancelled).
        """
        packet_id = self._packet_id()
        done: asyncio.Future[list[int] | None] = asyncio.get_running_loop().create_future()
        self._acks[packet_id] = done
        body = struct.pack("!H", packet_id) + _string(topic) + bytes([qos])
        self._send(b"\x82" + _varint(len(body)) + body)
        await asyncio.wait({done}, timeout=timeout_s)
        if not done.done():
            self._acks.pop(packet_id, None)
            raise TimeoutError(f"{self.client_id}: no SUBACK for {topic} in {timeout_s} s")
        if done.cancelled():
            raise MqttError(f"{self.client_id}: lost before SUBACK ({self.close_reason})")
        granted = done.result()
        return granted[0] if granted else 0x80

    async def _read_loop(self) -> None:
        assert self._reader is not None
        reader = self._reader
        loop = asyncio.get_running_loop()
        reason = "closed by the server"
        try:
            while True:
                first = await reader.readexactly(1)
                # The first byte is enough: a large packet still arriving is life too.
                self._last_heard = loop.time()
                length, shift = 0, 0
                while True:
                    byte = (await reader.readexactly(1))[0]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    if not byte & 0x80:
                        break
                body = await reader.readexactly(length) if length else b""
                await self._dispatch(first[0], body)
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            if not isinstance(exc, asyncio.IncompleteReadError):
                reason = f"connection error: {exc!r}"
        finally:
            self._lost(reason)

    async def _dispatch(self, header: int, body: bytes) -> None:
        kind = header & 0xF0
        if kind == 0x40:  # PUBACK
            future = self._acks.pop(struct.unpack("!H", body[:2])[0], None)
            if future is not None and not future.done():
                future.set_result(None)
        elif kind == 0x90:  # SUBACK
            future = self._acks.pop(struct.unpack("!H", body[:2])[0], None)
            if future is not None and not future.done():
                future.set_result(list(body[2:]))
        elif kind == 0x30:  # PUBLISH to us
            qos = (header >> 1) & 3
            topic_length = struct.unpack("!H", body[:2])[0]
            topic = body[2 : 2 + topic_length].decode()
            offset = 2 + topic_length
            if qos:
                packet_id = body[offset : offset + 2]
                offset += 2
            payload = body[offset:]
            if self.on_message is not None:
                outcome = self.on_message(topic, payload)
                if outcome is not None:
                    await outcome
            if qos:
                # Acknowledged after the handler ran: a crash before it means a redelivery.
                self._send(b"\x40\x02" + packet_id)

    async def _keepalive(self) -> None:
        """Ping every keepalive/2; drop the link once the server was silent too long.

        One task per connection sleeps until whichever comes first, the next ping or
        the deadline, so thousands of idle simulated cars cost one timer each.
        """
        deadline = self.silence_deadline_s
        if deadline is None:
            return
        loop = asyncio.get_running_loop()
        interval = self.keepalive_s / 2
        next_ping = loop.time() + interval
        with contextlib.suppress(MqttError):
            while True:
                now = loop.time()
                silent_s = now - self._last_heard
                if silent_s >= deadline:
                    reason = (
                        f"no packet from the server for {silent_s:.1f} s "
                        f"(keepalive {self.keepalive_s} s): the link is dead"
                    )
                    log.debug("%s: %s", self.client_id, reason)
                    self._lost(reason, abort=True)
                    return
                if now >= next_ping:
                    self._send(b"\xc0\x00")  # PINGREQ
                    next_ping = now + interval
                await asyncio.sleep(min(next_ping, self._last_heard + deadline) - now)

    def _lost(self, reason: str, *, abort: bool = False) -> None:
        """Mark the link down once: fail what waits on it, stop its tasks, close the socket.

        `abort` discards unsent bytes instead of flushing them: on a dead link a
        flush never ends, and the socket (and every drain() on it) would hang until
        TCP gives up.
        """
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.closed.set()
        for future in self._acks.values():
            # Cancelled, not failed: nobody has to collect the error of a lost message.
            future.cancel()
        self._acks.clear()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._close_transport(abort=abort)

    def _close_transport(self, *, abort: bool = False) -> None:
        if self._writer is not None:
            if abort:
                self._writer.transport.abort()
            else:
                self._writer.close()
            self._writer = None

    async def disconnect(self) -> None:
        """Say DISCONNECT (no will) and close; abort if the link cannot take it in time."""
        flushed = False
        if self.connected and self._writer is not None:
            with contextlib.suppress(ConnectionError, OSError, TimeoutError):
                self._writer.write(b"\xe0\x00")
                # A dead link never drains: saying goodbye must not hang the caller.
                await asyncio.wait_for(self._writer.drain(), DISCONNECT_FLUSH_S)
                flushed = True
        await self._shutdown("disconnected", abort=not flushed)

    async def abort(self) -> None:
        """Drop the connection without DISCONNECT, as a car in a tunnel does (the will fires)."""
        if self._writer is not None:
            self._writer.transport.abort()
        await self._shutdown("aborted", abort=True)

    async def _shutdown(self, reason: str, *, abort: bool = False) -> None:
        self._lost(reason, abort=abort)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
