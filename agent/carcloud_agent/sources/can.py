"""CAN as a signal source: frames decoded with the car's DBC, mapped to VSS.

The mapping file follows the KUKSA CAN provider's form, per VSS path:

    "Vehicle.Speed": {
      "dbc2vss": {"signal": "VehicleSpeed", "interval_ms": 100,
                  "transform": {"math": "x"}}
    },
    "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked": {
      "dbc2vss": {"signal": "DoorsLocked", "on_change": true,
                  "transform": {"mapping": [{"from": 0, "to": false}, {"from": 1, "to": true}]}},
      "vss2dbc": {"signal": "LockRequest",
                  "transform": {"mapping": [{"from": true, "to": 1}, {"from": false, "to": 2}]}}
    }

`dbc2vss` reads: a signal is sent at most every `interval_ms`, or whenever its
value changes (`on_change`). `vss2dbc` writes: commands that set an actuator
(lock, unlock) encode the mapped frame and put it on the bus.
"""

from __future__ import annotations

import ast
import json
import operator
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import can
import cantools
import cantools.database

from carcloud_agent.catalog import SignalValueError, default_catalog
from carcloud_agent.errors import ConfigError
from carcloud_agent.sources import SignalValues

_OPERATORS: dict[type[ast.AST], Callable[..., float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_FUNCTIONS: dict[str, Callable[..., float]] = {"abs": abs, "min": min, "max": max, "round": round}


def compile_math(expression: str) -> Callable[[float], float]:
    """A transform like `x * 0.5 - 40`: arithmetic on x only, checked once, no eval."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"transform {expression!r} is not an arithmetic expression") from exc

    def check(node: ast.AST) -> None:
        if isinstance(node, ast.Expression):
            check(node.body)
        elif isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            check(node.left)
            check(node.right)
        elif isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            check(node.operand)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id not in _FUNCTIONS or node.keywords:
                raise ConfigError(f"transform {expression!r}: {node.func.id}() is not allowed")
            for arg in node.args:
                check(arg)
        elif (isinstance(node, ast.Name) and node.id == "x") or (
            isinstance(node, ast.Constant) and isinstance(node.value, int | float)
        ):
            return
        else:
            raise ConfigError(f"transform {expression!r}: only x, numbers and + - * / ** allowed")

    check(tree)

    def evaluate(node: ast.AST, x: float) -> float:
        if isinstance(node, ast.Expression):
            return evaluate(node.body, x)
        if isinstance(node, ast.BinOp):
            return _OPERATORS[type(node.op)](evaluate(node.left, x), evaluate(node.right, x))
        if isinstance(node, ast.UnaryOp):
            return _OPERATORS[type(node.op)](evaluate(node.operand, x))
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            return _FUNCTIONS[node.func.id](*(evaluate(arg, x) for arg in node.args))
        if isinstance(node, ast.Name):
            return x
        assert isinstance(node, ast.Constant) and isinstance(node.value, int | float)
        return float(node.value)

    return lambda x: evaluate(tree, x)


def compile_transform(spec: Mapping[str, Any] | None) -> Callable[[Any], Any]:
    """`{"math": "x*2"}`, `{"mapping": [{"from": a, "to": b}, ...]}`, or nothing (as is)."""
    if not spec:
        return lambda value: value
    if "math" in spec:
        math = compile_math(str(spec["math"]))
        return lambda value: math(float(value))
    if "mapping" in spec:
        table = {json.dumps(entry["from"]): entry["to"] for entry in spec["mapping"]}

        def look_up(value: Any) -> Any:
            key = json.dumps(value.name if hasattr(value, "name") else value)
            if key not in table:
                raise KeyError(f"no mapping for {value!r}")
            return table[key]

        return look_up
    raise ConfigError(f"unknown transform {dict(spec)!r}: use math or mapping")


@dataclass
class Reading:
    """How one VSS signal is read from the bus."""

    path: str
    dbc_signal: str
    interval_s: float
    on_change: bool
    transform: Callable[[Any], Any]
    value: Any = None
    changed: bool = False
    sent_at: float = 0.0


@dataclass
class Writing:
    """How one VSS actuator is written to the bus."""

    path: str
    dbc_signal: str
    transform: Callable[[Any], Any]


# Command kinds that set an actuator, and the VSS value they set.
ACTUATOR_COMMANDS: dict[str, tuple[str, object]] = {
    "lock": ("Vehicle.Cabin.Door.Row1.DriverSide.IsLocked", True),
    "unlock": ("Vehicle.Cabin.Door.Row1.DriverSide.IsLocked", False),
}


class CanSource:
    """Signals from a python-can bus (SocketCAN in a car, a virtual bus in tests)."""

    def __init__(
        self,
        vin: str,
        database: cantools.database.Database,
        mapping: Mapping[str, Any],
        bus: can.BusABC,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._vin = vin
        self.database = database
        self.bus = bus
        self.clock = clock
        self.catalog = default_catalog()
        self.readings: dict[str, list[Reading]] = {}
        self.writings: dict[str, Writing] = {}
        self._lock = threading.Lock()
        self.decode_errors = 0
        signal_names = {s.name for m in database.messages for s in m.signals}
        for path, entry in mapping.items():
            if path not in self.catalog:
                raise ConfigError(f"mapping names {path!r}, which is not in the signal catalog")
            read = entry.get("dbc2vss")
            if read:
                if read["signal"] not in signal_names:
                    raise ConfigError(f"{path}: DBC has no signal {read['signal']!r}")
                reading = Reading(
                    path,
                    read["signal"],
                    float(read.get("interval_ms", 1000)) / 1000.0,
                    bool(read.get("on_change", False)),
                    compile_transform(read.get("transform")),
                )
                self.readings.setdefault(read["signal"], []).append(reading)
            write = entry.get("vss2dbc")
            if write:
                if write["signal"] not in signal_names:
                    raise ConfigError(f"{path}: DBC has no signal {write['signal']!r}")
                self.writings[path] = Writing(
                    path, write["signal"], compile_transform(write.get("transform"))
                )
        self._replay: threading.Thread | None = None
        self._replay_stop: threading.Event | None = None
        self._notifier = can.Notifier(self.bus, [self._on_frame])

    @classmethod
    def from_config(cls, vin: str, source: Mapping[str, Any], base: Path) -> CanSource:
        """Open the bus and load the DBC and mapping named in [source]."""
        try:
            database = cantools.database.load_file(str(base / str(source["dbc"])))
            if not isinstance(database, cantools.database.can.Database):
                raise ConfigError(f"{source['dbc']} is not a CAN database (DBC)")
            mapping = json.loads((base / str(source["mapping"])).read_text(encoding="utf-8"))
        except KeyError as exc:
            raise ConfigError(f"[source] kind = 'can' needs {exc.args[0]!r}") from exc
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load the DBC or mapping: {exc}") from exc
        replay = source.get("replay")
        if replay is not None:
            # A recorded drive (candump -L, .asc, .blf, ...) played in real time onto a
            # private virtual bus: the agent cannot tell it from the car.
            channel = f"replay-{id(source)}"
            bus = can.Bus(interface="virtual", channel=channel)
            player = can.Bus(interface="virtual", channel=channel)
            created = cls(vin, database, mapping, bus)
            created.start_replay(base / str(replay), player, loop=bool(source.get("loop", False)))
            return created
        bus = can.Bus(
            interface=str(source.get("interface", "socketcan")),
            channel=str(source.get("channel", "can0")),
        )
        return cls(vin, database, mapping, bus)

    def start_replay(self, log: Path, player: can.BusABC, loop: bool = False) -> None:
        """Play a CAN log file onto the bus in real time, in a thread of its own."""
        if not log.is_file():
            raise ConfigError(f"replay log {log} not found")
        stop = threading.Event()

        def play() -> None:
            try:
                while not stop.is_set():
                    for frame in can.MessageSync(can.LogReader(str(log))):
                        if stop.is_set():
                            return
                        player.send(frame)
                    if not loop:
                        return
            finally:
                player.shutdown()

        self._replay_stop = stop
        self._replay = threading.Thread(target=play, name="can-replay", daemon=True)
        self._replay.start()

    @property
    def vin(self) -> str:
        return self._vin

    def _on_frame(self, frame: can.Message) -> None:
        try:
            decoded = self.database.decode_message(frame.arbitration_id, bytes(frame.data))
        except (KeyError, ValueError, cantools.database.DecodeError):
            self.decode_errors += 1
            return
        assert isinstance(decoded, dict)
        with self._lock:
            for name, raw in decoded.items():
                for reading in self.readings.get(name, ()):
                    try:
                        value = self.catalog.validate(reading.path, reading.transform(raw))
                    except (SignalValueError, KeyError, ValueError, TypeError):
                        self.decode_errors += 1
                        continue
                    if value != reading.value:
                        reading.changed = True
                    reading.value = value

    def sample(self, dt_s: float) -> tuple[str, SignalValues] | None:
        """Signals due now: changed on-change signals, and interval signals whose time came."""
        now = self.clock()
        due: SignalValues = {}
        with self._lock:
            for readings in self.readings.values():
                for reading in readings:
                    if reading.value is None:
                        continue
                    if (reading.on_change and reading.changed) or (
                        not reading.on_change and now - reading.sent_at >= reading.interval_s
                    ):
                        due[reading.path] = reading.value
                        reading.sent_at = now
                        reading.changed = False
        if not due:
            return None
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        return f"{stamp}.{int(now % 1 * 1000):03d}Z", due

    def apply_command(self, kind: str, params: Mapping[str, object]) -> tuple[bool, str | None]:
        """Actuator commands become frames on the bus; others are not supported by CAN."""
        target = ACTUATOR_COMMANDS.get(kind)
        if target is None:
            return False, f"{kind} is not supported over CAN by this car's mapping"
        path, value = target
        writing = self.writings.get(path)
        if writing is None:
            return False, f"the mapping has no vss2dbc entry for {path}"
        message = self.database.get_message_by_name(
            next(m.name for m in self.database.messages if writing.dbc_signal in m.signal_tree)
        )
        values = {signal.name: 0 for signal in message.signals}
        values[writing.dbc_signal] = writing.transform(value)
        frame = can.Message(
            arbitration_id=message.frame_id,
            data=message.encode(values),
            is_extended_id=message.is_extended_frame,
        )
        try:
            self.bus.send(frame)
        except can.CanError as exc:
            return False, f"could not write to the CAN bus: {exc}"
        return True, None

    def close(self) -> None:
        if self._replay_stop is not None:
            self._replay_stop.set()
            if self._replay is not None:
                self._replay.join(2)
        self._notifier.stop()
        self.bus.shutdown()
