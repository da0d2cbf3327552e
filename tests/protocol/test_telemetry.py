"""Telemetry codec: samples and batches round-trip; each malformed message has its own reason."""

from __future__ import annotations

import gzip
import json

import pytest

from carcloud_agent.errors import ProtocolError
from carcloud_agent.protocol.telemetry import (
    COMPRESS_ABOVE,
    Sample,
    TelemetryBatch,
    TelemetryError,
    TelemetrySample,
    decode_envelope,
    decode_telemetry,
    encode_batch,
    encode_sample,
    unpacked_size,
)

TS = "2026-11-24T10:00:00.250Z"


def test_a_sample_round_trips() -> None:
    payload = encode_sample(7, TS, {"Vehicle.Speed": 50.5, "Vehicle.IsMoving": True})
    assert json.loads(payload) == {
        "seq": 7,
        "ts": TS,
        "signals": {"Vehicle.Speed": 50.5, "Vehicle.IsMoving": True},
    }
    assert decode_telemetry(payload) == TelemetrySample(
        7, Sample(TS, {"Vehicle.Speed": 50.5, "Vehicle.IsMoving": True})
    )


def test_a_batch_round_trips() -> None:
    samples = [Sample(TS, {"Vehicle.Speed": 1.0}), Sample("2026-11-24T10:00:01Z", {"A.B": "x"})]
    decoded = decode_telemetry(encode_batch(43, samples))
    assert decoded == TelemetryBatch(43, tuple(samples))


def test_a_large_message_is_compressed_only_when_that_pays_and_still_decodes() -> None:
    signals = {f"Vehicle.Signal{n}": 0.0 for n in range(60)}
    packed = encode_sample(1, TS, signals, compress=True)
    plain = encode_sample(1, TS, signals)
    assert len(plain) > COMPRESS_ABOVE and packed[:2] == b"\x1f\x8b" and len(packed) < len(plain)
    assert unpacked_size(packed) == len(plain)
    assert decode_telemetry(packed) == decode_telemetry(plain)
    small = encode_sample(1, TS, {"Vehicle.Speed": 1.0}, compress=True)
    assert small[:1] == b"{"  # too small to gain from gzip


def raw(body: object) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "malformed JSON: "),
        ([1, 2], "message must be a JSON object, got list"),
        ({"ts": TS, "signals": {"A": 1}}, "seq is missing: every message needs a per-vehicle"),
        ({"seq": -1, "ts": TS, "signals": {"A": 1}}, "seq must be an integer from 0 to 2^53-1"),
        ({"seq": 2**53, "ts": TS, "signals": {"A": 1}}, "seq must be an integer from 0 to 2^53-1"),
        ({"seq": True, "ts": TS, "signals": {"A": 1}}, "got True"),
        ({"seq": 1.0, "ts": TS, "signals": {"A": 1}}, "got 1.0"),
        ({"seq": 1}, "message needs either ts and signals, or samples"),
        ({"seq": 1, "samples": []}, "samples must be a non-empty array of {ts, signals}"),
        ({"seq": 1, "samples": {"ts": TS}}, "samples must be a non-empty array"),
        (
            {"seq": 1, "samples": [{"ts": TS, "signals": {"A": 1}}] * 1001},
            "1001 samples in one message; at most 1000 are allowed",
        ),
        ({"seq": 1, "ts": TS, "signals": {}}, "signals must be a non-empty object of VSS path"),
        ({"seq": 1, "ts": TS, "signals": [1]}, "signals must be a non-empty object of VSS path"),
        ({"seq": 1, "ts": "yesterday", "signals": {"A": 1}}, "ts 'yesterday' is not an RFC 3339"),
        ({"seq": 1, "ts": "2026-11-24T10:00:00", "signals": {"A": 1}}, "has no UTC offset"),
        ({"seq": 1, "ts": 5, "signals": {"A": 1}}, "ts must be an RFC 3339 string, got int"),
        ({"seq": 1, "samples": [5]}, "samples[0]: a sample must be an object with ts and signals"),
        (
            {"seq": 1, "samples": [{"ts": TS, "signals": {"A": 1}}, {"ts": TS}]},
            "samples[1]: signals must be a non-empty object",
        ),
    ],
)
def test_a_malformed_message_says_what_is_wrong(body: object, reason: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_telemetry(raw(body))
    assert reason in str(caught.value)


def test_the_seq_of_a_message_refused_after_reading_it_is_kept() -> None:
    with pytest.raises(TelemetryError) as caught:
        decode_telemetry(raw({"seq": 9, "samples": []}))
    assert caught.value.seq == 9  # ingest receipts it, so the car does not resend it forever
    with pytest.raises(TelemetryError) as unread:
        decode_telemetry(b"[]")
    assert unread.value.seq is None


def test_size_limits_hold_before_and_after_unpacking() -> None:
    big = raw({"seq": 1, "ts": TS, "signals": {"A": "x" * 70_000}})
    with pytest.raises(TelemetryError, match="exceeds the limit of 65536 bytes"):
        decode_telemetry(big)
    bomb = gzip.compress(b"{" + b" " * 200_000 + b"}")
    with pytest.raises(TelemetryError, match="unpacks to more than the limit of 65536 bytes"):
        decode_telemetry(bomb)
    with pytest.raises(TelemetryError, match="malformed gzip"):
        decode_telemetry(gzip.compress(raw({"seq": 1}))[:-9])


def test_a_payload_vin_must_match_the_topic() -> None:
    body = raw({"seq": 3, "vin": "WVWZZZ1JZXW000002", "ts": TS, "signals": {"A": 1}})
    with pytest.raises(TelemetryError) as caught:
        decode_envelope(body, vin="WVWZZZ1JZXW000001")
    assert str(caught.value) == (
        "VIN 'WVWZZZ1JZXW000002' in the payload does not match the topic's VIN WVWZZZ1JZXW000001"
    )
    assert caught.value.seq == 3
    assert decode_envelope(body).seq == 3  # without a topic VIN there is nothing to compare
