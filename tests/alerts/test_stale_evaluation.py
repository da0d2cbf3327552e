"""Two derive processes evaluate the same car at once: the one that saves second
evaluates again from what the first stored, so an alert is raised once and the rule
state is the newest, over a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from carcloud.alerts.models import Alert, AlertRule, RuleState
from carcloud.alerts.service import AlertService
from carcloud.alerts.store import AlertStore, EmitAlert
from carcloud.ingest.models import TelemetryMessage
from carcloud.storage.sqlite import sqlite_stores

SECOND = 1_000_000
VIN = "WVWZZZ1JZXW000001"
T0 = 1_780_000_000 * SECOND


class OvertakenOnce:
    """The real store, except that before the first save it lets another evaluation of
    the car run to its end (as another derive process would, between this one's read
    and its write)."""

    def __init__(self, store: AlertStore, other: AlertService) -> None:
        self.store, self.other, self.saves, self.refused = store, other, 0, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def save_evaluation(
        self,
        vin: str,
        states: Sequence[RuleState],
        dropped: Sequence[tuple[str, str]],
        raised: Sequence[Alert],
        cleared: Sequence[tuple[str, int]],
        emit: EmitAlert | None = None,
        expected: Mapping[str, int | None] | None = None,
    ) -> list[Alert]:
        self.saves += 1
        if self.saves == 1:
            await self.other.derive(vin, T0)
        try:
            return await self.store.save_evaluation(
                vin, states, dropped, raised, cleared, emit, expected
            )
        except Exception:
            self.refused += 1
            raise


async def test_the_evaluation_that_saves_second_evaluates_again(tmp_path: Path) -> None:
    stores = sqlite_stores(tmp_path / "carcloud.db")
    await stores.open()
    try:
        await stores.registry.create_brand("volta", "Volta")
        await stores.registry.create_vehicle(VIN, "volta", "E1", 2025, [], "scrypt$h")
        first = AlertService(stores.alerts, stores.telematics, stores.registry)
        rule = await first.create_rule(
            AlertRule("new", "volta", "fast", condition="Vehicle.Speed > 100", for_s=0.0)
        )
        speeds = [(T0 + i * SECOND, 90.0 + 10 * i) for i in range(4)]  # > 100 from the 3rd
        await stores.telemetry.write_telemetry(
            [
                TelemetryMessage(VIN, i + 1, ts, ts, (("Vehicle.Speed", ts, speed),))
                for i, (ts, speed) in enumerate(speeds)
            ],
            [],
        )
        overtaken = OvertakenOnce(stores.alerts, first)
        second = AlertService(overtaken, stores.telematics, stores.registry)  # type: ignore[arg-type]
        assert await second.derive(VIN, T0) == []  # the other one raised it
        # Its save was refused; evaluated again from the other's states, nothing was left.
        assert (overtaken.saves, overtaken.refused) == (1, 1)
        events = await stores.events.list_events(0, "volta", ["alert"])
        assert [e.type for e in events] == ["alert.raised"]
        [alert] = await first.list_alerts("volta")
        assert alert.raised_ts == speeds[2][0] and alert.status == "active"
        [cursor] = await stores.alerts.load_states(VIN, rule.id)
        assert cursor.evaluated_ts == speeds[-1][0] and cursor.alert_id == alert.id
        # Another evaluation with nothing new changes nothing.
        await asyncio.wait_for(second.derive(VIN, T0), 10)
        assert [e.type for e in await stores.events.list_events(0, "volta", ["alert"])] == [
            "alert.raised"
        ]
    finally:
        await stores.close()
