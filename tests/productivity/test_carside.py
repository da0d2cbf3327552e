"""Cards on the car side: shown once by id, expired ones dropped; a simulated driver
follows a leave-by card's Navigate target; the agent appends cards to the head unit's
JSON-lines file."""

from __future__ import annotations

import json
from pathlib import Path

from carcloud.sim.geo import haversine_m
from carcloud_agent.carside import CarSide, navigate_target
from carcloud_agent.headunit import HeadUnitFeed
from carcloud_agent.protocol import topics
from carcloud_agent.protocol.notifications import (
    Notification,
    NotificationAction,
    encode_notification,
)
from carcloud_agent.timeutil import now_us
from tests.sim import vehicles

HOUR_US = 3_600_000_000


def card(card_id: str, lat: float, lon: float, expires_at: int | None = None) -> Notification:
    return Notification(
        card_id, "navigation", "Leave by 09:40 for Bakery", "4 min drive",
        (NotificationAction("navigate", "Navigate", f"geo:{lat:.6f},{lon:.6f}"),),
        expires_at if expires_at is not None else now_us() + HOUR_US,
    )  # fmt: skip


def test_a_simulated_driver_follows_a_leave_by_card() -> None:
    vehicle = vehicles.make_vehicle("nordwind", "Tessa", first_departure_s=6 * 3_600.0)
    network = vehicle.network
    shop = network.places_of("shop")[2]
    lat, lon = network.node_lat[shop.node], network.node_lon[shop.node]
    side = CarSide(vehicle, now_us)
    topic = topics.mqtt_topic(vehicle.vin, topics.NOTIFICATIONS)
    assert topic in side.subscriptions()
    expired = card("ntf_old", 0.0, 0.0, expires_at=now_us() - 1)
    side.on_message(topic, encode_notification(expired), lambda t, p: None)
    side.on_message(topic, b'{"id": "x", "kind": "party"}', lambda t, p: None)
    assert list(side.cards) == []  # expired and malformed cards are not shown
    side.on_message(topic, encode_notification(card("ntf_1", lat, lon)), lambda t, p: None)
    assert list(side.cards) == ["ntf_1"]
    for _ in range(300):
        vehicle.step(1.0)
        if vehicle.activity == "driving":
            break
    assert vehicle.destination.name == "Leave by 09:40 for Bakery"
    while vehicle.activity != "parked":
        vehicle.step(1.0)
        assert vehicle.sim_time < 6 * 3_600.0
    here = vehicle.position
    assert haversine_m(*here, lat, lon) < 1.0


def test_the_agent_hands_each_card_once_to_the_head_unit(tmp_path: Path) -> None:
    feed = HeadUnitFeed(tmp_path / "headunit" / "cards.jsonl", max_bytes=2_000)
    vehicle = vehicles.make_vehicle("volta", "Aria", first_departure_s=6 * 3_600.0)
    side = CarSide(vehicle, now_us, on_card=feed.deliver)
    topic = topics.mqtt_topic(vehicle.vin, topics.NOTIFICATIONS)
    first = encode_notification(card("ntf_1", 52.5, 13.4))
    side.on_message(topic, first, lambda t, p: None)
    side.on_message(topic, first, lambda t, p: None)  # QoS 1 delivered it twice
    lines = (tmp_path / "headunit" / "cards.jsonl").read_text().splitlines()
    assert len(lines) == 1
    shown = json.loads(lines[0])
    assert shown["card"] == json.loads(first) and shown["received_at"].endswith("Z")
    assert vehicle.activity == "parked"  # the agent's car does not drive off by itself
    for index in range(2, 12):
        side.on_message(topic, encode_notification(card(f"ntf_{index}", 52.5, 13.4)),
                        lambda t, p: None)  # fmt: skip
    # Rotated at 2 kB: the newest cards are in the file, the ones before in cards.jsonl.1.
    assert (tmp_path / "headunit" / "cards.jsonl.1").exists()
    newest = (tmp_path / "headunit" / "cards.jsonl").read_text().splitlines()
    assert json.loads(newest[-1])["card"]["id"] == "ntf_11"
    assert feed.written == 11


def test_navigate_targets_are_geo_uris_only() -> None:
    assert navigate_target(card("a", 52.5, 13.4)) == (52.5, 13.4)
    other = Notification(
        "b", "meeting", "t", actions=(NotificationAction("navigate", "Go", "https://x"),)
    )
    assert navigate_target(other) is None
    far = Notification(
        "c", "meeting", "t", actions=(NotificationAction("navigate", "Go", "geo:95,1"),)
    )
    assert navigate_target(far) is None
