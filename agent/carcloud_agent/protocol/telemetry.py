"""Telemetry, car → cloud on `vehicles/{vin}/telemetry`: one sample, or a batch of samples.

    {"seq": 42, "ts": "2026-11-24T10:00:00Z", "signals": {"Vehicle.Speed": 50.5}}
    {"seq": 43, "samples": [{"ts": "…", "signals": {…}}, …]}

`(vin, seq)` identifies a message (a resend with the same seq is stored once); `ts`
is the vehicle's own time; a message may be gzip-compressed (it then starts with
the gzip magic bytes) and is at most 64 KiB, unpacked too. Signal paths and values
are checked against the signal catalog by ingest, not here: this module checks the
envelope and the shape of each sample.

Two ways to decode:
- `decode_telemetry` for a reader that wants all or nothing (the agent regrouping its
  own messages, tests): a `TelemetrySample` or `TelemetryBatch`, or ProtocolError;
- `decode_envelope` + `decode_sample` for ingest, which stores the good samples of a
  message and dead-letters the bad ones with the reason each error gives.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from carcloud_agent.errors import ProtocolError, ValidationError
from carcloud_agent.timeutil import parse_rfc3339_us

__all__ = [
    "COMPRESS_ABOVE",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "GZIP_MAGIC",
    "MAX_SAMPLES_PER_MESSAGE",
    "MAX_SEQ",
    "Envelope",
    "Sample",
    "TelemetryBatch",
    "TelemetryError",
    "TelemetrySample",
    "decode_envelope",
    "decode_sample",
    "decode_telemetry",
    "encode_batch",
    "encode_sample",
    "pack",
    "unpack",
    "unpacked_size",
]

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
MAX_SAMPLES_PER_MESSAGE = 1000
# 2**53: seq values beyond this lose precision in JSON numbers of most languages.
MAX_SEQ = 2**53
GZIP_MAGIC = b"\x1f\x8b"
COMPRESS_ABOVE = 512  # smaller messages do not shrink enough to pay for gzip's header


class TelemetryError(ProtocolError):
    """A telemetry message that cannot be used at all; `seq` if it could be read."""

    def __init__(self, reason: str, seq: int | None = None) -> None:
        super().__init__(reason)
        self.seq = seq


@dataclass(frozen=True, slots=True)
class Sample:
    """Signal values at one vehicle time (`ts`: RFC 3339 text as the car sent it)."""

    ts: str
    signals: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class TelemetrySample:
    """A message of one sample."""

    seq: int
    sample: Sample


@dataclass(frozen=True, slots=True)
class TelemetryBatch:
    """A message of several samples under one seq (a backlog after an outage)."""

    seq: int
    samples: tuple[Sample, ...]


# ---- encoding ---------------------------------------------------------------------------


def pack(body: bytes) -> bytes:
    """gzip a message when that pays (cellular bytes cost more than CPU); else as is."""
    if len(body) < COMPRESS_ABOVE:
        return body
    packed = gzip.compress(body, compresslevel=6, mtime=0)
    return packed if len(packed) < 0.8 * len(body) else body


def encode_sample(
    seq: int, ts: str, signals: Mapping[str, object], *, compress: bool = False
) -> bytes:
    """A one-sample message; gzip-compressed with `compress` when that pays."""
    body = orjson.dumps({"seq": seq, "ts": ts, "signals": signals})
    return pack(body) if compress else body


def encode_batch(seq: int, samples: Sequence[Sample], *, compress: bool = False) -> bytes:
    """A batch message of `samples` under one seq."""
    body = orjson.dumps(
        {"seq": seq, "samples": [{"ts": s.ts, "signals": s.signals} for s in samples]}
    )
    return pack(body) if compress else body


# ---- decoding ---------------------------------------------------------------------------


def unpacked_size(payload: bytes) -> int:
    """The size of a message once unpacked (gzip keeps it in its last four bytes)."""
    if payload[:2] == GZIP_MAGIC:
        return int.from_bytes(payload[-4:], "little")
    return len(payload)


def unpack(payload: bytes, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> bytes:
    """A message's JSON bytes: gunzipped if compressed, never beyond `max_bytes` (no zip bombs)."""
    if len(payload) > max_bytes:
        raise TelemetryError(
            f"message of {len(payload)} bytes exceeds the limit of {max_bytes} bytes"
        )
    if payload[:2] != GZIP_MAGIC:
        return payload
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(payload, max_bytes + 1)
    except zlib.error as exc:
        raise TelemetryError(f"malformed gzip: {exc}") from exc
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise TelemetryError(f"message unpacks to more than the limit of {max_bytes} bytes")
    if not inflater.eof:
        raise TelemetryError("malformed gzip: the compressed message is cut short")
    return data


@dataclass(frozen=True, slots=True)
class Envelope:
    """A telemetry message whose envelope is sound; its samples are still unchecked."""

    seq: int
    samples: Sequence[object]
    batch: bool  # sent as {"seq", "samples"} (a backlog), not as one sample


def _parse_seq(body: Mapping[str, object]) -> int:
    seq = body.get("seq")
    if seq is None:
        raise TelemetryError(
            "seq is missing: every message needs a per-vehicle increasing integer seq"
        )
    if type(seq) is not int or not 0 <= seq < MAX_SEQ:
        raise TelemetryError(f"seq must be an integer from 0 to 2^53-1, got {seq!r}")
    return seq


def _raw_samples(body: Mapping[str, object], seq: int) -> Sequence[object]:
    if "samples" in body:
        raw = body["samples"]
        if not isinstance(raw, list) or not raw:
            raise TelemetryError("samples must be a non-empty array of {ts, signals}", seq)
        if len(raw) > MAX_SAMPLES_PER_MESSAGE:
            raise TelemetryError(
                f"{len(raw)} samples in one message; at most {MAX_SAMPLES_PER_MESSAGE} are allowed",
                seq,
            )
        return raw
    if "signals" not in body:
        raise TelemetryError("message needs either ts and signals, or samples", seq)
    return [body]


def decode_envelope(
    payload: bytes, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, vin: str | None = None
) -> Envelope:
    """A message's seq and raw samples; TelemetryError if it is unusable.

    With `vin` (the topic's), a `vin` in the payload must be the same.
    """
    data = unpack(payload, max_bytes)
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise TelemetryError(f"malformed JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise TelemetryError(f"message must be a JSON object, got {type(body).__name__}")
    seq = _parse_seq(body)
    claimed = body.get("vin")
    if vin is not None and claimed is not None and claimed != vin:
        raise TelemetryError(
            f"VIN {claimed!r} in the payload does not match the topic's VIN {vin}", seq
        )
    return Envelope(seq, _raw_samples(body, seq), "samples" in body)


def decode_sample(raw: object) -> tuple[int, dict[str, Any]]:
    """One raw sample's vehicle time (epoch µs) and signals; ProtocolError if malformed."""
    if not isinstance(raw, dict):
        raise ProtocolError("a sample must be an object with ts and signals")
    try:
        ts = parse_rfc3339_us(raw.get("ts"), "ts")
    except ValidationError as exc:
        raise ProtocolError(str(exc)) from exc
    signals = raw.get("signals")
    if not isinstance(signals, dict) or not signals:
        raise ProtocolError("signals must be a non-empty object of VSS path to value")
    return ts, signals


def decode_telemetry(
    payload: bytes, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> TelemetrySample | TelemetryBatch:
    """A whole telemetry message, or ProtocolError for the first thing wrong with it."""
    envelope = decode_envelope(payload, max_bytes)
    samples: list[Sample] = []
    for index, raw in enumerate(envelope.samples):
        try:
            _, signals = decode_sample(raw)
        except ProtocolError as exc:
            where = f"samples[{index}]: " if envelope.batch else ""
            raise TelemetryError(f"{where}{exc}", envelope.seq) from exc
        assert isinstance(raw, dict)  # decode_sample checked it
        samples.append(Sample(raw["ts"], signals))
    if envelope.batch:
        return TelemetryBatch(envelope.seq, tuple(samples))
    return TelemetrySample(envelope.seq, samples[0])
