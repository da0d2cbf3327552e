"""The part of a simulated vehicle that carries out remote commands.

`carcloud.sim.commands` checks a command's parameters against its declaration and calls
one of these methods; each answers ``(accepted, reason when refused)`` and changes the
car the way the real one would (a locked car reports its doors locked, climate moves
the cabin toward the target, a charge limit stops charging there).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

from carcloud.sim.body import Body
from carcloud.sim.charging import ChargePort
from carcloud.sim.climate import Cabin
from carcloud.sim.commands import CommandResult, apply_command
from carcloud.sim.driving import RouteFollower
from carcloud.sim.energy import Energy
from carcloud.sim.roads import Place, RoadNetwork, Route
from carcloud.sim.trips import ALIGHTING, BOARDING, DRIVING, PARKED

__all__ = ["RemoteControl"]

_RELOCK_S = 120.0  # cars relock when a remote unlock is not followed by a door opening
_HONK_S = 4.0


class RemoteControl:
    """A mixin of `SimVehicle`: what the car does on each command.

    The names declared below are the vehicle state these methods read and change.
    """

    _t: float
    _rng: random.Random
    _phase: int
    _network: RoadNetwork
    _node: int
    _body: Body
    _cabin: Cabin
    _energy: Energy
    _port: ChargePort | None
    _follower: RouteFollower | None
    _route: Route | None
    _target: Place
    _after_stop: Place | None
    _nav_target: Place | None
    _depart_at: float
    _dc_session: bool
    _refueling: bool
    _climate_until: float
    _honk_until: float
    _lv_charge: float

    def apply_command(self, kind: str, params: Mapping[str, object]) -> tuple[bool, str | None]:
        """Execute a remote command; returns (accepted, reason when refused)."""
        return apply_command(self, kind, params)

    def lock(self) -> CommandResult:
        """Lock all doors and the trunk (refused while something is open)."""
        return self._body.lock()

    def unlock(self) -> CommandResult:
        """Unlock all doors; the car relocks itself if no door opens within two minutes."""
        if self._phase == DRIVING:
            return False, "vehicle is being driven"
        self._body.unlock(self._t + _RELOCK_S if self._phase == PARKED else math.inf)
        return True, None

    def start_climate(self, target_c: float) -> CommandResult:
        """Heat or cool the cabin toward ``target_c`` (preconditioning when parked)."""
        cabin = self._cabin
        if self._phase == DRIVING:
            cabin.setpoint_c = target_c
            return True, None
        energy = self._energy
        battery = energy.battery
        plugged = self._port is not None and self._port.plugged
        if battery is not None and (energy.engine is None or battery.displayed_percent > 20.0):
            if battery.displayed_percent < 10.0 and not plugged:
                return False, "battery too low for climate control"
            timeout_s = 1_800.0
        else:
            if energy.fuel_share < 0.05:
                return False, "fuel too low for a remote engine start"
            timeout_s = 900.0
            assert energy.engine is not None
            energy.engine.is_running = True  # remote start: the engine heats and runs the AC
        cabin.setpoint_c = target_c
        cabin.hvac_on = True
        self._climate_until = self._t + timeout_s
        return True, None

    def _stop_remote_climate(self) -> None:
        self._climate_until = -1.0
        if self._phase == PARKED:
            self._cabin.hvac_on = False
            if self._energy.engine is not None:
                self._energy.engine.is_running = False

    def stop_climate(self) -> CommandResult:
        """Stop remote climate control."""
        if self._phase == DRIVING:
            return False, "climate is under the driver's control while driving"
        self._stop_remote_climate()
        return True, None

    def start_charging(self) -> CommandResult:
        """Start (or resume) charging; needs a connected cable and room below the limit."""
        if self._port is None or self._energy.battery is None:
            return False, "vehicle has no traction battery"
        return self._port.start(self._energy.battery)

    def stop_charging(self) -> CommandResult:
        """Stop charging; the cable stays connected."""
        if self._port is None:
            return False, "vehicle has no traction battery"
        return self._port.stop()

    def set_charge_limit(self, percent: int) -> CommandResult:
        """Set the displayed state of charge at which charging stops."""
        if self._port is None or self._energy.battery is None:
            return False, "vehicle has no traction battery"
        return self._port.set_limit(self._energy.battery, percent)

    def honk_flash(self) -> CommandResult:
        """Sound the horn and flash the lights to find the car (refused while driving)."""
        if self._phase == DRIVING:
            return False, "vehicle is being driven"
        self._honk_until = self._t + _HONK_S
        self._lv_charge = max(0.2, self._lv_charge - 0.0005)
        return True, None

    def navigate_to(self, lat: float, lon: float, name: str) -> CommandResult:
        """Send a destination: the driver heads there next (rerouting at once while driving)."""
        network = self._network
        if network.distance_from_center_m(lat, lon) > 20_000.0:
            return False, "destination is outside the simulated area"
        node = network.nearest_node(lat, lon)
        place = Place(node=node, kind="custom", name=name)
        follower = self._follower
        if follower is not None:
            if self._target.kind in ("dc_charger", "fuel"):
                self._after_stop = place  # the energy stop comes first
            else:
                self._target, self._after_stop = place, None
                follower.reroute(network.route(follower.edge.b, node))
        elif self._phase == BOARDING:
            if node != self._node:
                self._target, self._after_stop = place, None
                self._route = network.route(self._node, node)
        elif node != self._node or self._phase == ALIGHTING:
            self._nav_target = place
            if self._phase == PARKED:
                self._dc_session = self._refueling = False
                self._depart_at = min(self._depart_at, self._t + self._rng.uniform(60.0, 180.0))
        return True, None
