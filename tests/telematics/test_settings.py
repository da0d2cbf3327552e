"""Trip detection settings are CARCLOUD_* settings: a platform started with a shorter stop
time splits a drive with a two-minute stop in two; the default keeps it one trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from carcloud.config import load_settings
from carcloud.errors import ConfigError
from carcloud.telematics.models import DetectionSettings
from carcloud.timeutil import format_us
from tests.conftest import start_platform
from tests.platform import Car, Platform
from tests.telematics.drive import SECOND, Leg, run

BRAND = "stoptime"
# Two drives of two minutes with a stop of two minutes (power on) between them.
STOP_AND_GO = [
    Leg("park", 30),
    Leg("stand", 5),
    Leg("drive", 120, speed_kmh=50),
    Leg("stand", 120),
    Leg("drive", 120, speed_kmh=50),
    Leg("park", 60),
]


def _drive(platform: Platform) -> list[dict[str, Any]]:
    """Publish the stop-and-go drive over MQTT; the trips once derived, oldest first."""
    creds = platform.register(BRAND)
    car = Car(platform, creds.vin, creds.password)
    assert not car.connect().is_failure
    script = run(STOP_AND_GO)
    for ts, signals in script.samples:
        car.seq += 1
        body = {"seq": car.seq, "ts": format_us(ts), "signals": signals}
        car.client.publish(f"vehicles/{car.vin}/telemetry", json.dumps(body), qos=1)
    arrived = format_us(script.trips[-1].end_ts - 2 * SECOND)

    def derived() -> list[dict[str, Any]] | None:
        with platform.api() as api:
            trips: list[dict[str, Any]] = api.get(f"/vehicles/{car.vin}/trips")["trips"]
        # Power off after the second drive ends its trip: then every trip is in.
        done = trips and trips[0]["status"] == "completed" and trips[0]["end_at"] >= arrived
        return list(reversed(trips)) if done else None

    found: list[dict[str, Any]] = platform.wait_for(derived, timeout=60, what="the trips")
    return found


def test_a_shorter_stop_time_splits_the_drive_at_the_stop(tmp_path: Path) -> None:
    default = start_platform(tmp_path / "default")
    try:
        [one] = _drive(default)
    finally:
        default.stop()
    assert one["distance_km"] > 3  # both drives: the 2-minute stop is under 3 minutes
    short = start_platform(tmp_path / "short", "--trip-stop-s", "60")
    try:
        first, second = _drive(short)
    finally:
        short.stop()
    assert first["end_at"] < second["start_at"]
    assert first["distance_km"] + second["distance_km"] == pytest.approx(
        one["distance_km"], abs=0.01
    )


def test_detection_settings_come_from_carcloud_variables_with_their_help() -> None:
    settings = load_settings(
        environ={"CARCLOUD_TRIP_STOP_S": "90", "CARCLOUD_TRIP_MIN_DISTANCE_M": "250"}
    )
    detection = DetectionSettings.of(settings)
    assert detection.stop_s == 90.0 and detection.min_distance_km == 0.25
    assert DetectionSettings.of(load_settings(environ={})) == DetectionSettings()
    with pytest.raises(ConfigError, match="CARCLOUD_TRIP_STOP_S"):
        load_settings(environ={"CARCLOUD_TRIP_STOP_S": "-5"})
    shown = subprocess.run(
        [sys.executable, "-m", "carcloud.cli", "up", "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0
    text = " ".join(shown.stdout.split())
    assert "--trip-stop-s S" in text and "env CARCLOUD_TRIP_STOP_S, default 180.0" in text
    assert "CARCLOUD_TRIP_MIN_DISTANCE_M, default 100.0" in text
