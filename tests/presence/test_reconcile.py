"""After a restart, the API shows online exactly the cars that are connected."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.conftest import start_platform
from tests.platform import Car


def test_a_restart_shows_cars_that_did_not_come_back_offline(tmp_path: Path) -> None:
    platform = start_platform(tmp_path / "data")
    try:
        gone = platform.register("volta")
        staying = platform.register("volta")
        cars = {creds.vin: Car(platform, creds.vin, creds.password) for creds in (gone, staying)}
        for car in cars.values():
            car.connect()

        def online() -> set[str]:
            with platform.api() as api:
                return {v["vin"] for v in api.get("/vehicles", online="true")["vehicles"]}

        platform.wait_for(lambda: set(cars) <= online(), 10, "both cars online")
        platform.stop(signal.SIGKILL)  # no disconnect event gets recorded
        cars[gone.vin].client.loop_stop()  # this car does not come back
        platform.start()
        # The other car's client reconnects by itself; the first one never does.
        platform.wait_for(lambda: online() == {staying.vin}, 20, "only the returning car online")
        with platform.api() as api:
            vehicle = api.get(f"/vehicles/{gone.vin}")
        assert vehicle["online"] is False
        with platform.api() as api:
            events = api.get("/events", vin=gone.vin, type="vehicle.offline")["events"]
        assert events, "the correction is an event too"
    finally:
        platform.stop()
