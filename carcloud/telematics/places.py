"""Where a trip starts and ends, by name, and which geofences a charging session is in.

A trip's start and end are named by the brand's geofence that contains the position
(the oldest fence, if several do), else by a named place of the vehicle's current
driver ("home", "work", ... from the drivers slice) within `PLACE_RADIUS_M`, else not
at all. The telematics slice reads fences and drivers through `PlaceSource`, which
`ServicePlaces` answers from the geofences and drivers services (wired in
`carcloud/services.py`), so the slices stay apart.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Protocol

from carcloud.errors import NotFoundError, ValidationError
from carcloud.telematics.models import DRIVER_PLACE, GEOFENCE, PlaceRef, Trip
from carcloud.telematics.tariffs import Tariff
from carcloud.telematics.timeline import Position, distance_km

# A driver's place is a point: a trip that ends within this distance of it ends there.
PLACE_RADIUS_M = 150.0
# A vehicle's current driver (and their places) changed elsewhere is seen after this long.
DRIVER_CACHE_S = 5.0


class Fence(Protocol):
    """A brand's geofence, as the geofences slice has it."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    def contains(self, position: Position) -> bool:
        """Whether the position is inside the shape (no margin)."""
        ...


class PlaceSource(Protocol):
    """Fences of a brand and the named places of a vehicle's driver."""

    async def brand_fences(self, brand: str) -> Sequence[Fence]:
        """The brand's geofences, oldest first."""
        ...

    async def find_fence(self, brand: str, geofence_id: str) -> Fence | None:
        """One geofence of the brand; None if there is none with that id in that brand."""
        ...

    async def driver_places(self, vin: str, brand: str) -> Sequence[tuple[str, Position]]:
        """(name, position) of the places of the vehicle's current driver; none without one."""
        ...


def fence_at(fences: Sequence[Fence], position: Position | None) -> PlaceRef | None:
    """The first fence (oldest) that contains the position."""
    if position is None:
        return None
    for fence in fences:
        if fence.contains(position):
            return PlaceRef(GEOFENCE, fence.name, fence.id)
    return None


def spot_at(spots: Sequence[tuple[str, Position]], position: Position) -> PlaceRef | None:
    """The nearest named place within PLACE_RADIUS_M."""
    near = [
        (distance_km(where, position) * 1000, name)
        for name, where in spots
        if distance_km(where, position) * 1000 <= PLACE_RADIUS_M
    ]
    return PlaceRef(DRIVER_PLACE, min(near)[1]) if near else None


async def name_trip_ends(
    source: PlaceSource | None, vin: str, brand: str, trips: Sequence[Trip]
) -> list[Trip]:
    """The trips with the place at each end (a trip under way: its start only).

    The driver's places are read only when a fence does not name an end.
    """
    if source is None or not trips:
        return list(trips)
    fences = await source.brand_fences(brand)
    spots: Sequence[tuple[str, Position]] | None = None
    named: list[Trip] = []
    for trip in trips:
        ends: list[PlaceRef | None] = []
        for position in (trip.start_position, trip.end_position if trip.completed else None):
            place = fence_at(fences, position)
            if place is None and position is not None:
                if spots is None:
                    spots = await source.driver_places(vin, brand)
                place = spot_at(spots, position)
            ends.append(place)
        named.append(dataclasses.replace(trip, start_place=ends[0], end_place=ends[1]))
    return named


class FenceLookup(Protocol):
    """The geofences service, as far as naming places needs it."""

    async def brand_fences(self, brand: str) -> Sequence[Fence]: ...

    async def get_geofence(self, geofence_id: str, brand: str | None) -> Fence: ...


class _Driver(Protocol):
    @property
    def places(self) -> Sequence[_NamedPoint]: ...


class _NamedPoint(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def lat(self) -> float: ...

    @property
    def lon(self) -> float: ...


class DriverLookup(Protocol):
    """The drivers service, as far as naming places needs it."""

    async def vehicle_driver(self, vin: str, brand: str | None) -> _Driver | None: ...


class ServicePlaces:
    """PlaceSource over the geofences and drivers services."""

    def __init__(self, fences: FenceLookup, drivers: DriverLookup | None = None) -> None:
        self.fences = fences
        self.drivers = drivers
        self._spots: dict[str, tuple[float, list[tuple[str, Position]]]] = {}

    async def brand_fences(self, brand: str) -> Sequence[Fence]:
        return await self.fences.brand_fences(brand)

    async def find_fence(self, brand: str, geofence_id: str) -> Fence | None:
        try:
            return await self.fences.get_geofence(geofence_id, brand)
        except NotFoundError:
            return None

    async def driver_places(self, vin: str, brand: str) -> Sequence[tuple[str, Position]]:
        if self.drivers is None:
            return []
        cached = self._spots.get(vin)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            driver = await self.drivers.vehicle_driver(vin, brand)
        except NotFoundError:
            driver = None
        spots = (
            [(p.name, Position(p.lat, p.lon)) for p in driver.places] if driver is not None else []
        )
        self._spots[vin] = (time.monotonic() + DRIVER_CACHE_S, spots)
        if len(self._spots) > 10_000:
            self._spots.pop(next(iter(self._spots)))
        return spots


async def tariff_fences(
    source: PlaceSource | None, brand: str, tariffs: Sequence[Tariff]
) -> Sequence[Fence]:
    """The brand's geofences when one of its tariffs is attached to a geofence, else none."""
    if source is None or not any(tariff.geofence_id for tariff in tariffs):
        return []
    return await source.brand_fences(brand)


async def check_tariff_place(source: PlaceSource | None, tariff: Tariff) -> None:
    """422 naming `geofence_id` when the tariff's geofence is not one of its brand's."""
    if tariff.geofence_id is None:
        return
    if source is None or await source.find_fence(tariff.brand, tariff.geofence_id) is None:
        raise ValidationError(
            f"geofence_id: no geofence {tariff.geofence_id!r} of brand {tariff.brand!r}"
        )
