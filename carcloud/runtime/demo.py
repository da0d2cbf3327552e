"""`carcloud demo`: the platform on its embedded default plus a simulated multi-brand fleet,
a few of whose cars have a driver with a calendar the demo serves (see democalendars)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from carcloud.client import ApiClient
from carcloud.config import DEMO_WARMUP_S, Settings
from carcloud.runtime.democalendars import (
    DEMO_DRIVERS,
    DemoDriver,
    DemoFeed,
    chosen_cars,
    give_drivers,
)
from carcloud.runtime.platform import Started, run_up
from carcloud.sim.runner import SimulatedCar
from carcloud.sim.session import SimulationOptions, cars_for, prepare, run_shard
from carcloud_agent.carside import follow_navigation
from carcloud_agent.protocol.notifications import Notification

log = logging.getLogger(__name__)


def live_page_url(settings: Settings, api_key: str) -> str:
    """The fleet page; the key travels in the fragment, which browsers never send to servers."""
    return f"{settings.http_url}/#key={api_key}"


def headunit_url(settings: Settings, api_key: str, vin: str) -> str:
    """What a car's screen shows (next meeting, leave-by countdown, cards)."""
    return f"{settings.http_url}/headunit/{vin}#key={api_key}"


def allow_feed(prefix: str) -> None:
    """Let the calendar sync of this process fetch the demo's feed, and only it: the
    private-address policy stays closed for every other URL."""
    known = os.environ.get("CARCLOUD_CALENDAR_ALLOW_URLS", "").strip()
    os.environ["CARCLOUD_CALENDAR_ALLOW_URLS"] = f"{known},{prefix}" if known else prefix


def _watch_cards(car: SimulatedCar, seen: Callable[[str, Notification], None]) -> None:
    """Tell `seen` about each card the simulated car shows; its driver still follows a
    time-to-leave card's Navigate target."""
    vehicle = car.vehicle

    def shown(card: Notification) -> None:
        follow_navigation(vehicle, card)
        seen(vehicle.vin, card)

    assert car.side is not None
    car.side.on_card = shown


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
    drivers: int = DEMO_DRIVERS,
    on_drivers: Callable[[list[DemoDriver]], None] | None = None,
    on_card: Callable[[str, Notification], None] | None = None,
) -> None:
    """Run the platform and drive a fleet of three brands against it until Ctrl-C; give
    `drivers` of its cars a driver with a calendar (`on_drivers` hears which, `on_card`
    each card such a car shows)."""
    feed = DemoFeed()
    await feed.start()
    allow_feed(feed.prefix)

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
        cars = cars_for(fleet, credentials, seed)
        chosen = chosen_cars(fleet, drivers) if drivers > 0 else []
        if chosen:
            with ApiClient(settings.http_url, started.operator_key) as api:
                made = await asyncio.to_thread(give_drivers, api, feed, chosen)
            if on_card is not None:
                for car in cars:
                    if car.vin in feed.networks:
                        _watch_cards(car, on_card)
            if on_drivers is not None:
                on_drivers(made)
        await run_shard(options, cars, stop)

    try:
        await run_up(settings, on_ready, drive)
    finally:
        await feed.close()
