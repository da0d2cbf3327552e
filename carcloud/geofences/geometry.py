"""Plane geometry of a fence, in metres around the fence's own first point.

A fence is at most tens of kilometres across, so an equirectangular projection
around its first point is accurate to well under a metre there; every distance
below is computed in that plane. `Area.distance_m` is signed: negative inside.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from carcloud.telematics.timeline import EARTH_RADIUS_KM, Position, distance_km

METRES_PER_DEGREE = EARTH_RADIUS_KM * 1000 * math.pi / 180

Point = tuple[float, float]  # (x east, y north) in metres


def project(origin: Position, position: Position) -> Point:
    """A position as metres east and north of `origin`."""
    scale = math.cos(math.radians(origin.lat))
    return (
        (position.lon - origin.lon) * METRES_PER_DEGREE * scale,
        (position.lat - origin.lat) * METRES_PER_DEGREE,
    )


def segment_distance(p: Point, a: Point, b: Point) -> float:
    """Distance from p to the segment a-b."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length2 = dx * dx + dy * dy
    t = (
        0.0
        if length2 == 0
        else max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2))
    )
    return math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy)


def inside_polygon(p: Point, ring: Sequence[Point]) -> bool:
    """Ray casting: whether p is inside the closed ring."""
    inside = False
    x, y = p
    j = len(ring) - 1
    for i in range(len(ring)):
        (xi, yi), (xj, yj) = ring[i], ring[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _orientation(a: Point, b: Point, c: Point) -> int:
    value = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    return 0 if abs(value) < 1e-9 else (1 if value > 0 else -1)


def _on_segment(a: Point, b: Point, p: Point) -> bool:
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def segments_cross(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether segments a-b and c-d touch or cross (collinear overlap included)."""
    o1, o2, o3, o4 = (
        _orientation(a, b, c),
        _orientation(a, b, d),
        _orientation(c, d, a),
        (_orientation(c, d, b)),
    )
    if o1 != o2 and o3 != o4:
        return True
    return (
        (o1 == 0 and _on_segment(a, b, c))
        or (o2 == 0 and _on_segment(a, b, d))
        or (o3 == 0 and _on_segment(c, d, a))
        or (o4 == 0 and _on_segment(c, d, b))
    )


def self_intersection(ring: Sequence[Point]) -> tuple[int, int] | None:
    """The first pair of non-adjacent edges of a closed ring that touch (edge i: i to i+1)."""
    count = len(ring)
    for i in range(count):
        a, b = ring[i], ring[(i + 1) % count]
        for j in range(i + 2, count):
            if i == 0 and j == count - 1:
                continue  # the first and last edges share the first point
            if segments_cross(a, b, ring[j], ring[(j + 1) % count]):
                return i, j
    return None


def ring_area(ring: Sequence[Point]) -> float:
    """The unsigned area of a closed ring (shoelace)."""
    total = 0.0
    for i in range(len(ring)):
        (x1, y1), (x2, y2) = ring[i], ring[(i + 1) % len(ring)]
        total += x1 * y2 - x2 * y1
    return abs(total) / 2


@dataclass(frozen=True, slots=True)
class Area:
    """A fence's shape ready for distance queries: kind, points in metres, size."""

    shape: str
    origin: Position
    points: tuple[Point, ...]
    radius_m: float = 0.0  # circle: its radius; corridor: half its width
    reach_m: float = 0.0  # no point of the shape is farther than this from `origin`

    @classmethod
    def of(
        cls, shape: str, points: Sequence[Position], radius_m: float | None, width_m: float | None
    ) -> Area:
        """The area of a validated fence shape."""
        origin = points[0]
        projected = tuple(project(origin, p) for p in points)
        radius = float(radius_m or 0.0) if shape == "circle" else float(width_m or 0.0) / 2
        reach = max(math.hypot(x, y) for x, y in projected) + radius
        return cls(shape, origin, projected, radius, reach)

    def side(self, position: Position, margin_m: float) -> int:
        """1 inside, -1 more than `margin_m` outside, 0 in the band between.

        A position far from the whole shape is out at the cost of one projection,
        so a brand's many fences cost little where the car is not.
        """
        x, y = project(self.origin, position)
        if math.hypot(x, y) - self.reach_m > margin_m * 1.01 + 1.0:  # the plane's error, covered
            return -1
        distance = self.distance_m(position)
        return 1 if distance <= 0 else (-1 if distance > margin_m else 0)

    def distance_m(self, position: Position) -> float:
        """Metres from the edge: negative inside, positive outside."""
        if self.shape == "circle":
            return distance_km(self.origin, position) * 1000 - self.radius_m
        p = project(self.origin, position)
        if self.shape == "corridor":
            if len(self.points) == 1:
                return math.hypot(*p) - self.radius_m
            edge = min(
                segment_distance(p, a, b)
                for a, b in zip(self.points, self.points[1:], strict=False)
            )
            return edge - self.radius_m
        ring = self.points
        edge = min(
            segment_distance(p, ring[i], ring[(i + 1) % len(ring)]) for i in range(len(ring))
        )
        return -edge if inside_polygon(p, ring) else edge
