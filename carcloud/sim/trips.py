"""Where a simulated driver goes next, and how long they stay: commuters and delivery rounds."""

from __future__ import annotations

import random
from typing import Literal

from carcloud.sim.roads import Place, PlaceKind, RoadNetwork

__all__ = ["ALIGHTING", "BOARDING", "DRIVING", "PARKED", "PHASE_NAMES", "TripPlanner", "Usage"]

Usage = Literal["commuter", "delivery"]

# The phases a car cycles through between trips.
PARKED, BOARDING, DRIVING, ALIGHTING = 0, 1, 2, 3
PHASE_NAMES = ("parked", "boarding", "driving", "alighting")

# Minutes parked at each kind of place (uniform between the bounds).
_DWELL_MIN: dict[tuple[Usage, str], tuple[float, float]] = {
    ("commuter", "home"): (30.0, 240.0),
    ("commuter", "office"): (45.0, 240.0),
    ("commuter", "shop"): (10.0, 60.0),
    ("commuter", "leisure"): (30.0, 150.0),
    ("commuter", "custom"): (10.0, 90.0),
    ("delivery", "depot"): (20.0, 120.0),
    ("delivery", "shop"): (3.0, 12.0),
    ("delivery", "office"): (3.0, 12.0),
    ("delivery", "custom"): (5.0, 20.0),
}
_DEFAULT_DWELL_MIN = (10.0, 60.0)
_COMMUTER_KINDS: tuple[tuple[PlaceKind, float], ...] = (
    ("office", 0.40),
    ("shop", 0.35),
    ("leisure", 0.25),
)


class TripPlanner:
    """Picks destinations for one vehicle: commuters shuttle between home and errands,
    delivery vans run rounds of 3-7 stops out of their depot."""

    __slots__ = ("_network", "_rng", "_stops_left", "home", "usage")

    def __init__(self, network: RoadNetwork, rng: random.Random, home: Place, usage: Usage) -> None:
        self._network = network
        self._rng = rng
        self.home = home
        self.usage = usage
        self._stops_left = 0

    def next_destination(self, here: int) -> Place:
        """The next place to drive to from intersection ``here`` (never ``here`` itself)."""
        rng = self._rng
        if self.usage == "delivery":
            if self._stops_left <= 0:
                if here != self.home.node:
                    return self.home
                self._stops_left = rng.randint(3, 7)
            self._stops_left -= 1
            kind: PlaceKind = "shop" if rng.random() < 0.6 else "office"
        else:
            if here != self.home.node and rng.random() < 0.55:
                return self.home
            draw = rng.random()
            kind = _COMMUTER_KINDS[-1][0]
            for candidate, share in _COMMUTER_KINDS:
                if draw < share:
                    kind = candidate
                    break
                draw -= share
        options = [p for p in self._network.places_of(kind) if p.node != here]
        if not options:
            return self.home
        return rng.choice(options)

    def dwell_s(self, place: Place) -> float:
        """How long the driver stays parked at ``place``, in seconds."""
        low, high = _DWELL_MIN.get((self.usage, place.kind), _DEFAULT_DWELL_MIN)
        return 60.0 * self._rng.uniform(low, high)

    def passengers(self) -> int:
        """How many people ride along with the driver on the next trip."""
        if self.usage == "delivery":
            return 0
        draw = self._rng.random()
        return 0 if draw < 0.6 else 1 if draw < 0.85 else 2 if draw < 0.95 else 3
