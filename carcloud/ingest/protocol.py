"""The canonical telemetry message (docs/protocol.md) and its validation.

A message is either one sample:
    {"seq": 42, "ts": "2026-11-24T10:00:00Z", "signals": {"Vehicle.Speed": 50.5}}
or a batch of samples sharing one seq:
    {"seq": 43, "samples": [{"ts": "...", "signals": {...}}, ...]}

`decode_telemetry` never raises for bad input: it returns what can be stored and a
dead letter that says what could not.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import orjson

from carcloud.catalog import SignalCatalog, SignalValueError
from carcloud.errors import ValidationError
from carcloud.ingest.models import DeadLetter, SampleTuple, TelemetryMessage
from carcloud.timeutil import parse_rfc3339_us

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
MAX_SAMPLES_PER_MESSAGE = 1000
# 2**53: seq values beyond this lose precision in JSON numbers of most languages.
MAX_SEQ = 2**53


@dataclass(frozen=True, slots=True)
class Decoded:
    """The outcome of decoding one message: either or both may be set.

    `seq` is the message's seq whenever it could be read, even if nothing of it is
    stored (a receipt then tells the car not to resend it); `batch` says it carried
    `samples` (a backlog, receipted at once).
    """

    message: TelemetryMessage | None
    dead_letter: DeadLetter | None
    seq: int | None = None
    batch: bool = False


class _Rejected(Exception):
    """The whole message is unusable, for the reason in the message."""


def decode_telemetry(
    vin: str,
    subject: str,
    payload: bytes,
    received_at: int,
    catalog: SignalCatalog,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> Decoded:
    """Decode and validate one telemetry payload published on `subject` by `vin`."""

    def letter(reason: str) -> DeadLetter:
        return DeadLetter(received_at, subject, vin, reason, payload)

    seq: int | None = None
    try:
        if len(payload) > max_bytes:
            raise _Rejected(
                f"message of {len(payload)} bytes exceeds the limit of {max_bytes} bytes"
            )
        body = _parse_json(_inflate(payload, max_bytes) if payload[:2] == GZIP_MAGIC else payload)
        seq = _parse_seq(body)
        claimed = body.get("vin")
        if claimed is not None and claimed != vin:
            raise _Rejected(f"VIN {claimed!r} in the payload does not match the topic's VIN {vin}")
        raw_samples = _raw_samples(body)
    except _Rejected as exc:
        return Decoded(None, letter(str(exc)), seq)

    samples: list[SampleTuple] = []
    problems: list[str] = []
    first_ts: int | None = None
    validators = catalog.validators
    for index, raw in enumerate(raw_samples):
        where = f"samples[{index}]: " if "samples" in body else ""
        if not isinstance(raw, dict):
            problems.append(f"{where}a sample must be an object with ts and signals")
            continue
        try:
            ts = parse_rfc3339_us(raw.get("ts"), "ts")
        except ValidationError as exc:
            problems.append(f"{where}{exc}")
            continue
        signals = raw.get("signals")
        if not isinstance(signals, dict) or not signals:
            problems.append(f"{where}signals must be a non-empty object of VSS path to value")
            continue
        first_ts = ts if first_ts is None else min(first_ts, ts)
        try:
            # Fast path: every signal is known and valid (plain tuples, no per-value checks).
            samples += [(path, ts, validators[path](value)) for path, value in signals.items()]
            continue
        except (KeyError, SignalValueError):
            pass
        for path, value in signals.items():
            check = validators.get(path)
            try:
                if check is None:
                    catalog.validate(path, value)  # raises the precise "unknown path" error
                    continue
                samples.append((path, ts, check(value)))
            except SignalValueError as exc:
                problems.append(f"{where}{exc}")

    message = None
    if samples and first_ts is not None:
        message = TelemetryMessage(vin, seq, first_ts, received_at, tuple(samples))
    batch = "samples" in body
    if not problems:
        return Decoded(message, None, seq, batch)
    stored = f"{len(samples)} valid values stored; " if samples else "nothing stored; "
    shown = "; ".join(problems[:10])
    more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
    return Decoded(message, letter(f"{stored}rejected: {shown}{more}"), seq, batch)


GZIP_MAGIC = b"\x1f\x8b"


def _inflate(payload: bytes, max_bytes: int) -> bytes:
    """A gzip-compressed message, unpacked no further than the size limit (no zip bombs)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(payload, max_bytes + 1)
    except zlib.error as exc:
        raise _Rejected(f"malformed gzip: {exc}") from exc
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise _Rejected(f"message unpacks to more than the limit of {max_bytes} bytes")
    if not inflater.eof:
        raise _Rejected("malformed gzip: the compressed message is cut short")
    return data


def _parse_json(payload: bytes) -> dict[str, object]:
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise _Rejected(f"malformed JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _Rejected(f"message must be a JSON object, got {type(body).__name__}")
    return body


def _parse_seq(body: dict[str, object]) -> int:
    seq = body.get("seq")
    if seq is None:
        raise _Rejected("seq is missing: every message needs a per-vehicle increasing integer seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < MAX_SEQ:
        raise _Rejected(f"seq must be an integer from 0 to 2^53-1, got {seq!r}")
    return seq


def _raw_samples(body: dict[str, object]) -> list[object]:
    if "samples" in body:
        raw = body["samples"]
        if not isinstance(raw, list) or not raw:
            raise _Rejected("samples must be a non-empty array of {ts, signals}")
        if len(raw) > MAX_SAMPLES_PER_MESSAGE:
            raise _Rejected(
                f"{len(raw)} samples in one message; at most {MAX_SAMPLES_PER_MESSAGE} are allowed"
            )
        return raw
    if "signals" not in body:
        raise _Rejected("message needs either ts and signals, or samples")
    return [body]
