"""The agent's one configuration file (TOML)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carcloud_agent.errors import ConfigError
from carcloud_agent.vin import Vin

EXAMPLE = """\
# carcloud agent configuration
vin = "WVWZZZ1JZXW000001"
secret = "the MQTT password printed by `carcloud vehicles add`"

[cloud]
host = "127.0.0.1"
port = 1884
keepalive_s = 30            # ping every 15 s; a link silent for 45 s is dropped and redialled
# tls_ca = "/etc/carcloud/ca.pem"   # use TLS with this CA certificate
receipts = true             # keep telemetry until a commit receipt names it (not just a PUBACK)
receipt_timeout_s = 15.0    # send again what no receipt named after this long

[buffer]
path = "outbox.db"          # relative paths are relative to this file
max_mb = 256                # the oldest, lowest-priority data goes first beyond this
max_age_hours = 168

[reconnect]
min_s = 1.0                 # exponential backoff with full jitter between these
max_s = 15.0

[source]
kind = "simulator"          # the simulator's vehicle model (needs the server install,
                            # pip install carcloud), or "can" / "kuksa" (see below)
brand = "volta"
seed = 1
interval_s = 1.0            # one sample per interval
speedup = 1.0               # simulated seconds per real second

# A car with a CAN bus instead:
# [source]
# kind = "can"
# interface = "socketcan"   # python-can interface: socketcan, virtual, ...
# channel = "can0"
# dbc = "ev.dbc"            # the car's DBC file
# mapping = "ev_mapping.json"   # VSS path -> DBC signal, interval or on-change, transform
# replay = "ev_drive.log"   # instead of a live bus: play a recorded drive (candump -L, .asc)

# A car that already runs a KUKSA databroker:
# [source]
# kind = "kuksa"
# host = "127.0.0.1"
# port = 55555
# paths = ["Vehicle.Speed", "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"]
# poll_ms = 1000
"""


SOURCE_KINDS = ("simulator", "can", "kuksa")


@dataclass
class AgentConfig:
    """Everything the agent needs, validated at load."""

    vin: str
    secret: str
    host: str = "127.0.0.1"
    port: int = 1884
    tls_ca: Path | None = None
    # Half of it between pings; 1.5 × it of silence and the link counts as dead. Short
    # enough to notice a dead cellular link in under a minute, long enough that an
    # idle car costs a ping every 15 s.
    keepalive_s: int = 30
    buffer_path: Path = Path("outbox.db")
    headunit_path: Path = Path("headunit.jsonl")  # cards for the head unit (headunit.py)
    # The head unit's answers to meeting join actions, and how long one may take (calljoin.py).
    headunit_replies_path: Path = Path("headunit-replies.jsonl")
    call_confirm_s: float = 30.0
    call_microphone: str = "alsa:default"  # [call] microphone: tone:HZ or FORMAT:DEVICE
    call_speaker: str = "alsa:default"  # [call] speaker: FORMAT:TARGET (wav:PATH) or none
    max_bytes: int = 256 * 1024 * 1024
    max_age_s: float = 168 * 3600.0
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 15.0
    receipts: bool = True
    receipt_timeout_s: float = 15.0
    source: dict[str, Any] = field(default_factory=lambda: {"kind": "simulator"})
    config_dir: Path = Path(".")

    def __repr__(self) -> str:
        return (
            f"AgentConfig(vin={self.vin!r}, cloud={self.host}:{self.port}, "
            f"keepalive={self.keepalive_s}s, "
            f"tls={'yes' if self.tls_ca else 'no'}, buffer={str(self.buffer_path)!r}, "
            f"source={self.source.get('kind')!r}, secret=<hidden>)"
        )


def _keepalive(value: object, path: Path) -> int:
    """The MQTT keepalive: whole seconds, on (0 would mean a dead link is never noticed)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ConfigError(f"[cloud] keepalive_s in {path} must be whole seconds, 1 to 65535")
    return value


def load_config(path: Path) -> AgentConfig:
    """Read and check a configuration file; ConfigError says what is wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read agent config {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"agent config {path} is not valid TOML: {exc}") from exc
    base = path.parent

    def section(name: str) -> dict[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] in {path} must be a table")
        return value

    try:
        vin = str(Vin.parse(str(data["vin"])))
        secret = str(data["secret"])
    except KeyError as exc:
        raise ConfigError(f"agent config {path} needs {exc.args[0]!r}") from exc
    cloud, buffer, reconnect = section("cloud"), section("buffer"), section("reconnect")
    source = section("source") or {"kind": "simulator"}
    buffer_path = Path(str(buffer.get("path", "outbox.db")))
    headunit = section("headunit")
    headunit_path = Path(str(headunit.get("path", "headunit.jsonl")))
    replies_path = Path(str(headunit.get("replies_path", "headunit-replies.jsonl")))
    tls_ca = cloud.get("tls_ca")
    config = AgentConfig(
        vin=vin,
        secret=secret,
        host=str(cloud.get("host", "127.0.0.1")),
        port=int(cloud.get("port", 1884)),
        keepalive_s=_keepalive(cloud.get("keepalive_s", 30), path),
        tls_ca=(base / str(tls_ca)) if tls_ca else None,
        buffer_path=buffer_path if buffer_path.is_absolute() else base / buffer_path,
        headunit_path=headunit_path if headunit_path.is_absolute() else base / headunit_path,
        headunit_replies_path=replies_path if replies_path.is_absolute() else base / replies_path,
        call_confirm_s=float(headunit.get("call_confirm_s", 30.0)),
        call_microphone=str(section("call").get("microphone", "alsa:default")),
        call_speaker=str(section("call").get("speaker", "alsa:default")),
        max_bytes=int(float(buffer.get("max_mb", 256)) * 1024 * 1024),
        max_age_s=float(buffer.get("max_age_hours", 168)) * 3600.0,
        reconnect_min_s=float(reconnect.get("min_s", 1.0)),
        reconnect_max_s=float(reconnect.get("max_s", 15.0)),
        receipts=bool(cloud.get("receipts", True)),
        receipt_timeout_s=float(cloud.get("receipt_timeout_s", 15.0)),
        source=source,
        config_dir=base,
    )
    if source.get("kind") not in SOURCE_KINDS:
        raise ConfigError(
            f"source kind {source.get('kind')!r} is not available; "
            f"use one of {', '.join(SOURCE_KINDS)}"
        )
    if config.reconnect_min_s <= 0 or config.reconnect_max_s < config.reconnect_min_s:
        raise ConfigError("[reconnect] needs 0 < min_s <= max_s")
    if config.call_confirm_s <= 0:
        raise ConfigError("[headunit] call_confirm_s must be above 0")
    if config.receipt_timeout_s <= 0:
        raise ConfigError("[cloud] receipt_timeout_s must be above 0")
    return config
