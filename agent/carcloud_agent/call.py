"""The car's call module: joins a carcloud audio room over WebRTC (aiortc, the `call` extra).

    pip install 'carcloud-agent[call]'

A `call_join` action with a `room` (carcloud_agent.protocol.calls) carries a join
token and the signalling URL: the module posts its SDP offer there and sets the
answer, so it talks to carcloud's API only, never to the media server's. Audio
comes from a source track (the car's microphone; `ToneSource` for tests and the
simulator) and goes to a sink: the car's speaker output (`speaker`: an ffmpeg output
device such as ALSA's default, or a WAV file), or `PcmSink`, which keeps the PCM.
Video is never offered: rooms carry audio, and a car in motion must not start it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import logging
import math
import time
import urllib.error
import urllib.request
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aioice.ice
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from av import AudioFrame

from carcloud_agent.errors import CarcloudError
from carcloud_agent.protocol.calls import RoomJoin

__all__ = [
    "CallError",
    "OutputSink",
    "PcmSink",
    "RoomCall",
    "Sink",
    "ToneSource",
    "join_room",
    "microphone",
    "speaker",
    "use_host_addresses",
]

log = logging.getLogger(__name__)

RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
HTTP_TIMEOUT_S = 10.0


class CallError(CarcloudError):
    """The room refused the join, or the link to it failed."""


def use_host_addresses(addresses: Sequence[str]) -> None:
    """Offer only these local addresses as ICE host candidates (one interface of the car).

    aiortc offers every address but 127.0.0.1; a car with a modem and a Wi-Fi
    client picks its uplink here, a test on one machine a loopback-range address.
    """
    chosen = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses


class ToneSource(MediaStreamTrack):
    """A sine tone of one frequency, in real time: a microphone that always says the same."""

    kind = "audio"

    def __init__(self, frequency_hz: float, amplitude: float = 0.3) -> None:
        super().__init__()
        self.frequency_hz = frequency_hz
        self.amplitude = amplitude
        self._sample = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        """The next 20 ms of the tone, when it is due."""
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._sample / RATE - time.monotonic()
        if due > 0:
            await asyncio.sleep(due)
        step = 2 * math.pi * self.frequency_hz / RATE
        scale = self.amplitude * 32767
        samples = array(
            "h", (int(scale * math.sin(step * (self._sample + i))) for i in range(FRAME_SAMPLES))
        )
        frame = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate = RATE
        frame.pts = self._sample
        frame.time_base = fractions.Fraction(1, RATE)
        self._sample += FRAME_SAMPLES
        return frame


class Sink(Protocol):
    """Where the room's audio goes: frames as they arrive, then `close` at the end."""

    def write(self, frame: AudioFrame) -> None:
        """Play or keep one received frame."""
        ...

    def close(self) -> None:
        """The call ended: release the device or finish the file."""
        ...


@dataclass
class PcmSink:
    """The speakers: keeps what the room sends, as mono 16-bit samples at 48 kHz.

    With `keep_s`, only the last `keep_s` seconds are kept (a car's call of an hour
    would otherwise hold 345 MB).
    """

    samples: array[int] = field(default_factory=lambda: array("h"))
    frames: int = 0
    keep_s: float | None = None

    def write(self, frame: AudioFrame) -> None:
        """Keep one received frame (the left channel of interleaved stereo)."""
        channels = len(frame.layout.channels)
        # The plane's buffer may be longer than its samples (ffmpeg pads it): only those.
        data = array("h", bytes(frame.planes[0])[: frame.samples * channels * 2])
        self.samples.extend(data[::channels] if channels > 1 else data)
        self.frames += 1
        if self.keep_s is not None and len(self.samples) > 2 * self.keep_s * RATE:
            del self.samples[: len(self.samples) - int(self.keep_s * RATE)]

    def last(self, seconds: float) -> array[int]:
        """The last `seconds` of audio."""
        return self.samples[-int(seconds * RATE) :]

    def close(self) -> None:
        """Nothing to release."""


class OutputSink:
    """The car's speakers: an ffmpeg output `FORMAT:TARGET`, 16-bit PCM at 48 kHz.

    `alsa:default` plays on ALSA's default device (`pulse:default` on PulseAudio);
    `wav:PATH` writes a WAV file (tests, recordings). What was received is kept as
    well, like `PcmSink` (the last `keep_s` seconds).
    """

    def __init__(self, spec: str, keep_s: float = 10.0) -> None:
        import av

        kind, _, target = spec.partition(":")
        if not kind or not target:
            raise CallError(f"speaker {spec!r}: use FORMAT:TARGET (alsa:default, wav:PATH)")
        self.spec = spec
        self.kept = PcmSink(keep_s=keep_s)
        self._container: Any = None
        self._stream: Any = None
        self._pts = 0
        try:
            self._container = av.open(target, mode="w", format=kind)
        except Exception as exc:  # noqa: BLE001 - ffmpeg's errors (av.error.*, OSError, ValueError)
            raise CallError(f"speaker {spec!r} cannot be opened: {exc}") from exc

    def write(self, frame: AudioFrame) -> None:
        """Play one frame (the stream takes its layout from the first)."""
        self.kept.write(frame)
        if self._container is None:
            return
        try:
            if self._stream is None:
                self._stream = self._container.add_stream("pcm_s16le", rate=frame.sample_rate)
                self._stream.layout = frame.layout.name
            # The output's own clock: received timestamps jump (jitter buffer, a rejoin),
            # and a muxer refuses timestamps that do not increase.
            frame.pts = self._pts
            frame.time_base = fractions.Fraction(1, frame.sample_rate)
            self._pts += frame.samples
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except Exception as exc:  # noqa: BLE001 - a device that went away ends the output only
            log.warning("speaker %s failed, the call goes on without it: %s", self.spec, exc)
            self.close()

    @property
    def samples(self) -> array[int]:
        """What was received (the last seconds)."""
        return self.kept.samples

    def last(self, seconds: float) -> array[int]:
        """The last `seconds` of what was received."""
        return self.kept.last(seconds)

    def close(self) -> None:
        """Flush and close the output (a WAV file gets its final sizes)."""
        container, self._container = self._container, None
        if container is None:
            return
        try:
            if self._stream is not None:
                for packet in self._stream.encode(None):
                    container.mux(packet)
            container.close()
        except Exception as exc:  # noqa: BLE001 - closing a broken device
            log.warning("speaker %s did not close cleanly: %s", self.spec, exc)


def speaker(spec: str) -> Sink:
    """The car's audio output from the config: `FORMAT:TARGET` (ffmpeg's output of that
    format: `alsa:default`, `pulse:default`, `wav:/path/file.wav`), or `none` (nothing is
    played; the last seconds are kept)."""
    if spec.strip().lower() == "none":
        return PcmSink(keep_s=10.0)
    return OutputSink(spec)


def microphone(spec: str) -> MediaStreamTrack:
    """The car's audio input from the config: `tone:HZ`, or `FORMAT:DEVICE` (ffmpeg's input
    of that format, e.g. `alsa:default` or `pulse:default`)."""
    kind, _, rest = spec.partition(":")
    if kind == "tone":
        try:
            return ToneSource(float(rest))
        except ValueError as exc:
            raise CallError(f"microphone {spec!r}: tone:HZ takes a frequency in Hz") from exc
    if not kind or not rest:
        raise CallError(f"microphone {spec!r}: use tone:HZ or FORMAT:DEVICE (alsa:default)")
    from aiortc.contrib.media import MediaPlayer

    try:
        track = MediaPlayer(rest, format=kind).audio
    except Exception as exc:  # noqa: BLE001 - ffmpeg's errors (av.error.*, OSError)
        raise CallError(f"microphone {spec!r} cannot be opened: {exc}") from exc
    if track is None:
        raise CallError(f"microphone {spec!r} has no audio")
    return track


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise CallError(f"the room refused ({exc.code}): {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise CallError(f"cannot reach {url}: {exc}") from exc


class RoomCall:
    """A car in a room: its peer connection, and how to leave."""

    def __init__(self, join: RoomJoin, source: MediaStreamTrack, sink: Sink) -> None:
        self.join = join
        self.source = source
        self.sink = sink
        self.participant_id: str | None = None
        self.peer = RTCPeerConnection()
        self._readers: list[asyncio.Task[None]] = []
        self.connected = asyncio.Event()
        self.ended = asyncio.Event()  # the connection failed or closed (kicked, room closed)

    async def start(self, pin: str | None = None) -> None:
        """Offer audio, post the offer with the token, set the answer."""
        self.peer.addTrack(self.source)

        @self.peer.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._readers.append(asyncio.create_task(self._read(track)))

        @self.peer.on("connectionstatechange")
        def on_state() -> None:
            if self.peer.connectionState == "connected":
                self.connected.set()
            elif self.peer.connectionState in ("failed", "closed"):
                self.ended.set()

        await self.peer.setLocalDescription(await self.peer.createOffer())
        body: dict[str, Any] = {"token": self.join.token, "sdp": self.peer.localDescription.sdp}
        if pin is not None:
            body["pin"] = pin
        answer = await asyncio.to_thread(_post, self.join.signalling, body)
        self.participant_id = str(answer["participant_id"])
        await self.peer.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except Exception:  # noqa: BLE001 - aiortc ends a track with MediaStreamError
                return
            if isinstance(frame, AudioFrame):
                self.sink.write(frame)

    async def close(self, leave: bool = True) -> None:
        """Hang up: tell the room (unless the link is meant to drop), close the connection."""
        if leave:
            leave_url = self.join.signalling.rsplit("/", 1)[0] + "/leave"
            # The room forgets us when the connection ends anyway.
            with contextlib.suppress(CallError):
                await asyncio.to_thread(_post, leave_url, {"token": self.join.token})
        await self.peer.close()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        self.sink.close()


async def join_room(
    join: RoomJoin, source: MediaStreamTrack, sink: Sink | None = None, pin: str | None = None
) -> RoomCall:
    """Join a room from a join action; the call is connected when `connected` is set."""
    call = RoomCall(join, source, sink or PcmSink())
    try:
        await call.start(pin)
    except BaseException:
        await call.peer.close()
        call.sink.close()
        raise
    return call
