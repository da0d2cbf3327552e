"""Where a meeting is: coordinates from the event itself or from the driver's places.

In order: the event's GEO; Apple's structured location (`geo:` URI); a place of the
driver whose name or address is the location text ("Home", "work", "Office Berlin").
Other free text goes to `carcloud.calendars.geocoding` (the demo cities' places, then a
Nominatim-compatible geocoder).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import icalendar

from carcloud.drivers.models import Driver

_GEO_URI = re.compile(r"geo:\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)")


@dataclass(frozen=True, slots=True)
class Coordinates:
    """A meeting's position and where it came from (geo, apple, place:NAME, geocoder)."""

    lat: float
    lon: float
    source: str

    def document(self) -> dict[str, float | str]:
        """The JSON form."""
        return {"lat": self.lat, "lon": self.lon, "source": self.source}


def _valid(lat: float, lon: float) -> bool:
    return -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0


def event_coordinates(event: icalendar.Event) -> Coordinates | None:
    """Coordinates the event carries itself."""
    geo = event.get("GEO")
    if geo is not None:
        lat, lon = float(geo.latitude), float(geo.longitude)
        if _valid(lat, lon):
            return Coordinates(lat, lon, "geo")
    apple = event.get("X-APPLE-STRUCTURED-LOCATION")
    match = _GEO_URI.search(str(apple)) if apple is not None else None
    if match is not None:
        lat, lon = float(match.group(1)), float(match.group(2))
        if _valid(lat, lon):
            return Coordinates(lat, lon, "apple")
    return None


def place_coordinates(location: str | None, driver: Driver) -> Coordinates | None:
    """A place of the driver named (or addressed) as the location says."""
    if not location:
        return None
    text = " ".join(location.split()).casefold()
    for place in driver.places:
        names = {" ".join(place.name.split()).casefold()}
        if place.address:
            names.add(" ".join(place.address.split()).casefold())
        if text in names:
            return Coordinates(place.lat, place.lon, f"place:{place.name}")
    return None


def coordinates(event: icalendar.Event, location: str | None, driver: Driver) -> Coordinates | None:
    """The meeting's coordinates from what is known without a geocoder."""
    return event_coordinates(event) or place_coordinates(location, driver)
