"""The whole platform on PostgreSQL: the same API, ingest, commands and events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import start_platform
from tests.pg import create_database, drop_database
from tests.platform import Car, Platform


@pytest.fixture(scope="module")
def pg_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    url = create_database()
    data_dir: Path = tmp_path_factory.mktemp("carcloud-pg")
    platform = start_platform(data_dir, "--database", url)
    try:
        yield platform
    finally:
        platform.stop()
        drop_database(url)


def test_telemetry_commands_and_events_on_postgresql(pg_platform: Platform) -> None:
    platform = pg_platform
    creds = platform.register("volta")
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    car.serve()
    for speed in (10.0, 20.0, 30.0):
        car.telemetry({"Vehicle.Speed": speed})
    with platform.api() as api:
        state = platform.wait_for(
            lambda: (s := api.get(f"/vehicles/{creds.vin}/state"))["signals"] and s,
            20,
            "state from PostgreSQL",
        )
        assert state["signals"]["Vehicle.Speed"]["value"] == 30.0
        points = api.get(f"/vehicles/{creds.vin}/signals", path="Vehicle.Speed")["points"]
        assert [p["value"] for p in points] == [10.0, 20.0, 30.0]
        command = api.request(
            "POST", f"/vehicles/{creds.vin}/commands", params={"wait": "20s"}, json={"kind": "lock"}
        )
        assert command["status"] == "succeeded"
        events = api.get("/events", vin=creds.vin, type="command")["events"]
        assert [e["data"]["status"] for e in events][-1] == "succeeded"
        status = api.get("/status")
        assert status["vehicles"]["registered"] >= 1
