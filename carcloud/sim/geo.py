"""Small geodesy helpers: great-circle distance, bearing, and a local metric projection."""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG), the usual sphere for haversine distances."""

# Meters per degree of latitude on the mean sphere; longitude scales with cos(latitude).
METERS_PER_DEG_LAT = math.pi * EARTH_RADIUS_M / 180.0


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in meters between two WGS 84 points."""
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing from point 1 to point 2, degrees clockwise from north in [0, 360)."""
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    dlmb = math.radians(lon2 - lon1)
    y = math.sin(dlmb) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlmb)
    bearing = math.degrees(math.atan2(y, x)) % 360.0
    # -0.0 % 360 is 0.0, but a tiny negative angle rounds to 360.0: fold it back.
    return 0.0 if bearing >= 360.0 else bearing


def turn_angle_deg(heading_in: float, heading_out: float) -> float:
    """Signed change of heading in (-180, 180]: positive is a right turn."""
    delta = (heading_out - heading_in + 180.0) % 360.0 - 180.0
    return 180.0 if delta == -180.0 else delta


class LocalProjection:
    """An equirectangular projection around a center: good to centimeters over a city."""

    __slots__ = ("lat0", "lon0", "_m_per_deg_lon")

    def __init__(self, lat0: float, lon0: float) -> None:
        self.lat0 = lat0
        self.lon0 = lon0
        self._m_per_deg_lon = METERS_PER_DEG_LAT * math.cos(math.radians(lat0))

    def to_xy(self, lat: float, lon: float) -> tuple[float, float]:
        """WGS 84 degrees to meters east (x) and north (y) of the center."""
        return (lon - self.lon0) * self._m_per_deg_lon, (lat - self.lat0) * METERS_PER_DEG_LAT

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        """Meters east/north of the center back to WGS 84 degrees."""
        return self.lat0 + y / METERS_PER_DEG_LAT, self.lon0 + x / self._m_per_deg_lon


def distance_to_segment_m(
    lat: float, lon: float, lat_a: float, lon_a: float, lat_b: float, lon_b: float
) -> float:
    """Distance in meters from a point to the straight segment A-B (all in WGS 84 degrees)."""
    projection = LocalProjection(lat_a, lon_a)
    px, py = projection.to_xy(lat, lon)
    bx, by = projection.to_xy(lat_b, lon_b)
    length_sq = bx * bx + by * by
    t = 0.0 if length_sq == 0.0 else max(0.0, min(1.0, (px * bx + py * by) / length_sq))
    return math.hypot(px - t * bx, py - t * by)
