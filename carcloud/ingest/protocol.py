"""The canonical telemetry message (docs/protocol.md) and its validation.

A message is either one sample:
    {"seq": 42, "ts": "2026-11-24T10:00:00Z", "signals": {"Vehicle.Speed": 50.5}}
or a batch of samples sharing one seq:
    {"seq": 43, "samples": [{"ts": "...", "signals": {...}}, ...]}

The wire format (envelope, gzip, size limit, sample shape) is the protocol's
(`carcloud_agent.protocol.telemetry`); this module adds what only the cloud checks,
the signal catalog, and turns every problem into a dead letter:
`decode_telemetry` never raises for bad input: it returns what can be stored and a
dead letter that says what could not.
"""

from __future__ import annotations

from dataclasses import dataclass

from carcloud.catalog import SignalCatalog, SignalValueError
from carcloud.ingest.models import DeadLetter, SampleTuple, TelemetryMessage
from carcloud_agent.errors import ProtocolError
from carcloud_agent.protocol.telemetry import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_SAMPLES_PER_MESSAGE,
    MAX_SEQ,
    TelemetryError,
    decode_envelope,
    decode_sample,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MAX_SAMPLES_PER_MESSAGE",
    "MAX_SEQ",
    "Decoded",
    "decode_telemetry",
]


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

    try:
        envelope = decode_envelope(payload, max_bytes, vin)
    except TelemetryError as exc:
        return Decoded(None, letter(str(exc)), exc.seq)
    seq, batch = envelope.seq, envelope.batch

    samples: list[SampleTuple] = []
    problems: list[str] = []
    first_ts: int | None = None
    validators = catalog.validators
    for index, raw in enumerate(envelope.samples):
        where = f"samples[{index}]: " if batch else ""
        try:
            ts, signals = decode_sample(raw)
        except ProtocolError as exc:
            problems.append(f"{where}{exc}")
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
    if not problems:
        return Decoded(message, None, seq, batch)
    stored = f"{len(samples)} valid values stored; " if samples else "nothing stored; "
    shown = "; ".join(problems[:10])
    more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
    return Decoded(message, letter(f"{stored}rejected: {shown}{more}"), seq, batch)
