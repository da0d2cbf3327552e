"""Fence shapes, validation, and visit detection with hysteresis: pure, no platform."""

from __future__ import annotations

import pytest

from carcloud.errors import ValidationError
from carcloud.geofences.models import Geofence
from carcloud.geofences.visits import detect_visits
from tests.geofences.track import CENTER, SECOND, drive_through, north

VIN = "WVWZZZ1JZXW000001"


def circle(radius_m: float = 200.0, margin_m: float = 25.0, dwell_s: float = 30.0) -> Geofence:
    return Geofence("gfn_1", "volta", "depot", "circle", (CENTER,), radius_m=radius_m,
                    margin_m=margin_m, min_dwell_s=dwell_s)  # fmt: skip


def test_distances_of_each_shape() -> None:
    fence = circle()
    assert fence.area.distance_m(north(150)) == pytest.approx(-50, abs=0.5)
    assert fence.area.distance_m(north(260)) == pytest.approx(60, abs=0.5)
    corners = (north(-100, -100), north(-100, 100), north(100, 100), north(100, -100))
    square = Geofence("g", "volta", "sq", "polygon", corners)
    assert square.area.distance_m(CENTER) == pytest.approx(-100, abs=0.5)
    assert square.area.distance_m(north(0, 130)) == pytest.approx(30, abs=0.5)
    assert square.contains(north(99, 99)) and not square.contains(north(101, 0))
    road = Geofence("g", "volta", "road", "corridor", (north(0, -1000), north(0, 1000)), width_m=40)
    assert road.area.distance_m(north(15, 500)) == pytest.approx(-5, abs=0.5)
    assert road.area.distance_m(north(30, 0)) == pytest.approx(10, abs=0.5)
    assert road.area.distance_m(north(0, 1030)) == pytest.approx(10, abs=0.5)  # past its end


POLYGON: dict[str, object] = {"shape": "polygon", "radius_m": None}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({**POLYGON, "points": (north(0, 0), north(100, 100), north(0, 100), north(100, 0))},
         "points: the polygon is self-intersecting"),
        ({**POLYGON, "points": (north(0), north(10))}, "points: a polygon needs 3"),
        ({**POLYGON, "points": (north(0), north(10), north(20))}, "the polygon has no area"),
        ({"radius_m": 0}, "radius_m must be > 0"),
        ({"radius_m": None}, "radius_m must be a number"),
        ({"margin_m": -1}, "margin_m must be >= 0"),
        ({"min_dwell_s": float("nan")}, "min_dwell_s must be a number"),
        ({"shape": "corridor", "points": (north(0), north(500)), "radius_m": None}, "width_m"),
        ({"shape": "hexagon"}, "shape must be one of"),
        ({"name": " "}, "name must be"),
    ],
)  # fmt: skip
def test_invalid_fences_name_the_field(changes: dict[str, object], field: str) -> None:
    base: dict[str, object] = {"id": "g", "brand": "volta", "name": "x", "shape": "circle",
                               "points": (CENTER,), "radius_m": 100.0}  # fmt: skip
    with pytest.raises(ValidationError, match=field):
        Geofence(**{**base, **changes})  # type: ignore[arg-type]


def test_a_closed_ring_is_accepted_without_its_repeated_point() -> None:
    ring = (north(0, 0), north(0, 100), north(100, 100), north(0, 0))
    assert len(Geofence("g", "volta", "tri", "polygon", ring).points) == 3


def test_jitter_at_the_edge_gives_one_enter_and_one_exit() -> None:
    fixes = drive_through(jitter_m=15)
    naive = circle(margin_m=0, dwell_s=0)
    assert len(detect_visits(VIN, naive, fixes)) > 3  # what drift does without hysteresis
    [visit] = detect_visits(VIN, circle(), fixes)
    assert visit.exit_ts is not None
    # Entered during the creep along the northern edge, left on the southern one.
    assert 1_080 * SECOND <= visit.enter_ts <= 1_200 * SECOND
    assert 1_575 * SECOND <= visit.exit_ts <= 1_700 * SECOND
    assert 400 < visit.dwell_s < 700


def test_a_short_excursion_is_no_visit_and_a_long_one_is() -> None:
    fence = circle(dwell_s=30)
    inside_for = [(i * SECOND, north(500 if not 10 <= i < 30 else 0)) for i in range(100)]
    assert detect_visits(VIN, fence, inside_for) == []  # 20 s inside < 30 s dwell
    longer = [(i * SECOND, north(500 if not 10 <= i < 50 else 0)) for i in range(100)]
    [visit] = detect_visits(VIN, fence, longer)
    assert (visit.enter_ts, visit.exit_ts) == (10 * SECOND, 50 * SECOND)
    assert visit.dwell_s == 40


def test_resuming_an_open_visit_gives_what_a_whole_run_gives() -> None:
    fixes = drive_through(jitter_m=15, seed=3)
    whole = detect_visits(VIN, circle(), fixes)
    cut = 1_400 * SECOND  # parked inside
    [open_visit] = detect_visits(VIN, circle(), [f for f in fixes if f[0] < cut])
    assert open_visit.inside and open_visit.last_ts == cut - SECOND
    resumed = detect_visits(VIN, circle(), [f for f in fixes if f[0] > open_visit.last_ts],
                            open_visit)  # fmt: skip
    assert resumed == whole
