"""A simulated connected car: it drives trips on the road network and reports VSS signals.

A vehicle cycles through four phases: parked (locked, maybe charging), boarding (unlock,
doors, power up), driving (a route, energy use, traffic lights) and alighting (doors, lock).
Its parts (body, cabin, energy stores, charge port) live in their own modules; this one runs
the day. Everything it does comes from its own ``random.Random(seed)``, so the same seed and
the same sequence of ``step`` calls always give the same signals.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

from carcloud.catalog import SignalValue
from carcloud.sim.battery import TractionBattery, physical_from_displayed
from carcloud.sim.body import Body
from carcloud.sim.charging import ChargePort
from carcloud.sim.climate import Cabin, Weather
from carcloud.sim.driving import RouteFollower
from carcloud.sim.energy import Energy
from carcloud.sim.faults import FaultSimulator
from carcloud.sim.powertrain import Engine, RoadLoad, gear_for_speed
from carcloud.sim.remote import RemoteControl
from carcloud.sim.roads import Edge, Place, RoadNetwork, Route
from carcloud.sim.spec import VehicleSpec
from carcloud.sim.trips import ALIGHTING, BOARDING, DRIVING, PARKED, PHASE_NAMES, TripPlanner, Usage
from carcloud.vin import Vin

__all__ = ["DEFAULT_START_EPOCH_S", "SimVehicle", "VehicleSpec"]

DEFAULT_START_EPOCH_S = 1_740_981_600.0
"""2025-03-03T06:00:00Z: a weekday morning in early spring, cold enough to need heating."""

_ENERGY_CHECK_S = 30.0
_DRIVE_SUBSTEP_S = 1.0
_PARKED_SUBSTEP_S = 10.0
_SERVICE_DUE_KM = 1_000.0
_TIRES = tuple(
    f"Vehicle.Chassis.Axle.{axle}.Wheel.{side}.Tire.Pressure"
    for axle in ("Row1", "Row2")
    for side in ("Left", "Right")
)
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


class SimVehicle(RemoteControl):
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
        self._phase_t = self._phase_len = 0.0
        self._doors_from = self._doors_to = self._trunk_to = 0.0
        self._target: Place = place
        self._after_stop: Place | None = None  # the destination an energy stop interrupted
        self._nav_target: Place | None = None  # a destination sent with navigate_to
        first = rng.uniform(0.0, 1_200.0) if first_departure_s is None else first_departure_s
        self._depart_at = first
        self._next_energy_check = 0.0
        self._dc_session = self._refueling = False

        self._odometer_km = float(odometer_km)
        self._service_due_km = self._odometer_km + rng.uniform(-300.0, 25_000.0)
        self._road = RoadLoad(spec)
        battery: TractionBattery | None = None
        self._port: ChargePort | None = None
        if spec.is_electric:
            age = max(0, 2025 - spec.model_year)
            health = max(70.0, 100.0 - age * rng.uniform(0.8, 2.2) - rng.uniform(0.0, 1.5))
            soc = physical_from_displayed(soc_percent) / 100.0
            battery = TractionBattery(spec, soc, self._ext_c, health)
            self._port = ChargePort(int(charge_limit_percent), spec.max_ac_kw)
            if place.has_ac_charging:
                self._port.plug(place.charge_kw, dc=False)
        engine = Engine(spec, self._ext_c) if spec.has_engine else None
        self._energy = Energy(spec, battery, engine, spec.tank_l * fuel_percent / 100.0)
        if battery is not None and self._port is not None:
            # Lifetime energy counters that fit the odometer (about 10 % back from braking).
            lifetime_j = self._odometer_km * 1_000.0 * self._energy.j_per_m
            self._energy.consumed_j, self._energy.regen_j = 1.1 * lifetime_j, 0.1 * lifetime_j
            self._port.charged_j = lifetime_j

        self._body = Body()
        self._honk_until = -1.0
        setpoint = rng.choice((20.0, 20.5, 21.0, 21.5, 22.0))
        self._cabin = Cabin(self._ext_c + self._solar_c, setpoint, spec.heat_pump)
        self._climate_until = -1.0  # remote climate runs until then (-1: not running)
        self._tire_cold_kpa = [spec.tire_pressure_kpa + rng.uniform(-9.0, 5.0) for _ in range(4)]
        self._tire_c = self._ext_c
        self._lv_charge = rng.uniform(0.7, 1.0)
        self._lv_v = 12.2 + 0.45 * self._lv_charge
        self._faults = FaultSimulator(spec.powertrain, fault_rate_per_hour)
        self._broken = False
        self._rescue_at = math.inf
        # Called after every substep with the substep's length (the ground truth listens here).
        self.observer: Callable[[SimVehicle, float], None] | None = None

    def __repr__(self) -> str:
        return (
            f"<SimVehicle {self._vin} {self._spec.brand} {self._spec.model} "
            f"{PHASE_NAMES[self._phase]} t={self._t:.0f}s>"
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
        return PHASE_NAMES[self._phase]

    @property
    def is_driving(self) -> bool:
        """True from drive-off to arrival, including stops at red lights."""
        return self._phase == DRIVING

    @property
    def is_charging(self) -> bool:
        """True while energy flows from a charger into the traction battery."""
        return self._port is not None and self._port.is_charging

    @property
    def is_plugged_in(self) -> bool:
        """True while a charging cable is connected."""
        return self._port is not None and self._port.plugged

    @property
    def is_dc_charging(self) -> bool:
        """True while the cable is a DC fast charger's."""
        return self._port is not None and self._port.plugged and self._port.dc

    @property
    def is_broken_down(self) -> bool:
        """True from running out of energy on the road until roadside assistance came."""
        return self._broken

    @property
    def speed_kmh(self) -> float:
        """The speed over ground."""
        return self._follower.speed_ms * 3.6 if self._follower is not None else 0.0

    @property
    def odometer_km(self) -> float:
        """Kilometres driven in the vehicle's life (unrounded)."""
        return self._odometer_km

    @property
    def traction_power_w(self) -> float:
        """Power into the traction battery (negative when drawn), as the car reports it."""
        return self._energy.power_w

    @property
    def battery_kwh(self) -> float | None:
        """Energy stored in the traction battery now; None without one."""
        battery = self._energy.battery
        return battery.soc * battery.capacity_j / 3.6e6 if battery is not None else None

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
        """The vehicle's home or depot, where it charges between trips."""
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
            if self.observer is not None:
                self.observer(self, h)

    def _drive(self, h: float) -> None:
        follower = self._follower
        assert follower is not None  # DRIVING always has a follower
        if self._broken and self._t >= self._rescue_at:
            # Roadside assistance leaves enough energy to reach a charger or fuel station.
            self._broken = False
            self._rescue_at = math.inf
            self._energy.rescue()
            follower.resume()
        v0 = follower.speed_ms
        distance = follower.advance(h)
        self._odometer_km += distance * 0.001
        mean_speed = 0.5 * (v0 + follower.speed_ms)
        wheel_w = self._road.wheel_power_w(mean_speed, follower.accel_ms2, follower.edge.grade)
        cabin = self._cabin
        empty = self._energy.drive(wheel_w, cabin.power_w, cabin.ac_active, distance, h)
        if empty and not self._broken:
            # Out of energy on the road: pull over and wait 30-60 min for assistance.
            self._broken = True
            self._rescue_at = self._t + self._rng.uniform(1_800.0, 3_600.0)
            follower.halt()
        if follower.arrived:
            self._arrive(follower)
        elif self._t >= self._next_energy_check:
            self._next_energy_check = self._t + _ENERGY_CHECK_S
            kind = self._energy.needs_stop(critical=True)
            if kind is not None and self._target.kind not in ("dc_charger", "fuel"):
                stop = self._network.nearest_place(follower.edge.b, (kind,))
                if stop is not None:
                    self._after_stop, self._target = self._target, stop
                    follower.reroute(self._network.route(follower.edge.b, stop.node))

    def _arrive(self, follower: RouteFollower) -> None:
        rng = self._rng
        self._lat, self._lon = follower.position
        self._alt = follower.altitude_m
        self._heading = follower.edge.heading_deg
        self._node = follower.edge.b
        self._follower = None
        self._energy.power_w = 0.0
        if self._energy.engine is not None:
            self._energy.engine.is_running = False
        self._phase = ALIGHTING
        self._phase_t = 0.0
        self._doors_from = 2.0
        self._doors_to = 2.0 + rng.uniform(4.0, 12.0)
        kind = self._target.kind
        cargo = self._planner.usage == "delivery" and kind in ("shop", "office")
        if cargo or (kind == "shop" and rng.random() < 0.4):
            self._trunk_to = self._doors_to + rng.uniform(20.0, 120.0)
        else:
            self._trunk_to = self._doors_to
        self._phase_len = self._trunk_to + rng.uniform(5.0, 20.0)  # walking away, then lock

    def _alight(self, h: float) -> None:
        t = self._phase_t = self._phase_t + h
        body = self._body
        body.locked = False
        body.set_doors(self._doors_from <= t < self._doors_to)
        body.trunk_open = self._doors_to <= t < self._trunk_to
        self._cabin.hvac_on = False
        if t >= self._phase_len:
            body.set_doors(False)
            body.trunk_open = False
            body.lock_up()
            self._phase = PARKED
            self._settle(self._target)

    def _settle(self, place: Place) -> None:
        """Parked at ``place``: plug in, start refuelling, or decide how long to stay."""
        self._place = place
        self._node = place.node
        self._dc_session = self._refueling = False
        port = self._port
        battery = self._energy.battery
        if place.kind == "dc_charger" and port and battery and battery.supports_dc:
            port.plug(place.charge_kw, dc=True)
            self._dc_session = True
            self._depart_at = math.inf  # leave when the session is over
        elif place.kind == "fuel" and self._energy.engine is not None:
            self._refueling = True
            self._depart_at = math.inf
        else:
            if port is not None and place.has_ac_charging:
                port.plug(place.charge_kw, dc=False)
            self._depart_at = self._t + self._planner.dwell_s(place)
        if self._nav_target is not None and self._depart_at < math.inf:
            self._depart_at = min(self._depart_at, self._t + self._rng.uniform(60.0, 180.0))

    def _park(self, h: float) -> None:
        t = self._t
        energy = self._energy
        port = self._port
        cabin_w = self._cabin.power_w if self._cabin.hvac_on else 0.0
        plugged = port is not None and port.plugged
        ended = port is not None and plugged and port.update(energy.battery, t, h)
        if ended and self._dc_session:
            self._dc_session = False
            self._depart_at = t + self._rng.uniform(60.0, 240.0)  # unplug, pay, go
        if port is not None and port.is_charging:
            energy.power_w = port.power_w  # the charger also feeds the cabin
        else:
            energy.idle(cabin_w, plugged, h)
        if self._refueling and energy.refuel(h):
            self._refueling = False
            self._depart_at = t + self._rng.uniform(60.0, 180.0)  # pay, walk back
        if 0.0 <= self._climate_until <= t:
            self._stop_remote_climate()
        if t >= self._body.relock_at and not self._body.any_open:
            self._body.lock_up()
        if t >= self._depart_at:
            self._depart()

    def _depart(self) -> None:
        """Time to go: pick the destination (and an energy stop on the way), then board."""
        rng = self._rng
        # A destination sent by the owner wins; then the one an energy stop interrupted.
        target = self._nav_target or self._after_stop or self._planner.next_destination(self._node)
        self._nav_target = self._after_stop = None
        kind = self._energy.needs_stop(critical=False)
        stop = self._network.nearest_place(self._node, (kind,)) if kind else None
        if stop is not None and stop.node != target.node:
            self._after_stop, target = target, stop
        self._target = target
        if target.node == self._node:
            self._settle(target)  # already where it would go (parked at the charger)
            if self._depart_at <= self._t:
                self._depart_at = self._t + self._planner.dwell_s(target)
            return
        self._route = self._network.route(self._node, target.node)
        self._phase = BOARDING
        self._phase_t = 0.0
        self._body.passengers = self._planner.passengers()
        cable_s = 15.0 if self._port is not None and self._port.plugged else 0.0
        self._doors_from = 1.0 + cable_s
        self._doors_to = self._doors_from + rng.uniform(3.0, 8.0)
        self._phase_len = self._doors_to + rng.uniform(3.0, 15.0)

    def _board(self, h: float) -> None:
        t = self._phase_t = self._phase_t + h
        body = self._body
        body.unlock(math.inf)
        if t >= 1.0 and self._port is not None and self._port.plugged:
            self._port.unplug()
            self._dc_session = False
            self._energy.power_w = 0.0  # the charger's power must not be reported any longer
        body.set_doors(self._doors_from <= t < self._doors_to)
        if t >= self._doors_to:
            self._cabin.hvac_on = True
        engine = self._energy.engine
        if engine is not None and t >= self._phase_len - 2.0 and not self._energy.ev_mode:
            engine.is_running = True
        if t >= self._phase_len:
            body.set_doors(False)
            self._start_driving()

    def _start_driving(self) -> None:
        route = self._route
        assert route is not None and route.edges  # _depart boards only for a real route
        spec = self._spec
        rng = self._rng
        self._follower = RouteFollower(
            route, rng, self._network.traffic_lights, spec.max_accel_ms2, spec.max_speed_kmh / 3.6
        )
        self._route = None
        self._phase = DRIVING
        self._place = None
        self._body.locked = True  # auto-lock on drive-off
        self._climate_until = -1.0
        self._next_energy_check = self._t + _ENERGY_CHECK_S
        if self._ext_c > 22.0 and not self._cabin.ac_active and rng.random() < 0.5:
            self._body.windows[0] = rng.choice((10, 20, 35, 50))

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
        energy = self._energy
        battery = energy.battery
        if battery is not None:
            port = self._port
            if port is not None and port.is_charging:
                # Charging losses warm the pack: more at DC power levels than on a wallbox.
                target = ext + 8.0 + port.power_w * (0.00008 if port.dc else 0.0003)
                tau = 900.0
            elif driving:
                target, tau = ext + 8.0 + abs(energy.power_w) * 0.0002, 1_800.0
            else:
                target, tau = ext, 7_200.0
            battery.temperature_c += (target - battery.temperature_c) * (1.0 - math.exp(-h / tau))
        if energy.engine is not None:
            energy.engine.update(speed_kmh, ext, h)
        # Tyres warm from flexing; their pressure follows the temperature (ideal gas).
        tire_target = ext + 10.0 + 0.12 * speed_kmh if driving else ext
        self._tire_c += (tire_target - self._tire_c) * (1.0 - math.exp(-h / 1_200.0))
        lv_target = self._lv_target_v()
        self._lv_v += (lv_target - self._lv_v) * (1.0 - math.exp(-h / 8.0))
        if lv_target > 13.0:
            self._lv_charge = min(1.0, self._lv_charge + h / 20_000.0)
        elif self._phase == PARKED:
            self._lv_charge = max(0.2, self._lv_charge - h / 3_000_000.0)  # ~3 % a day
        self._faults.update(self._rng, t, h, driving)

    def _lv_target_v(self) -> float:
        state = self._lv_state()
        engine = self._energy.engine
        if state == "START":
            return 10.6 if self._spec.powertrain == "ice" else 13.4  # the starter motor cranks
        if state == "ON" or self.is_charging:  # alternator or DC/DC converter
            return 14.2 if engine is not None and engine.is_running else 13.9
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
            engine = self._energy.engine
            return "ON" if engine is not None and engine.is_running else "ACC"
        if self._honk_until > self._t:
            return "ACC"
        return "LOCK" if self._body.locked else "OFF"

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
        accel_pedal = brake_pedal = 0
        if driving and speed == 0.0:
            brake_pedal = 25  # holding the car at a light
        elif accel > 0.05 or (accel > -0.3 and speed > 0.5):
            push = 45.0 * max(0.0, accel) / spec.max_accel_ms2
            accel_pedal = min(100, int(12.0 + push + 0.2 * speed_kmh))
        elif accel < -0.8:
            brake_pedal = min(100, int(-accel * 12.0))
        gear = 0  # VSS has no park position: neutral when not driving
        if driving:
            gear = 1 if spec.powertrain == "bev" else gear_for_speed(speed_kmh)
        codes = self._faults.codes
        to_service = self._service_due_km - self._odometer_km
        out: dict[str, SignalValue] = {
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
            "Vehicle.Exterior.AirTemperature": round(self._ext_c, 1),
            "Vehicle.LowVoltageSystemState": self._lv_state(),
            "Vehicle.LowVoltageBattery.CurrentVoltage": round(self._lv_v, 2),
            "Vehicle.Diagnostics.DTCCount": len(codes),
            "Vehicle.Diagnostics.DTCList": list(codes),
            "Vehicle.IsBrokenDown": self._broken,
            "Vehicle.Service.DistanceToService": round(to_service, 1),
            "Vehicle.Service.IsServiceDue": to_service < _SERVICE_DUE_KM,
        }
        # Cold pressures are set at 20 C; warm tyres read higher (ideal gas, absolute kPa).
        tire_factor = (self._tire_c + 273.15) / 293.15
        for path, cold_kpa in zip(_TIRES, self._tire_cold_kpa, strict=True):
            out[path] = int(round((cold_kpa + 101.3) * tire_factor - 101.3))
        self._body.add_signals(out)
        self._cabin.add_signals(out)
        energy = self._energy
        energy.add_signals(out)
        if self._port is not None and energy.battery is not None:
            self._port.add_signals(out, energy.battery, energy.j_per_m)
        return out
