"""A simulated connected car: it drives trips on the road network and reports VSS signals.

A vehicle cycles through four phases: parked (locked, maybe charging), boarding (unlock,
doors, power up), driving (a route, energy use, traffic lights) and alighting (doors, lock).
Everything it does comes from its own ``random.Random(seed)``, so the same seed and the
same sequence of ``step`` calls always give the same signals.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping

from carcloud.catalog import SignalValue
from carcloud.sim.battery import AC_EFFICIENCY, DC_EFFICIENCY, TractionBattery
from carcloud.sim.battery import physical_from_displayed as _physical
from carcloud.sim.climate import Cabin, Weather
from carcloud.sim.commands import CommandResult, apply_command
from carcloud.sim.driving import RouteFollower
from carcloud.sim.faults import FaultSimulator
from carcloud.sim.powertrain import Engine, RoadLoad, gear_for_speed
from carcloud.sim.roads import Edge, Place, RoadNetwork, Route
from carcloud.sim.spec import VehicleSpec
from carcloud.sim.trips import TripPlanner, Usage
from carcloud.vin import Vin

__all__ = ["DEFAULT_START_EPOCH_S", "SimVehicle", "VehicleSpec"]

DEFAULT_START_EPOCH_S = 1_740_981_600.0
"""2025-03-03T06:00:00Z: a weekday morning in early spring, cold enough to need heating."""

PARKED, BOARDING, DRIVING, ALIGHTING = 0, 1, 2, 3
_PHASE_NAMES = ("parked", "boarding", "driving", "alighting")

_LOW_SOC = 20.0  # displayed %: a BEV plans a fast-charge stop before leaving
_CRITICAL_SOC = 10.0  # displayed %: a BEV diverts to a charger mid-trip
_LOW_FUEL = 0.15
_CRITICAL_FUEL = 0.08
_PHEV_HYBRID_BELOW = 15.0  # displayed %: a PHEV holds charge on the engine from here
_PHEV_EV_ABOVE = 18.0
_REFUEL_L_PER_S = 0.6  # a car pump delivers ~35 l/min
_RELOCK_S = 120.0  # cars relock when a remote unlock is not followed by a door opening
_HONK_S = 4.0
_ENERGY_CHECK_S = 30.0
_DRIVE_SUBSTEP_S = 1.0
_PARKED_SUBSTEP_S = 10.0
_SERVICE_DUE_KM = 1_000.0

_TS_CACHE: dict[int, str] = {}


def _iso_utc(epoch_s: float) -> str:
    """ISO 8601 UTC text for a whole second; a fleet in lock-step shares one string per tick."""
    second = int(epoch_s)
    text = _TS_CACHE.get(second)
    if text is None:
        if len(_TS_CACHE) > 4_096:
            _TS_CACHE.clear()
        text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        _TS_CACHE[second] = text
    return text


class SimVehicle:
    """One simulated vehicle: call ``step(dt_s)`` to advance it and ``signals()`` to read it."""

    def __init__(
        self,
        spec: VehicleSpec,
        vin: str,
        network: RoadNetwork,
        *,
        seed: int,
        home: Place,
        start_place: Place | None = None,
        soc_percent: float = 60.0,
        fuel_percent: float = 60.0,
        odometer_km: float = 0.0,
        charge_limit_percent: int = 80,
        usage: Usage = "commuter",
        start_epoch_s: float = DEFAULT_START_EPOCH_S,
        first_departure_s: float | None = None,
        fault_rate_per_hour: float = 0.004,
    ) -> None:
        if not 50 <= charge_limit_percent <= 100:
            raise ValueError("charge_limit_percent must be 50-100")
        if not (0.0 <= soc_percent <= 100.0 and 0.0 <= fuel_percent <= 100.0):
            raise ValueError("soc_percent and fuel_percent must be 0-100")
        self._vin = Vin(vin).value
        self._spec = spec
        self._network = network
        rng = self._rng = random.Random(seed)
        self._t = 0.0
        self._epoch0 = float(start_epoch_s)
        self._weather = Weather(network.city, offset_c=rng.uniform(-0.8, 0.8))
        self._ext_c = self._weather.air_temperature_c(self._epoch0)
        self._solar_c = self._weather.solar_gain_c(self._epoch0)
        self._next_weather_t = 60.0

        place = start_place or home
        self._planner = TripPlanner(network, rng, home, usage)
        self._place: Place | None = place
        self._node = place.node
        self._lat = network.node_lat[place.node]
        self._lon = network.node_lon[place.node]
        self._alt = network.node_alt[place.node]
        out = network.out_edges[place.node]
        self._heading = out[0].heading_deg if out else 0.0
        self._follower: RouteFollower | None = None
        self._route: Route | None = None
        self._phase = PARKED
        self._phase_t = 0.0
        self._phase_len = 0.0
        self._doors_from = self._doors_to = self._trunk_to = 0.0
        self._passengers = 0
        self._target: Place = place
        self._after_stop: Place | None = None
        self._nav_target: Place | None = None
        self._depart_at = (
            rng.uniform(0.0, 1_200.0) if first_departure_s is None else (first_departure_s)
        )
        self._next_energy_check = 0.0

        self._odometer_km = float(odometer_km)
        age = max(0, 2025 - spec.model_year)
        self._service_due_km = self._odometer_km + rng.uniform(-300.0, 25_000.0)
        self._road = RoadLoad(spec)
        self._battery: TractionBattery | None = None
        if spec.is_electric:
            health = 100.0 - age * rng.uniform(0.8, 2.2) - rng.uniform(0.0, 1.5)
            self._battery = TractionBattery(
                spec, _physical(soc_percent) / 100.0, self._ext_c, max(70.0, health)
            )
        self._engine = Engine(spec, self._ext_c) if spec.has_engine else None
        self._fuel_l = spec.tank_l * fuel_percent / 100.0
        self._ev_mode = spec.is_electric
        # Learned consumption (J/m and l/m) for range estimates, starting from the rated figures.
        self._j_per_m = spec.rated_kwh_per_100km * 36.0
        self._l_per_m = spec.fuel_l_per_100km / 100_000.0
        self._acc_j = self._acc_l = self._acc_m = 0.0
        self._battery_power_w = 0.0

        self._plugged = False
        self._charge_dc = False
        self._charger_kw = 0.0
        self._charge_enabled = True
        self._restart_margin = 0.5
        self._is_charging = False
        self._charge_w = 0.0
        self._charge_limit = int(charge_limit_percent)
        self._ttc_s = 0
        self._ttc_at = -math.inf
        self._dc_session = False
        self._refueling = False

        self._locked = True
        self._doors = [False, False, False, False]
        self._trunk_open = False
        self._windows = [0, 0, 0, 0]
        self._relock_at = math.inf
        self._honk_until = -1.0
        self._cabin = Cabin(
            self._ext_c + self._solar_c, rng.choice((20.0, 20.5, 21.0, 21.5, 22.0)), spec.heat_pump
        )
        self._climate_until = -1.0
        self._tire_cold_kpa = [spec.tire_pressure_kpa + rng.uniform(-9.0, 5.0) for _ in range(4)]
        self._tire_c = self._ext_c
        self._lv_charge = rng.uniform(0.7, 1.0)
        self._lv_v = 12.2 + 0.45 * self._lv_charge
        self._faults = FaultSimulator(spec.powertrain, fault_rate_per_hour)
        self._broken = False
        self._rescue_at = math.inf
        if self._battery is not None and place.has_ac_charging:
            self._plug(place, dc=False)

    def __repr__(self) -> str:
        return (
            f"<SimVehicle {self._vin} {self._spec.brand} {self._spec.model} "
            f"{_PHASE_NAMES[self._phase]} t={self._t:.0f}s>"
        )

    # --- public state ----------------------------------------------------------------------

    @property
    def vin(self) -> str:
        """The vehicle's VIN."""
        return self._vin

    @property
    def spec(self) -> VehicleSpec:
        """The vehicle model."""
        return self._spec

    @property
    def network(self) -> RoadNetwork:
        """The road network the vehicle drives on."""
        return self._network

    @property
    def sim_time(self) -> float:
        """Simulated seconds since the vehicle was created."""
        return self._t

    @property
    def epoch_s(self) -> float:
        """The simulated instant as seconds since the Unix epoch (UTC)."""
        return self._epoch0 + self._t

    @property
    def activity(self) -> str:
        """What the vehicle is doing: parked, boarding, driving or alighting."""
        return _PHASE_NAMES[self._phase]

    @property
    def is_driving(self) -> bool:
        """True from drive-off to arrival, including stops at red lights."""
        return self._phase == DRIVING

    @property
    def is_charging(self) -> bool:
        """True while energy flows from a charger into the traction battery."""
        return self._is_charging

    @property
    def position(self) -> tuple[float, float]:
        """Latitude and longitude in WGS 84 degrees."""
        follower = self._follower
        return follower.position if follower is not None else (self._lat, self._lon)

    @property
    def edge(self) -> Edge | None:
        """The road edge the vehicle is driving on, None when not driving."""
        return self._follower.edge if self._follower is not None else None

    @property
    def place(self) -> Place | None:
        """The place the vehicle is parked at, None while it is on the road."""
        return self._place

    @property
    def destination(self) -> Place:
        """Where the vehicle is heading, or the place it last arrived at."""
        return self._target

    @property
    def home(self) -> Place:
        """The vehicle's home or depot, where it charges overnight."""
        return self._planner.home

    # --- simulation ------------------------------------------------------------------------

    def step(self, dt_s: float) -> None:
        """Advance simulated time by ``dt_s`` seconds (driving in substeps of at most 1 s)."""
        if not 0.0 <= dt_s < math.inf:
            raise ValueError(f"dt_s must be a finite, non-negative number of seconds, not {dt_s}")
        remaining = dt_s
        while remaining > 1e-9:
            phase = self._phase
            limit = _PARKED_SUBSTEP_S if phase == PARKED else _DRIVE_SUBSTEP_S
            h = remaining if remaining < limit else limit
            if phase == DRIVING:
                self._drive(h)
            elif phase == PARKED:
                self._park(h)
            elif phase == BOARDING:
                self._board(h)
            else:
                self._alight(h)
            self._t += h
            self._ambient(h)
            remaining -= h

    def _drive(self, h: float) -> None:
        follower = self._follower
        assert follower is not None  # DRIVING always has a follower
        if self._broken and self._t >= self._rescue_at:
            self._rescue()
        v0 = follower.speed_ms
        distance = follower.advance(h)
        v1 = follower.speed_ms
        self._odometer_km += distance * 0.001
        wheel_w = self._road.wheel_power_w(0.5 * (v0 + v1), follower.accel_ms2, follower.edge.grade)
        self._spend_energy(wheel_w, distance, h)
        if follower.arrived:
            self._arrive(follower)
        elif self._t >= self._next_energy_check:
            self._next_energy_check = self._t + _ENERGY_CHECK_S
            self._check_energy_en_route(follower)

    def _spend_energy(self, wheel_w: float, distance_m: float, h: float) -> None:
        spec = self._spec
        battery = self._battery
        aux_w = spec.aux_power_w + self._cabin.power_w
        if battery is not None and self._ev_mode:
            if wheel_w >= 0.0:
                out_w = wheel_w / spec.drivetrain_efficiency + aux_w
            else:
                regen_w = wheel_w * spec.regen_efficiency
                max_regen_w = spec.max_regen_kw * 1_000.0
                out_w = (regen_w if regen_w > -max_regen_w else -max_regen_w) + aux_w
            battery.drain(out_w * h)
            self._battery_power_w = -out_w
            self._acc_j += out_w * h
            if battery.soc <= 0.0 and not self._broken:
                if spec.has_engine and self._fuel_l > 0.0:
                    self._ev_mode = False
                else:
                    self._break_down()
        else:
            engine = self._engine
            assert engine is not None  # not in EV mode means there is an engine
            # The engine carries the 12 V and AC compressor loads; cabin heat is its waste heat.
            load_w = spec.aux_power_w + (self._cabin.power_w if self._cabin.ac_active else 150.0)
            fuel = engine.fuel_l(max(0.0, wheel_w) + load_w, spec.drivetrain_efficiency, h)
            self._fuel_l -= fuel
            self._acc_l += fuel
            self._battery_power_w = 0.0
            if battery is not None and wheel_w < 0.0:
                regen_w = max(wheel_w * spec.regen_efficiency, -spec.max_regen_kw * 1_000.0)
                battery.drain(regen_w * h)
                self._battery_power_w = -regen_w
            if self._fuel_l <= 0.0:
                self._fuel_l = 0.0
                if battery is not None and battery.soc > 0.0:
                    self._ev_mode = True
                elif not self._broken:
                    self._break_down()
        self._acc_m += distance_m
        if self._acc_m >= 1_000.0:
            # Learn real consumption per km, slowly, so range follows speed and weather.
            if self._acc_j > 0.0:
                per_m = min(1_500.0, max(50.0, self._acc_j / self._acc_m))
                self._j_per_m += 0.05 * (per_m - self._j_per_m)
            if self._acc_l > 0.0:
                self._l_per_m += 0.05 * (self._acc_l / self._acc_m - self._l_per_m)
            self._acc_j = self._acc_l = self._acc_m = 0.0
        if battery is not None and spec.powertrain == "phev":
            shown = battery.displayed_percent
            if self._ev_mode and shown < _PHEV_HYBRID_BELOW and self._fuel_l > 0.0:
                self._ev_mode = False
            elif not self._ev_mode and shown > _PHEV_EV_ABOVE:
                self._ev_mode = True
            engine = self._engine
            if engine is not None:
                engine.is_running = not self._ev_mode

    def _break_down(self) -> None:
        """Out of energy on the road: stop, and wait 30-60 minutes for roadside assistance."""
        self._broken = True
        self._rescue_at = self._t + self._rng.uniform(1_800.0, 3_600.0)
        if self._follower is not None:
            self._follower.halt()

    def _rescue(self) -> None:
        """Roadside assistance leaves enough energy to reach a charger or a fuel station."""
        self._broken = False
        self._rescue_at = math.inf
        battery = self._battery
        if battery is not None and self._spec.powertrain == "bev":
            battery.soc = max(battery.soc, _physical(12.0) / 100.0)
        else:
            self._fuel_l = max(self._fuel_l, min(self._spec.tank_l, 8.0))
            self._ev_mode = self._spec.powertrain == "bev"
        if self._follower is not None:
            self._follower.resume()

    def _energy_stop(self, origin: int, critical: bool) -> Place | None:
        """The charger or fuel station to stop at first, if energy is running low."""
        battery = self._battery
        if self._spec.powertrain == "bev":
            assert battery is not None
            threshold = _CRITICAL_SOC if critical else _LOW_SOC
            if battery.displayed_percent < threshold and battery.supports_dc:
                return self._network.nearest_place(origin, ("dc_charger",))
            return None
        share = self._fuel_l / self._spec.tank_l
        if share < (_CRITICAL_FUEL if critical else _LOW_FUEL):
            return self._network.nearest_place(origin, ("fuel",))
        return None

    def _check_energy_en_route(self, follower: RouteFollower) -> None:
        if self._target.kind in ("dc_charger", "fuel"):
            return
        stop = self._energy_stop(follower.edge.b, critical=True)
        if stop is None:
            return
        self._after_stop = self._target
        self._target = stop
        follower.reroute(self._network.route(follower.edge.b, stop.node))

    def _arrive(self, follower: RouteFollower) -> None:
        rng = self._rng
        self._lat, self._lon = follower.position
        self._alt = follower.altitude_m
        self._heading = follower.edge.heading_deg
        self._node = follower.edge.b
        self._follower = None
        self._battery_power_w = 0.0
        if self._engine is not None:
            self._engine.is_running = False
        self._phase = ALIGHTING
        self._phase_t = 0.0
        door_s = rng.uniform(4.0, 12.0)
        self._doors_from = 2.0
        self._doors_to = 2.0 + door_s
        cargo = self._planner.usage == "delivery" and self._target.kind in ("shop", "office")
        if cargo or (self._target.kind == "shop" and rng.random() < 0.4):
            self._trunk_to = self._doors_to + rng.uniform(20.0, 120.0)
        else:
            self._trunk_to = self._doors_to
        self._phase_len = self._trunk_to + rng.uniform(5.0, 20.0)  # walking away, then lock

    def _alight(self, h: float) -> None:
        t = self._phase_t = self._phase_t + h
        if t < self._doors_from:
            self._locked = False
        doors_open = self._doors_from <= t < self._doors_to
        self._set_doors(doors_open)
        self._trunk_open = self._doors_to <= t < self._trunk_to
        self._cabin.hvac_on = False
        if t >= self._phase_len:
            self._set_doors(False)
            self._trunk_open = False
            self._lock_up()
            self._phase = PARKED
            self._settle(self._target)

    def _set_doors(self, is_open: bool) -> None:
        doors = self._doors
        doors[0] = is_open
        passengers = self._passengers
        doors[1] = is_open and passengers >= 1
        doors[2] = is_open and passengers >= 2
        doors[3] = is_open and passengers >= 3

    def _lock_up(self) -> None:
        self._locked = True
        self._relock_at = math.inf
        self._windows[:] = [0, 0, 0, 0]  # comfort close: locking shuts the windows

    def _settle(self, place: Place) -> None:
        """Parked at ``place``: plug in, start refuelling, or decide how long to stay."""
        self._place = place
        self._node = place.node
        self._dc_session = self._refueling = False
        battery = self._battery
        if place.kind == "dc_charger" and battery is not None and battery.supports_dc:
            self._plug(place, dc=True)
            self._dc_session = True
            self._depart_at = math.inf  # leave when the session is over
        elif place.kind == "fuel" and self._engine is not None:
            self._refueling = True
            self._depart_at = math.inf
        else:
            if battery is not None and place.has_ac_charging:
                self._plug(place, dc=False)
            self._depart_at = self._t + self._planner.dwell_s(place)
        if self._nav_target is not None and self._depart_at < math.inf:
            self._depart_at = min(self._depart_at, self._t + self._rng.uniform(60.0, 180.0))

    def _plug(self, place: Place, dc: bool) -> None:
        self._plugged = True
        self._charge_dc = dc
        self._charger_kw = place.charge_kw
        self._charge_enabled = True
        self._restart_margin = 0.5

    def _unplug(self) -> None:
        self._plugged = self._is_charging = self._charge_dc = self._dc_session = False
        self._charge_w = 0.0
        self._battery_power_w = 0.0

    def _park(self, h: float) -> None:
        t = self._t
        if self._plugged:
            self._charge(h)
        elif self._cabin.hvac_on and self._battery is not None and not self._engine_running():
            self._battery.drain(self._cabin.power_w * h)
            self._battery_power_w = -self._cabin.power_w
        else:
            self._battery_power_w = 0.0
        if self._refueling:
            self._fuel_l += _REFUEL_L_PER_S * h
            if self._fuel_l >= self._spec.tank_l:
                self._fuel_l = self._spec.tank_l
                self._refueling = False
                self._depart_at = t + self._rng.uniform(60.0, 180.0)  # pay, walk back
        if self._climate_until >= 0.0:
            engine = self._engine
            if engine is not None and engine.is_running:
                self._fuel_l = max(0.0, self._fuel_l - engine.fuel_l(600.0, 1.0, h))
            if t >= self._climate_until:
                self._stop_remote_climate()
        if t >= self._relock_at and not any(self._doors):
            self._lock_up()
        if t >= self._depart_at:
            self._depart()

    def _charge(self, h: float) -> None:
        battery = self._battery
        assert battery is not None  # only electric vehicles plug in
        shown = battery.displayed_percent
        limit = self._charge_limit
        if self._is_charging:
            if not self._charge_enabled or shown >= limit:
                self._end_charging()
        elif self._charge_enabled and shown < limit - self._restart_margin:
            self._is_charging = True
            self._ttc_at = -math.inf
        if self._is_charging:
            if self._charge_dc:
                power = battery.dc_power_w(self._charger_kw)
            else:
                power = battery.ac_power_w(self._charger_kw)
            battery.drain(-power * h)
            self._charge_w = power
            self._battery_power_w = power
            if self._t - self._ttc_at >= 30.0:
                # The estimate integrates the charging curve: refresh it twice a minute.
                seconds = battery.seconds_to(self._charge_limit, self._charge_dc, self._charger_kw)
                self._ttc_s = min(604_800, int(seconds))
                self._ttc_at = self._t
        else:
            self._charge_w = 0.0
            # Plugged in, the wallbox (not the pack) feeds the cabin when climate is on.
            self._battery_power_w = 0.0

    def _end_charging(self) -> None:
        self._is_charging = False
        self._charge_w = 0.0
        self._restart_margin = 3.0  # top up again only after dropping a few percent
        if self._dc_session:
            self._dc_session = False
            self._depart_at = self._t + self._rng.uniform(60.0, 240.0)  # unplug, pay, go

    def _depart(self) -> None:
        """Time to go: pick the destination (and an energy stop on the way), then board."""
        rng = self._rng
        # A destination sent by the owner wins; then the one an energy stop interrupted.
        target = self._nav_target or self._after_stop or self._planner.next_destination(self._node)
        self._nav_target = None
        self._after_stop = None
        stop = self._energy_stop(self._node, critical=False)
        if stop is not None and stop.node != target.node:
            self._after_stop = target
            target = stop
        self._target = target
        if target.node == self._node:
            self._settle(target)  # already where it would go (parked at the charger)
            if self._depart_at <= self._t:
                self._depart_at = self._t + self._planner.dwell_s(target)
            return
        self._route = self._network.route(self._node, target.node)
        self._phase = BOARDING
        self._phase_t = 0.0
        self._passengers = self._planner.passengers()
        cable_s = 15.0 if self._plugged else 0.0
        self._doors_from = 1.0 + cable_s
        self._doors_to = self._doors_from + rng.uniform(3.0, 8.0)
        self._phase_len = self._doors_to + rng.uniform(3.0, 15.0)

    def _board(self, h: float) -> None:
        t = self._phase_t = self._phase_t + h
        self._locked = False
        self._relock_at = math.inf
        if self._plugged and t >= 1.0:
            self._unplug()
        self._set_doors(self._doors_from <= t < self._doors_to)
        if t >= self._doors_to:
            self._cabin.hvac_on = True
        if (
            t >= self._phase_len - 2.0
            and self._engine is not None
            and not (self._spec.powertrain == "phev" and self._ev_mode)
        ):
            self._engine.is_running = True
        if t >= self._phase_len:
            self._set_doors(False)
            self._start_driving()

    def _start_driving(self) -> None:
        route = self._route
        assert route is not None and route.edges  # _depart only boards for a real route
        spec = self._spec
        self._follower = RouteFollower(
            route,
            self._rng,
            self._network.traffic_lights,
            spec.max_accel_ms2,
            spec.max_speed_kmh / 3.6,
        )
        self._route = None
        self._phase = DRIVING
        self._place = None
        self._locked = True  # auto-lock on drive-off
        self._climate_until = -1.0
        self._next_energy_check = self._t + _ENERGY_CHECK_S
        if self._ext_c > 22.0 and not self._cabin.ac_active and self._rng.random() < 0.5:
            self._windows[0] = self._rng.choice((10, 20, 35, 50))

    def _ambient(self, h: float) -> None:
        """Slow physics every substep: weather, cabin, pack, engine, tyres, 12 V, faults."""
        t = self._t
        if t >= self._next_weather_t:
            epoch = self._epoch0 + t
            self._ext_c = self._weather.air_temperature_c(epoch)
            self._solar_c = self._weather.solar_gain_c(epoch)
            self._next_weather_t = t + 60.0
        ext = self._ext_c
        driving = self._phase == DRIVING
        self._cabin.update(ext, 0.0 if driving else self._solar_c, h)
        speed_kmh = self._follower.speed_ms * 3.6 if self._follower is not None else 0.0
        battery = self._battery
        if battery is not None:
            if self._is_charging:
                target, tau = (
                    ext + 8.0 + self._charge_w * (0.00008 if self._charge_dc else 0.0003),
                    900.0,
                )
            elif driving:
                target, tau = ext + 8.0 + abs(self._battery_power_w) * 0.0002, 1_800.0
            else:
                target, tau = ext, 7_200.0
            battery.temperature_c += (target - battery.temperature_c) * (1.0 - math.exp(-h / tau))
        if self._engine is not None:
            self._engine.update(speed_kmh, ext, h)
        # Tyres warm from flexing; pressure follows their temperature (ideal gas).
        tire_target = ext + 10.0 + 0.12 * speed_kmh if driving else ext
        self._tire_c += (tire_target - self._tire_c) * (1.0 - math.exp(-h / 1_200.0))
        lv_target = self._lv_target_v()
        self._lv_v += (lv_target - self._lv_v) * (1.0 - math.exp(-h / 8.0))
        if lv_target > 13.0:
            self._lv_charge = min(1.0, self._lv_charge + h / 20_000.0)
        elif self._phase == PARKED:
            self._lv_charge = max(0.2, self._lv_charge - h / 3_000_000.0)  # ~3 % a day
        self._faults.update(self._rng, t, h, driving)

    def _engine_running(self) -> bool:
        return self._engine is not None and self._engine.is_running

    def _lv_target_v(self) -> float:
        state = self._lv_state()
        if state == "START":
            return 10.6 if self._spec.powertrain == "ice" else 13.4  # starter motor cranking
        if state == "ON" or self._is_charging:
            return 14.2 if self._engine is not None and self._engine.is_running else 13.9
        rest = 12.2 + 0.45 * self._lv_charge
        return rest - 0.3 if state == "ACC" else rest

    def _lv_state(self) -> str:
        phase = self._phase
        if phase == DRIVING:
            return "ON"
        if phase == BOARDING:
            return "START" if self._phase_t >= self._phase_len - 2.0 else "ACC"
        if phase == ALIGHTING:
            return "OFF"
        if self._climate_until >= 0.0:
            engine = self._engine
            return "ON" if engine is not None and engine.is_running else "ACC"
        if self._honk_until > self._t:
            return "ACC"
        return "LOCK" if self._locked else "OFF"

    # --- commands ----------------------------------------------------------------------

    def apply_command(self, kind: str, params: Mapping[str, object]) -> tuple[bool, str | None]:
        """Execute a remote command; returns (accepted, reason when refused)."""
        return apply_command(self, kind, params)

    def lock(self) -> CommandResult:
        """Lock all doors and the trunk (refused while a door is open)."""
        if any(self._doors) or self._trunk_open:
            return False, "a door or the trunk is open"
        self._lock_up()
        return True, None

    def unlock(self) -> CommandResult:
        """Unlock all doors; the car relocks itself if no door opens within two minutes."""
        if self._phase == DRIVING:
            return False, "vehicle is being driven"
        self._locked = False
        if self._phase == PARKED:
            self._relock_at = self._t + _RELOCK_S
        return True, None

    def start_climate(self, target_c: float) -> CommandResult:
        """Heat or cool the cabin toward ``target_c`` (preconditioning when parked)."""
        cabin = self._cabin
        if self._phase == DRIVING:
            cabin.setpoint_c = target_c
            return True, None
        battery = self._battery
        if battery is not None and (
            self._spec.powertrain == "bev" or battery.displayed_percent > 20
        ):
            if battery.displayed_percent < 10.0 and not self._plugged:
                return False, "battery too low for climate control"
            timeout_s = 1_800.0
        else:
            if self._fuel_l < 0.05 * self._spec.tank_l:
                return False, "fuel too low for remote engine start"
            timeout_s = 900.0
            engine = self._engine
            if engine is not None:
                engine.is_running = True  # remote start: the engine heats and powers the AC
        cabin.setpoint_c = target_c
        cabin.hvac_on = True
        self._climate_until = self._t + timeout_s
        return True, None

    def _stop_remote_climate(self) -> None:
        self._climate_until = -1.0
        if self._phase == PARKED:
            self._cabin.hvac_on = False
            if self._engine is not None:
                self._engine.is_running = False

    def stop_climate(self) -> CommandResult:
        """Stop remote climate control."""
        if self._phase == DRIVING:
            return False, "climate is under the driver's control while driving"
        self._stop_remote_climate()
        return True, None

    def start_charging(self) -> CommandResult:
        """Start (or resume) charging; needs a connected cable and room below the limit."""
        battery = self._battery
        if battery is None:
            return False, "vehicle has no traction battery"
        if not self._plugged:
            return False, "charging cable is not connected"
        if battery.displayed_percent >= self._charge_limit:
            return False, "charge limit reached"
        self._charge_enabled = True
        self._restart_margin = 0.0
        return True, None

    def stop_charging(self) -> CommandResult:
        """Stop charging; the cable stays connected."""
        if self._battery is None:
            return False, "vehicle has no traction battery"
        if not self._plugged:
            return False, "charging cable is not connected"
        self._charge_enabled = False
        if self._is_charging:
            self._end_charging()
        return True, None

    def set_charge_limit(self, percent: int) -> CommandResult:
        """Set the state of charge (displayed %) where charging stops."""
        battery = self._battery
        if battery is None:
            return False, "vehicle has no traction battery"
        self._charge_limit = percent
        self._ttc_at = -math.inf
        if self._is_charging and battery.displayed_percent >= percent:
            self._end_charging()
        return True, None

    def honk_flash(self) -> CommandResult:
        """Sound the horn and flash the lights to find the car (refused while moving)."""
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
        if self._phase == DRIVING and follower is not None:
            if self._target.kind in ("dc_charger", "fuel"):
                self._after_stop = place  # still needs the energy stop first
                return True, None
            self._target = place
            self._after_stop = None
            follower.reroute(network.route(follower.edge.b, node))
            return True, None
        if node == self._node and self._phase != BOARDING:
            return True, None  # already there
        self._nav_target = place
        if self._phase == BOARDING:
            self._nav_target = None
            if node == self._node:
                return True, None
            self._target = place
            self._after_stop = None
            self._route = network.route(self._node, node)
        elif self._phase == PARKED:
            self._dc_session = self._refueling = False
            self._depart_at = min(self._depart_at, self._t + self._rng.uniform(60.0, 180.0))
        return True, None

    # --- signals -----------------------------------------------------------------------

    def signals(self) -> dict[str, SignalValue]:
        """The current VSS signal values (only the signals this powertrain has)."""
        spec = self._spec
        follower = self._follower
        if follower is not None:
            lat, lon = follower.position
            altitude = follower.altitude_m
            heading = follower.edge.heading_deg
            speed = follower.speed_ms
            accel = follower.accel_ms2
            lateral = follower.lateral_ms2
        else:
            lat, lon, altitude, heading = self._lat, self._lon, self._alt, self._heading
            speed = accel = lateral = 0.0
        speed_kmh = speed * 3.6
        driving = self._phase == DRIVING
        if driving and speed == 0.0:
            accel_pedal, brake_pedal = 0, 25  # holding the car at a light
        elif accel > 0.05 or (accel > -0.3 and speed > 0.5):
            accel_pedal = min(
                100, int(12.0 + 45.0 * max(0.0, accel) / spec.max_accel_ms2 + 0.2 * speed_kmh)
            )
            brake_pedal = 0
        else:
            accel_pedal = 0
            brake_pedal = min(100, int(-accel * 12.0)) if accel < -0.8 else 0
        doors = self._doors
        locked = self._locked
        windows = self._windows
        cabin = self._cabin
        tire_factor = (self._tire_c + 273.15) / 293.15  # cold pressures are set at 20 C
        tires = [int(round((p + 101.3) * tire_factor - 101.3)) for p in self._tire_cold_kpa]
        codes = self._faults.codes
        to_service = self._service_due_km - self._odometer_km
        if driving:
            gear = 1 if spec.powertrain == "bev" else gear_for_speed(speed_kmh)
        else:
            gear = 0
        result: dict[str, SignalValue] = {
            "Vehicle.Speed": round(speed_kmh, 1),
            "Vehicle.IsMoving": speed > 0.0,
            "Vehicle.TraveledDistance": round(self._odometer_km, 3),
            "Vehicle.CurrentLocation.Latitude": round(lat, 7),
            "Vehicle.CurrentLocation.Longitude": round(lon, 7),
            "Vehicle.CurrentLocation.Heading": round(heading, 1),
            "Vehicle.CurrentLocation.Altitude": round(altitude, 1),
            "Vehicle.CurrentLocation.Timestamp": _iso_utc(self._epoch0 + self._t),
            "Vehicle.Acceleration.Longitudinal": round(accel, 2),
            "Vehicle.Acceleration.Lateral": round(lateral, 2),
            "Vehicle.Chassis.Accelerator.PedalPosition": accel_pedal,
            "Vehicle.Chassis.Brake.PedalPosition": brake_pedal,
            "Vehicle.Chassis.ParkingBrake.IsEngaged": not driving,
            "Vehicle.Powertrain.Transmission.CurrentGear": gear,
            "Vehicle.Body.Hood.IsOpen": False,
            "Vehicle.Body.Trunk.Rear.IsOpen": self._trunk_open,
            "Vehicle.Body.Trunk.Rear.IsLocked": locked,
            "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen": doors[0],
            "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked": locked,
            "Vehicle.Cabin.Door.Row1.DriverSide.Window.Position": windows[0],
            "Vehicle.Cabin.Door.Row1.PassengerSide.IsOpen": doors[1],
            "Vehicle.Cabin.Door.Row1.PassengerSide.IsLocked": locked,
            "Vehicle.Cabin.Door.Row1.PassengerSide.Window.Position": windows[1],
            "Vehicle.Cabin.Door.Row2.DriverSide.IsOpen": doors[2],
            "Vehicle.Cabin.Door.Row2.DriverSide.IsLocked": locked,
            "Vehicle.Cabin.Door.Row2.DriverSide.Window.Position": windows[2],
            "Vehicle.Cabin.Door.Row2.PassengerSide.IsOpen": doors[3],
            "Vehicle.Cabin.Door.Row2.PassengerSide.IsLocked": locked,
            "Vehicle.Cabin.Door.Row2.PassengerSide.Window.Position": windows[3],
            "Vehicle.Cabin.HVAC.AmbientAirTemperature": round(cabin.temperature_c, 1),
            "Vehicle.Cabin.HVAC.IsAirConditioningActive": cabin.ac_active,
            "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature": cabin.setpoint_c,
            "Vehicle.Cabin.HVAC.Station.Row1.Passenger.Temperature": cabin.setpoint_c,
            "Vehicle.Exterior.AirTemperature": round(self._ext_c, 1),
            "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure": tires[0],
            "Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.Pressure": tires[1],
            "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure": tires[2],
            "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Pressure": tires[3],
            "Vehicle.LowVoltageSystemState": self._lv_state(),
            "Vehicle.LowVoltageBattery.CurrentVoltage": round(self._lv_v, 2),
            "Vehicle.Diagnostics.DTCCount": len(codes),
            "Vehicle.Diagnostics.DTCList": list(codes),
            "Vehicle.IsBrokenDown": self._broken,
            "Vehicle.Service.DistanceToService": round(to_service, 1),
            "Vehicle.Service.IsServiceDue": to_service < _SERVICE_DUE_KM,
        }
        range_m = 0
        battery = self._battery
        if battery is not None:
            range_m += self._battery_signals(result, battery)
        engine = self._engine
        if engine is not None:
            fuel_range_m = int(self._fuel_l / self._l_per_m)
            range_m += fuel_range_m
            result["Vehicle.Powertrain.FuelSystem.RelativeLevel"] = int(
                round(100.0 * self._fuel_l / spec.tank_l)
            )
            result["Vehicle.Powertrain.FuelSystem.Range"] = fuel_range_m
            result["Vehicle.Powertrain.FuelSystem.IsFuelLevelLow"] = fuel_range_m < 50_000
            result["Vehicle.Powertrain.CombustionEngine.IsRunning"] = engine.is_running
            result["Vehicle.Powertrain.CombustionEngine.Speed"] = engine.rpm
            result["Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"] = round(
                engine.coolant_c, 1
            )
        result["Vehicle.Powertrain.Range"] = range_m
        return result

    def _battery_signals(self, result: dict[str, SignalValue], battery: TractionBattery) -> int:
        """Add the traction battery and charging signals; returns the electric range in m."""
        shown = battery.displayed_percent
        # A PHEV's electric range ends where it switches to holding charge on the engine.
        floor = _PHEV_HYBRID_BELOW if self._spec.powertrain == "phev" else 0.0
        range_m = int(battery.energy_kwh_above(floor) * 3.6e6 / self._j_per_m)
        voltage = battery.voltage_v
        charging = self._is_charging
        dc_current = dc_voltage = ac_current = ac_voltage = 0.0
        rate_kmh = 0.0
        ttc = 0
        if charging:
            power = self._charge_w
            rate_kmh = power * 3.6 / self._j_per_m
            if self._charge_dc:
                dc_voltage = voltage
                dc_current = power / DC_EFFICIENCY / voltage
            else:
                ac_voltage = 230.0
                phases = 3.0 if min(self._spec.max_ac_kw, self._charger_kw) > 7.4 else 1.0
                ac_current = power / AC_EFFICIENCY / (phases * 230.0)
            ttc = self._ttc_s
        result["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"] = round(
            battery.soc * 100.0, 2
        )
        result["Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed"] = round(shown, 1)
        result["Vehicle.Powertrain.TractionBattery.StateOfHealth"] = round(
            battery.state_of_health, 1
        )
        result["Vehicle.Powertrain.TractionBattery.Temperature.Average"] = round(
            battery.temperature_c, 1
        )
        result["Vehicle.Powertrain.TractionBattery.CurrentVoltage"] = round(voltage, 1)
        result["Vehicle.Powertrain.TractionBattery.CurrentPower"] = round(self._battery_power_w, 0)
        result["Vehicle.Powertrain.TractionBattery.Range"] = range_m
        result["Vehicle.Powertrain.TractionBattery.Charging.IsCharging"] = charging
        result[
            "Vehicle.Powertrain.TractionBattery.Charging.ChargingPort.AnyPosition"
            ".IsChargingCableConnected"
        ] = self._plugged
        result["Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"] = self._charge_limit
        result["Vehicle.Powertrain.TractionBattery.Charging.ChargeRate"] = round(rate_kmh, 1)
        result["Vehicle.Powertrain.TractionBattery.Charging.ChargeCurrent.DC"] = round(
            dc_current, 1
        )
        result["Vehicle.Powertrain.TractionBattery.Charging.ChargeVoltage.DC"] = round(
            dc_voltage, 1
        )
        result["Vehicle.Powertrain.TractionBattery.Charging.ChargeCurrent.Phase1"] = round(
            ac_current, 1
        )
        result["Vehicle.Powertrain.TractionBattery.Charging.ChargeVoltage.Phase1"] = ac_voltage
        result["Vehicle.Powertrain.TractionBattery.Charging.TimeToComplete"] = ttc
        return range_m
