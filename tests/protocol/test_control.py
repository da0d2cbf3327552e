"""Codecs of status, commands, results and the twin: round trips and precise refusals."""

from __future__ import annotations

import json

import pytest

from carcloud_agent.errors import ProtocolError, ValidationError
from carcloud_agent.protocol.commands import (
    Command,
    CommandResult,
    decode_command,
    decode_result,
    encode_command,
    encode_result,
)
from carcloud_agent.protocol.status import (
    OFFLINE,
    ONLINE,
    Status,
    decode_status,
    encode_status,
)
from carcloud_agent.protocol.twin import (
    Desired,
    Reported,
    decode_desired,
    decode_reported,
    encode_desired,
    encode_reported,
)

ISSUED = 1_795_514_400_000_000  # 2026-11-24T10:00:00Z in epoch microseconds


def raw(body: object) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def refused(decode: object, body: object) -> str:
    assert callable(decode)
    with pytest.raises(ProtocolError) as caught:
        decode(raw(body))
    assert isinstance(caught.value, ValidationError)  # the API and workers treat it as bad input
    return str(caught.value)


# ---- status -----------------------------------------------------------------------------


def test_status_round_trips_and_the_will_is_offline() -> None:
    assert decode_status(encode_status(Status(True))) == Status(True)
    assert decode_status(ONLINE).online and not decode_status(OFFLINE).online
    assert json.loads(OFFLINE) == {"online": False}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"online", "status is not JSON: "),
        (["online"], "status must be a JSON object, got list"),
        ({}, "status needs online: true or false, got None"),
        ({"online": "yes"}, "status needs online: true or false, got 'yes'"),
        ({"online": 1}, "status needs online: true or false, got 1"),
    ],
)
def test_a_malformed_status_is_refused(body: object, reason: str) -> None:
    assert refused(decode_status, body).startswith(reason)


# ---- commands and results ----------------------------------------------------------------


def test_a_command_round_trips_with_its_times() -> None:
    command = Command("cmd_1", "set_charge_limit", {"percent": 80}, ISSUED, ISSUED + 86_400_000_000)
    payload = encode_command(command)
    assert json.loads(payload)["expires_at"] == "2026-11-25T10:00:00.000000Z"
    assert decode_command(payload) == command
    assert not command.expired(ISSUED) and command.expired(ISSUED + 86_400_000_001)


def test_a_command_without_params_or_expiry_has_none() -> None:
    command = decode_command(raw({"id": "cmd_2", "kind": "lock"}))
    assert command == Command("cmd_2", "lock", {}, None, None)
    assert not command.expired(2**62)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "command is not JSON: "),
        ("lock", "command must be a JSON object, got str"),
        ({"kind": "lock"}, "command needs id: a non-empty string, got None"),
        ({"id": "c", "kind": ""}, "command needs kind: a non-empty string, got ''"),
        ({"id": "c", "kind": 3}, "command needs kind: a non-empty string, got 3"),
        ({"id": "c", "kind": "lock", "params": [1]}, "command params must be an object, got list"),
        (
            {"id": "c", "kind": "lock", "expires_at": "tomorrow"},
            "command expires_at 'tomorrow' is not an RFC 3339 timestamp",
        ),
        (
            {"id": "c", "kind": "lock", "issued_at": "2026-11-24T10:00:00"},
            "command issued_at '2026-11-24T10:00:00' has no UTC offset",
        ),
    ],
)
def test_a_malformed_command_is_refused(body: object, reason: str) -> None:
    assert refused(decode_command, body).startswith(reason)


@pytest.mark.parametrize(
    "result",
    [
        CommandResult("received"),
        CommandResult("succeeded"),
        CommandResult("failed", "charging cable not connected"),
    ],
)
def test_a_result_round_trips(result: CommandResult) -> None:
    assert decode_result(encode_result(result)) == result
    assert result.is_final == (result.status != "received")


def test_a_result_without_a_reason_has_no_reason_key() -> None:
    assert json.loads(encode_result(CommandResult("succeeded"))) == {"status": "succeeded"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "command result is not JSON: "),
        ({"status": "done"}, "command result status 'done' is not one of received, succeeded"),
        ({}, "command result status None is not one of"),
        ({"status": "failed", "reason": 42}, "command result reason must be a string, got 42"),
    ],
)
def test_a_malformed_result_is_refused(body: object, reason: str) -> None:
    assert refused(decode_result, body).startswith(reason)


# ---- desired and reported ----------------------------------------------------------------


def test_desired_round_trips() -> None:
    desired = Desired(7, {"charge_limit_percent": 80, "hvac": {"eco": True}})
    assert decode_desired(encode_desired(desired)) == desired


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"nope", "desired twin is not JSON: "),
        ({"desired": {}}, "desired twin needs version: an integer from 0, got None"),
        ({"version": "7", "desired": {}}, "desired twin needs version: an integer from 0, got '7'"),
        ({"version": -1, "desired": {}}, "desired twin needs version: an integer from 0, got -1"),
        ({"version": True, "desired": {}}, "desired twin needs version: an integer from 0, got T"),
        ({"version": 1}, "desired twin needs desired: an object, got None"),
        ({"version": 1, "desired": [1]}, "desired twin needs desired: an object, got [1]"),
    ],
)
def test_a_malformed_desired_document_is_refused(body: object, reason: str) -> None:
    assert refused(decode_desired, body).startswith(reason)


def test_reported_round_trips_with_and_without_a_desired_version() -> None:
    answer = Reported({"charge_limit_percent": 80, "errors": None}, 7)
    assert decode_reported(encode_reported(answer)) == answer
    own = Reported({"agent": {"buffer_depth": 0}})
    assert json.loads(encode_reported(own)) == {"reported": {"agent": {"buffer_depth": 0}}}
    assert decode_reported(encode_reported(own)) == own


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[", "reported twin is not JSON: "),
        ({"desired_version": 1}, "reported twin needs reported: an object (a JSON merge patch)"),
        ({"reported": "x"}, "reported twin needs reported: an object"),
        (
            {"reported": {}, "desired_version": "7"},
            "reported twin desired_version must be an integer from 0 or null, got '7'",
        ),
        (
            {"reported": {}, "desired_version": 1.5},
            "reported twin desired_version must be an integer from 0 or null, got 1.5",
        ),
    ],
)
def test_a_malformed_report_is_refused(body: object, reason: str) -> None:
    assert refused(decode_reported, body).startswith(reason)
