"""The `offline` built-in: presence, checked periodically, over a real SQLite store."""

from __future__ import annotations

from pathlib import Path

from carcloud.alerts.builtins import BUILTINS
from carcloud.alerts.models import AlertRule, Target
from carcloud.alerts.service import AlertService
from carcloud.storage.sqlite import sqlite_stores

SECOND = 1_000_000
HOUR = 3600 * SECOND
VIN, OTHER_VIN = "WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002"


async def test_offline_longer_than_for_s_raises_once_and_clears_when_back(tmp_path: Path) -> None:
    stores = sqlite_stores(tmp_path / "carcloud.db")
    await stores.open()
    try:
        await stores.registry.create_brand("volta", "Volta")
        for vin in (VIN, OTHER_VIN):
            await stores.registry.create_vehicle(vin, "volta", "E1", 2025, [], "scrypt$h")
        service = AlertService(stores.alerts, stores.telematics, stores.registry)
        spec = BUILTINS["offline"]
        await service.create_rule(
            AlertRule(
                "new",
                "volta",
                spec.name,
                spec.kind,
                for_s=2 * 3600.0,
                builtin="offline",
                target=Target(vins=(VIN,)),
            )  # fmt: skip
        )
        t0 = 1_780_000_000 * SECOND
        await stores.registry.set_presence(VIN, True, t0)
        await stores.registry.set_presence(VIN, False, t0 + HOUR)
        await stores.registry.set_presence(OTHER_VIN, False, t0)  # not targeted
        assert await service.check_offline(t0 + 2 * HOUR) == []  # offline 1 h of 2
        [raised] = await service.check_offline(t0 + 3 * HOUR + SECOND)
        assert raised.vin == VIN and raised.pending_since == t0 + HOUR
        assert await service.check_offline(t0 + 4 * HOUR) == []  # once
        await stores.registry.set_presence(VIN, True, t0 + 5 * HOUR)
        [cleared] = await service.check_offline(t0 + 5 * HOUR + SECOND)
        assert cleared.id == raised.id and cleared.status == "cleared"
        events = await stores.events.list_events(0, "volta", ["alert"])
        assert [e.type for e in events] == ["alert.raised", "alert.cleared"]
    finally:
        await stores.close()
