"""Geofences and visits. Times are epoch microseconds in the car's own time (`ts`).

A fence is a circle (a centre and a radius), a polygon (a simple ring of points)
or a corridor (a polyline with a width, e.g. a delivery route). Its hysteresis
keeps GPS drift from flapping: a car is *in* when its position is inside the
shape, *out* only when it is more than `margin_m` outside it, and a change
counts only once it has lasted `min_dwell_s`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from carcloud.errors import ValidationError
from carcloud.geofences.geometry import Area, project, ring_area, self_intersection
from carcloud.telematics.timeline import Position
from carcloud.timeutil import format_us

SECOND = 1_000_000
SHAPES = ("circle", "polygon", "corridor")
MAX_POINTS = 1_000
MAX_SIZE_M = 100_000.0


def _number(value: object, name: str, low: float, high: float, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"{name} must be a number, not {value!r}")
    if value > high or value < low or (low_open and value == low):
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        raise ValidationError(f"{name} must be {bound} and <= {high:g}, not {value!r}")
    return float(value)


def check_position(lat: object, lon: object, name: str) -> Position:
    """A WGS84 position; ValidationError naming `name` otherwise."""
    _number(lat, f"{name}.lat", -90.0, 90.0)
    _number(lon, f"{name}.lon", -180.0, 180.0)
    return Position(float(lat), float(lon))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Geofence:
    """A brand's fence, validated on creation (errors name the field)."""

    id: str
    brand: str
    name: str
    shape: str
    points: tuple[Position, ...]  # circle: its centre only
    radius_m: float | None = None  # circle
    width_m: float | None = None  # corridor: the whole width, centred on the line
    margin_m: float = 25.0
    min_dwell_s: float = 30.0
    created_at: int = 0
    updated_at: int = 0
    area: Area = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or len(self.name) > 100:
            raise ValidationError("name must be 1 to 100 characters")
        if self.shape not in SHAPES:
            raise ValidationError(f"shape must be one of {', '.join(SHAPES)}, not {self.shape!r}")
        _number(self.margin_m, "margin_m", 0.0, 10_000.0)
        _number(self.min_dwell_s, "min_dwell_s", 0.0, 86_400.0)
        if self.shape == "circle":
            self._check_circle()
        elif self.shape == "polygon":
            self._check_polygon()
        else:
            self._check_corridor()
        area = Area.of(self.shape, self.points, self.radius_m, self.width_m)
        object.__setattr__(self, "area", area)

    def _check_circle(self) -> None:
        if len(self.points) != 1:
            raise ValidationError("center: a circle needs its center")
        _number(self.radius_m, "radius_m", 0.0, MAX_SIZE_M, low_open=True)
        if self.width_m is not None:
            raise ValidationError("width_m: only a corridor has a width")

    def _check_points(self, least: int) -> None:
        if not least <= len(self.points) <= MAX_POINTS:
            raise ValidationError(
                f"points: a {self.shape} needs {least} to {MAX_POINTS} points, "
                f"not {len(self.points)}"
            )
        if self.radius_m is not None:
            raise ValidationError("radius_m: only a circle has a radius")
        origin = self.points[0]
        for index, position in enumerate(self.points):
            x, y = project(origin, position)
            if math.hypot(x, y) > MAX_SIZE_M:
                raise ValidationError(
                    f"points[{index}] is more than {MAX_SIZE_M / 1000:g} km from points[0]"
                )

    def _check_polygon(self) -> None:
        points = self.points
        if len(points) > 3 and points[0] == points[-1]:
            points = points[:-1]  # a closed ring, GeoJSON style
            object.__setattr__(self, "points", points)
        self._check_points(3)
        if self.width_m is not None:
            raise ValidationError("width_m: only a corridor has a width")
        ring = [project(points[0], p) for p in points]
        crossing = self_intersection(ring)
        if crossing is not None:
            i, j = crossing
            raise ValidationError(
                f"points: the polygon is self-intersecting (edge points[{i}]–points"
                f"[{(i + 1) % len(ring)}] meets edge points[{j}]–points[{(j + 1) % len(ring)}])"
            )
        if ring_area(ring) < 1.0:
            raise ValidationError("points: the polygon has no area")

    def _check_corridor(self) -> None:
        self._check_points(2)
        _number(self.width_m, "width_m", 0.0, 10_000.0, low_open=True)

    @property
    def center(self) -> Position | None:
        """A circle's centre."""
        return self.points[0] if self.shape == "circle" else None

    def contains(self, position: Position) -> bool:
        """Whether a position is inside the shape (no margin)."""
        return self.area.distance_m(position) <= 0


def visit_id(vin: str, geofence_id: str, enter_ts: int) -> str:
    """A stable id for a visit: re-deriving it from the same history keeps it."""
    digest = hashlib.sha256(f"{vin}:{geofence_id}:{enter_ts}".encode()).hexdigest()[:20]
    return f"gfv_{digest}"


@dataclass(frozen=True, slots=True)
class Visit:
    """A car's stay in a fence: entered, and exited (None while it is still inside)."""

    id: str
    geofence_id: str
    vin: str
    enter_ts: int
    exit_ts: int | None
    last_ts: int  # the newest position of the stay (the exit time once exited)

    @property
    def inside(self) -> bool:
        return self.exit_ts is None

    @property
    def dwell_s(self) -> float:
        """Time inside: to the exit, or to the newest position while still inside."""
        end = self.exit_ts if self.exit_ts is not None else self.last_ts
        return (end - self.enter_ts) / SECOND


def _point(position: Position) -> dict[str, float]:
    return {"lat": position.lat, "lon": position.lon}


def geofence_document(fence: Geofence) -> dict[str, object]:
    """A fence's one public shape: in the API and in its events."""
    document: dict[str, object] = {"id": fence.id, "brand": fence.brand, "name": fence.name}
    document["shape"] = fence.shape
    if fence.center is not None:
        document["center"] = _point(fence.center)
        document["radius_m"] = fence.radius_m
    else:
        document["points"] = [_point(p) for p in fence.points]
    if fence.shape == "corridor":
        document["width_m"] = fence.width_m
    document.update(
        margin_m=fence.margin_m,
        min_dwell_s=fence.min_dwell_s,
        created_at=format_us(fence.created_at),
        updated_at=format_us(fence.updated_at),
    )
    return document


def visit_document(visit: Visit, fence: Geofence | None = None) -> dict[str, object]:
    """A visit's public shape (with the fence's name and brand where known)."""
    document: dict[str, object] = {
        "id": visit.id,
        "geofence_id": visit.geofence_id,
        "vin": visit.vin,
        "entered_at": format_us(visit.enter_ts),
        "exited_at": format_us(visit.exit_ts) if visit.exit_ts is not None else None,
        "dwell_s": round(visit.dwell_s, 1),
        "inside": visit.inside,
    }
    if fence is not None:
        document["geofence_name"] = fence.name
    return document


def positions_of(points: Sequence[tuple[object, object]], name: str) -> tuple[Position, ...]:
    """(lat, lon) pairs as positions; errors name the item (`points[2].lat`)."""
    return tuple(check_position(lat, lon, f"{name}[{i}]") for i, (lat, lon) in enumerate(points))
