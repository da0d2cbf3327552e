"""The retention rule, and `carcloud retention` on a SQLite file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from carcloud.cli.main import main
from carcloud.errors import ConfigError
from carcloud.ingest.models import Sample, TelemetryMessage
from carcloud.ingest.retention import DAY_US, RetentionPolicy, day_start, days_to_prepare
from carcloud.storage.sqlite import sqlite_stores
from carcloud.timeutil import now_us

SECOND = 1_000_000
VIN = "WVWZZZ1JZXW000001"


def test_plan_counts_whole_days_before_today() -> None:
    now = 1_773_144_000 * SECOND  # 2026-03-10 12:00 UTC
    plan = RetentionPolicy(full_rate_days=7, downsampled_days=90).plan(now)
    assert plan.full_rate_from == day_start(now) - 7 * DAY_US
    assert plan.downsampled_from == day_start(now) - 90 * DAY_US
    assert plan.downsample
    assert RetentionPolicy().plan(now).full_rate_from is None
    # Minutes kept no longer than full rate: nothing worth folding.
    assert not RetentionPolicy(7, 7).plan(now).downsample
    assert days_to_prepare(now, ahead=2) == [day_start(now) + d * DAY_US for d in (-1, 0, 1, 2)]


def test_a_policy_that_keeps_minutes_shorter_than_full_rate_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least as long"):
        RetentionPolicy(full_rate_days=30, downsampled_days=7)
    with pytest.raises(ConfigError, match=">= 0"):
        RetentionPolicy(full_rate_days=-1)


def test_carcloud_retention_expires_a_sqlite_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "carcloud.db"
    today = day_start(now_us())

    async def fill() -> None:
        stores = sqlite_stores(db)
        await stores.open()
        await stores.registry.create_brand("volta", "Volta")
        await stores.registry.create_vehicle(VIN, "volta", "E1", 2025, [], "scrypt$h")
        batch = [
            TelemetryMessage(VIN, seq, ts, ts, (Sample("Vehicle.Speed", ts, 50.0),))
            for seq, ts in enumerate((today - 10 * DAY_US, today - 5 * DAY_US, today), 1)
        ]
        await stores.telemetry.write_telemetry(batch, [])
        await stores.close()

    async def count() -> int:
        stores = sqlite_stores(db)
        await stores.open()
        try:
            return await stores.telemetry.count_samples(VIN)
        finally:
            await stores.close()

    asyncio.run(fill())
    code = main(["retention", "--database", f"sqlite:///{db}", "--retention-days", "3", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["retention"]["full_rate_from"] == today - 3 * DAY_US
    assert report["retention"]["rows_deleted"] == 2
    assert asyncio.run(count()) == 1

    refused = main(
        ["retention", "--database", f"sqlite:///{db}", "--retention-days", "9",
         "--downsampled-retention-days", "3"]
    )  # fmt: skip
    assert refused == 2
    assert "at least as long" in capsys.readouterr().err
