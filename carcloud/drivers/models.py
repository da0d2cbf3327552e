"""A driver's profile: name, time zone, places and preferences, validated on creation."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from carcloud.errors import ValidationError
from carcloud.timeutil import format_us

_PLACE_NAME = re.compile(r"[^\x00-\x1f]{1,80}")


def check_timezone(name: str, where: str = "timezone") -> ZoneInfo:
    """The zone of an IANA name such as Europe/Berlin; ValidationError naming the field."""
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        raise ValidationError(f"{where} must be an IANA time zone such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"{where} {name!r} is not an IANA time zone (e.g. Europe/Berlin, America/New_York)"
        ) from None


@dataclass(frozen=True, slots=True)
class Place:
    """A named place of a driver ("home", "work", "Gym"), where meetings may be."""

    name: str
    lat: float
    lon: float
    address: str | None = None

    def check(self, where: str) -> None:
        """ValidationError naming the field, e.g. places[1].lat."""
        if not isinstance(self.name, str) or not _PLACE_NAME.fullmatch(self.name.strip()):
            raise ValidationError(f"{where}.name must be 1 to 80 printable characters")
        for axis, value, limit in (("lat", self.lat, 90.0), ("lon", self.lon, 180.0)):
            if not isinstance(value, int | float) or not math.isfinite(value) or abs(value) > limit:
                raise ValidationError(f"{where}.{axis} must be a number within ±{limit:g}")

    def document(self) -> dict[str, Any]:
        """The JSON form."""
        return {"name": self.name, "lat": self.lat, "lon": self.lon, "address": self.address}


@dataclass(frozen=True, slots=True)
class Preferences:
    """How the car helps this driver: reminders, buffer, pre-conditioning."""

    reminder_lead_min: int = 10
    buffer_min: int = 5
    precondition: bool = False
    precondition_target_c: float = 21.0

    def check(self) -> None:
        """ValidationError naming the field."""
        if not isinstance(self.reminder_lead_min, int) or not 0 <= self.reminder_lead_min <= 240:
            raise ValidationError("preferences.reminder_lead_min must be 0 to 240 minutes")
        if not isinstance(self.buffer_min, int) or not 0 <= self.buffer_min <= 240:
            raise ValidationError("preferences.buffer_min must be 0 to 240 minutes")
        target = self.precondition_target_c
        if not isinstance(target, int | float) or not 15.0 <= target <= 30.0:
            raise ValidationError("preferences.precondition_target_c must be 15 to 30 °C")

    def document(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "reminder_lead_min": self.reminder_lead_min,
            "buffer_min": self.buffer_min,
            "precondition": self.precondition,
            "precondition_target_c": self.precondition_target_c,
        }


@dataclass(frozen=True, slots=True)
class Driver:
    """A person who drives a brand's vehicles; places named "home" and "work" are special."""

    id: str
    brand: str
    name: str
    timezone: str = "UTC"
    places: tuple[Place, ...] = ()
    preferences: Preferences = field(default_factory=Preferences)
    created_at: int = 0
    updated_at: int = 0

    def check(self) -> None:
        """ValidationError naming the first wrong field."""
        if not isinstance(self.name, str) or not _PLACE_NAME.fullmatch(self.name.strip()):
            raise ValidationError("name must be 1 to 80 printable characters")
        check_timezone(self.timezone)
        seen: set[str] = set()
        for index, place in enumerate(self.places):
            place.check(f"places[{index}]")
            key = place.name.strip().casefold()
            if key in seen:
                raise ValidationError(f"places[{index}].name {place.name!r} is given twice")
            seen.add(key)
        self.preferences.check()

    @property
    def zone(self) -> ZoneInfo:
        """The driver's time zone."""
        return ZoneInfo(self.timezone)

    def place(self, name: str) -> Place | None:
        """The driver's place of that name (case and spacing ignored)."""
        key = " ".join(name.split()).casefold()
        return next((p for p in self.places if " ".join(p.name.split()).casefold() == key), None)

    def document(self) -> dict[str, Any]:
        """The JSON form of the API."""
        return {
            "id": self.id,
            "brand": self.brand,
            "name": self.name,
            "timezone": self.timezone,
            "home": _named(self.places, "home"),
            "work": _named(self.places, "work"),
            "places": [place.document() for place in self.places],
            "preferences": self.preferences.document(),
            "created_at": format_us(self.created_at),
            "updated_at": format_us(self.updated_at),
        }


def _named(places: tuple[Place, ...], name: str) -> dict[str, Any] | None:
    found = next((p for p in places if p.name.casefold() == name), None)
    return found.document() if found is not None else None


def places_json(places: tuple[Place, ...]) -> list[dict[str, Any]]:
    """Places as stored (a small list in one column: it is read only with its driver)."""
    return [place.document() for place in places]


def places_of(raw: list[dict[str, Any]]) -> tuple[Place, ...]:
    """Places from their stored form."""
    return tuple(
        Place(str(p["name"]), float(p["lat"]), float(p["lon"]), p.get("address")) for p in raw
    )
