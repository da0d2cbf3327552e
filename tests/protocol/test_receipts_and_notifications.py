"""Codecs of commit receipts and driver notifications: round trips and precise refusals."""

from __future__ import annotations

import json

import pytest

from carcloud_agent.errors import ProtocolError
from carcloud_agent.protocol.notifications import (
    Notification,
    NotificationAction,
    decode_notification,
    encode_notification,
)
from carcloud_agent.protocol.receipts import covered, decode_receipt, encode_receipt, seq_ranges

EXPIRES = 1_795_515_300_000_000  # 2026-11-24T10:15:00Z


def raw(body: object) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


# ---- receipts ---------------------------------------------------------------------------


def test_a_receipt_round_trips_as_inclusive_ranges() -> None:
    ranges = seq_ranges([5, 1, 2, 3, 3, 9, 10])
    assert ranges == [(1, 3), (5, 5), (9, 10)]
    assert json.loads(encode_receipt(ranges)) == {"ranges": [[1, 3], [5, 5], [9, 10]]}
    assert decode_receipt(encode_receipt(ranges)) == ranges
    assert covered(10, ranges) and not covered(4, ranges)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"receipt", "receipt is not JSON: "),
        ([[1, 2]], "receipt must be a JSON object, got list"),
        ({}, "receipt needs ranges: [[first, last], ...]"),
        ({"ranges": [[3, 1]]}, "receipt range [3, 1] is not [first, last] with first <= last"),
        ({"ranges": [[1]]}, "receipt range [1] is not [first, last]"),
        ({"ranges": [[1, 2.0]]}, "receipt range [1, 2.0] is not [first, last]"),
        ({"ranges": [[True, 2]]}, "receipt range [True, 2] is not [first, last]"),
    ],
)
def test_a_malformed_receipt_is_refused(body: object, reason: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_receipt(raw(body))
    assert str(caught.value).startswith(reason)


# ---- notifications ----------------------------------------------------------------------


def card() -> Notification:
    return Notification(
        id="ntf_1",
        kind="meeting",
        title="Design review in 10 min",
        body="Room 4.12",
        actions=(
            NotificationAction("join", "Join call", "https://meet.example/abc"),
            NotificationAction("navigate", "Navigate"),
        ),
        expires_at=EXPIRES,
    )


def test_a_notification_round_trips() -> None:
    payload = encode_notification(card())
    body = json.loads(payload)
    assert body["expires_at"] == "2026-11-24T10:15:00.000000Z"
    assert body["actions"][1] == {"id": "navigate", "label": "Navigate"}
    assert decode_notification(payload) == card()
    assert not card().expired(EXPIRES) and card().expired(EXPIRES + 1)


def test_a_minimal_notification_has_no_actions_and_no_expiry() -> None:
    decoded = decode_notification(raw({"id": "n", "kind": "info", "title": "Hello"}))
    assert decoded == Notification("n", "info", "Hello")
    assert decoded.body == "" and decoded.actions == () and not decoded.expired(2**62)


GOOD = {"id": "n", "kind": "info", "title": "Hello"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "notification is not JSON: "),
        ({**GOOD, "id": ""}, "notification id must be a non-empty string, got ''"),
        ({**GOOD, "id": "x" * 65}, "notification id has 65 characters; at most 64"),
        ({**GOOD, "kind": "ad"}, "notification kind 'ad' is not one of info, warning, meeting"),
        ({**GOOD, "title": None}, "notification title must be a non-empty string, got None"),
        ({**GOOD, "title": "t" * 81}, "notification title has 81 characters; at most 80"),
        ({**GOOD, "body": 5}, "notification body must be a string, got 5"),
        ({**GOOD, "actions": "join"}, "notification actions must be an array of {id, label, uri}"),
        ({**GOOD, "actions": [7]}, "notification actions[0] must be an object with id and label"),
        (
            {**GOOD, "actions": [{"id": "a", "label": "A"}, {"id": "b"}]},
            "actions[1]: notification action label must be a non-empty string, got None",
        ),
        (
            {**GOOD, "actions": [{"id": "a", "label": "A"}] * 2},
            "notification action ids must be unique, got ['a', 'a']",
        ),
        (
            {**GOOD, "actions": [{"id": str(n), "label": "A"} for n in range(4)]},
            "notification has 4 actions; at most 3",
        ),
        (
            {**GOOD, "expires_at": "soon"},
            "notification expires_at 'soon' is not an RFC 3339 timestamp",
        ),
    ],
)
def test_a_malformed_notification_is_refused(body: object, reason: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_notification(raw(body))
    assert str(caught.value).startswith(reason)


def test_the_cloud_cannot_build_a_card_the_car_would_refuse() -> None:
    with pytest.raises(ProtocolError, match="at most 24"):
        NotificationAction("join", "Join the conference call now")
