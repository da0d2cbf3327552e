"""The `productivity` worker: refreshes every driven car's leave-by, cards and
pre-conditioning every few seconds, so plans follow the car as it moves and the
calendars as they sync.

Several copies may run: a card is recorded once per key and car before it is sent, so
two workers racing on one car send it once; pre-conditioning commands carry an
idempotency key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping

from carcloud.errors import CarcloudError, ConfigError
from carcloud.productivity.demonetwork import DemoNetworkRouter
from carcloud.productivity.routeservice import RouteService, RoutingSettings
from carcloud.productivity.routing import Router, RouterChain, StraightLineRouter
from carcloud.productivity.service import ProductivityService

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 5.0


def refresh_interval_s(environ: Mapping[str, str] = os.environ) -> float:
    """CARCLOUD_PRODUCTIVITY_INTERVAL_S: seconds between two refreshes of a car (5)."""
    raw = environ.get("CARCLOUD_PRODUCTIVITY_INTERVAL_S", "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0.2 <= value <= 3600:
        raise ConfigError(f"CARCLOUD_PRODUCTIVITY_INTERVAL_S must be 0.2 to 3600, not {raw!r}")
    return value


def build_router(settings: RoutingSettings) -> RouterChain:
    """The configured routing service, else the simulator's city networks; the straight
    line × detour factor when neither covers a trip."""
    routers: list[Router] = (
        [RouteService(settings)] if settings.url is not None else [DemoNetworkRouter()]
    )
    return RouterChain(routers, StraightLineRouter(detour_factor=settings.detour_factor))


class ProductivityWorker:
    """Refreshes each driven car in turn; a failing car is logged once, others go on."""

    def __init__(self, service: ProductivityService, interval_s: float | None = None) -> None:
        self.service = service
        self.interval_s = refresh_interval_s() if interval_s is None else interval_s
        self._failing: set[str] = set()
        self.refreshes = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh until `stop` is set."""
        log.info("productivity: leave-by, cards and pre-conditioning every %.1f s", self.interval_s)
        while not stop.is_set():
            await self.refresh_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)

    async def refresh_all(self) -> None:
        """One pass over the driven cars."""
        try:
            vins = await self.service.driven_vehicles()
        except CarcloudError as exc:
            log.warning("productivity: cannot list driven vehicles: %s", exc)
            return
        for vin in vins:
            try:
                await self.service.refresh(vin)
            except CarcloudError as exc:
                if vin not in self._failing:
                    log.warning("productivity: %s fails: %s", vin, exc)
                    self._failing.add(vin)
                continue
            if vin in self._failing:
                log.info("productivity: %s works again", vin)
                self._failing.discard(vin)
            self.refreshes += 1
