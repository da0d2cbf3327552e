"""`carcloud demo`: the platform on its embedded default plus a simulated multi-brand fleet."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from carcloud.config import DEMO_WARMUP_S, Settings
from carcloud.runtime.platform import Started, run_up
from carcloud.sim.session import SimulationOptions, cars_for, prepare, run_shard

log = logging.getLogger(__name__)


def live_page_url(settings: Settings, api_key: str) -> str:
    """The fleet page; the key travels in the fragment, which browsers never send to servers."""
    return f"{settings.http_url}/#key={api_key}"


async def run_demo(
    settings: Settings,
    vehicles: int = 60,
    seed: int = 7,
    rate: float = 1.0,
    speedup: float = 1.0,
    gaps_per_hour: float = 2.0,
    warmup_s: float = DEMO_WARMUP_S,
    on_ready: Callable[[Started], None] | None = None,
    on_fleet: Callable[[int], None] | None = None,
) -> None:
    """Run the platform and drive a fleet of three brands against it until Ctrl-C."""

    async def drive(started: Started, stop: asyncio.Event) -> None:
        assert started.operator_key is not None, "the demo needs a fresh data dir"
        options = SimulationOptions(
            api_url=settings.http_url,
            api_key=started.operator_key,
            mqtt_host=settings.host,
            mqtt_port=settings.mqtt_port,
            vehicles=vehicles,
            seed=seed,
            rate=rate,
            speedup=speedup,
            gaps_per_hour=gaps_per_hour,
            warmup_s=warmup_s,
            credentials_file=settings.data_dir / "sim-credentials.json",
        )
        fleet, credentials = await asyncio.to_thread(prepare, options)
        log.info("demo fleet of %d vehicles registered; driving", len(fleet))
        if on_fleet is not None:
            on_fleet(len(fleet))
        await run_shard(options, cars_for(fleet, credentials, seed), stop)

    await run_up(settings, on_ready, drive)
