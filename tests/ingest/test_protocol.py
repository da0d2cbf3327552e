"""The telemetry message format: what is accepted, and the reason for what is not."""

from __future__ import annotations

import json

import pytest

from carcloud.catalog import default_catalog
from carcloud.ingest.protocol import decode_telemetry

VIN = "WVWZZZ1JZXW000001"
SUBJECT = f"vehicles.{VIN}.telemetry"


def decode(body: object, max_bytes: int = 64 * 1024):  # type: ignore[no-untyped-def]
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return decode_telemetry(VIN, SUBJECT, payload, 1, default_catalog(), max_bytes)


def test_single_sample_is_accepted_with_vehicle_time() -> None:
    result = decode({"seq": 7, "ts": "2026-11-24T10:00:00.5Z", "signals": {"Vehicle.Speed": 88}})
    assert result.dead_letter is None and result.message is not None
    assert result.message.seq == 7
    path, ts, value = result.message.samples[0]
    assert (path, value) == ("Vehicle.Speed", 88.0)
    assert ts == 1795514400_500000


def test_batch_of_samples_shares_one_seq() -> None:
    body = {
        "seq": 8,
        "samples": [
            {"ts": "2026-11-24T10:00:00Z", "signals": {"Vehicle.Speed": 10}},
            {
                "ts": "2026-11-24T10:00:01Z",
                "signals": {"Vehicle.Speed": 12, "Vehicle.IsMoving": True},
            },
        ],
    }
    result = decode(body)
    assert result.dead_letter is None and result.message is not None
    assert [(path, value) for path, _, value in result.message.samples] == [
        ("Vehicle.Speed", 10.0),
        ("Vehicle.Speed", 12.0),
        ("Vehicle.IsMoving", True),
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (b"\xff\xfe", "malformed JSON"),
        ([1, 2], "must be a JSON object"),
        ({"ts": "2026-11-24T10:00:00Z", "signals": {"Vehicle.Speed": 1}}, "seq is missing"),
        ({"seq": -1, "ts": "2026-11-24T10:00:00Z", "signals": {"Vehicle.Speed": 1}}, "seq must be"),
        (
            {"seq": True, "ts": "2026-11-24T10:00:00Z", "signals": {"Vehicle.Speed": 1}},
            "seq must be",
        ),
        (
            {
                "seq": 1,
                "vin": "WVWZZZ1JZXW000002",
                "ts": "2026-11-24T10:00:00Z",
                "signals": {"Vehicle.Speed": 1},
            },
            "does not match the topic",
        ),
        ({"seq": 1}, "needs either ts and signals, or samples"),
        ({"seq": 1, "ts": "yesterday", "signals": {"Vehicle.Speed": 1}}, "not an RFC 3339"),
        ({"seq": 1, "ts": "2026-11-24T10:00:00", "signals": {"Vehicle.Speed": 1}}, "no UTC offset"),
        ({"seq": 1, "ts": "2026-11-24T10:00:00Z", "signals": {}}, "non-empty object"),
        (
            {"seq": 1, "ts": "2026-11-24T10:00:00Z", "signals": {"Vehicle.Nope": 1}},
            "unknown signal path",
        ),
        (
            {"seq": 1, "ts": "2026-11-24T10:00:00Z", "signals": {"Vehicle.Speed": "fast"}},
            "expected a number",
        ),
        (
            {"seq": 1, "ts": "2026-11-24T10:00:00Z", "signals": {"Vehicle.Speed": 9000}},
            "above the maximum",
        ),
        ({"seq": 1, "samples": []}, "non-empty array"),
    ],
)
def test_bad_input_becomes_a_dead_letter_with_its_reason(body: object, reason: str) -> None:
    result = decode(body)
    assert result.message is None
    assert result.dead_letter is not None
    assert reason in result.dead_letter.reason
    assert result.dead_letter.payload == (
        body if isinstance(body, bytes) else json.dumps(body).encode()
    )


def test_oversized_message_is_refused_before_parsing() -> None:
    body = {
        "seq": 1,
        "ts": "2026-11-24T10:00:00Z",
        "signals": {"Vehicle.Speed": 1},
        "pad": "x" * 2000,
    }
    result = decode(body, max_bytes=1000)
    assert result.message is None and result.dead_letter is not None
    assert "exceeds the limit of 1000 bytes" in result.dead_letter.reason


def test_valid_values_of_a_partly_bad_message_are_kept() -> None:
    body = {
        "seq": 3,
        "ts": "2026-11-24T10:00:00Z",
        "signals": {"Vehicle.Speed": 50, "Vehicle.Nope": 1, "Vehicle.IsMoving": "yes"},
    }
    result = decode(body)
    assert result.message is not None and [path for path, _, _ in result.message.samples] == [
        "Vehicle.Speed"
    ]
    assert result.dead_letter is not None
    assert "1 valid values stored" in result.dead_letter.reason
    assert (
        "Vehicle.Nope" in result.dead_letter.reason
        and "Vehicle.IsMoving" in result.dead_letter.reason
    )


def test_gzip_messages_are_unpacked_and_bombs_refused() -> None:
    import gzip

    body = {"seq": 9, "ts": "2026-11-24T10:00:00Z", "signals": {"Vehicle.Speed": 42.0}}
    packed = gzip.compress(json.dumps(body).encode())
    result = decode(packed)
    assert result.dead_letter is None and result.message is not None
    assert result.message.samples[0][2] == 42.0
    bomb = gzip.compress(b"{" + b" " * 200_000 + b"}")
    assert len(bomb) < 1000
    refused = decode(bomb)
    assert refused.message is None and refused.dead_letter is not None
    assert "unpacks to more than the limit" in refused.dead_letter.reason
    cut = decode(packed[:-8])
    assert cut.dead_letter is not None and "gzip" in cut.dead_letter.reason
