"""Settings of a carcloud installation: one table, read from flags, CARCLOUD_* variables, defaults.

Every setting has a row in `SETTINGS`: its name, its environment variable
(`CARCLOUD_<NAME>`), its command-line flag, how its text is parsed and checked, its
default and its help. The CLI builds its flags from the same rows, so a flag, its
variable and its default are written once. Precedence: flag > environment > default.

A worker on another host needs only settings (`CARCLOUD_NATS_URL`,
`CARCLOUD_DATABASE_URL`, `CARCLOUD_SECRETS_FILE`), not the platform's data dir.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from carcloud.errors import ConfigError

DEFAULT_HTTP_PORT = 8740
DEFAULT_MQTT_PORT = 1884
DEFAULT_NATS_PORT = 4225
# Simulated time the demo fleet runs, unsent, before going live: cars already drive.
DEMO_WARMUP_S = 600.0

ENV_PREFIX = "CARCLOUD_"


# ---- parsing one value ----------------------------------------------------------------
# Each parser takes the text of a flag or variable and returns the typed value, or raises
# ValueError with a reason; the caller adds which variable or flag held the text.


def _text(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _host(raw: str) -> str:
    value = _text(raw)
    if "://" in value or any(ch.isspace() for ch in value):
        raise ValueError("expected a host name or IP address, e.g. 127.0.0.1 or 0.0.0.0")
    return value


def _port(raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError("expected a port number (1-65535)") from None
    if not 1 <= value <= 65535:
        raise ValueError("port out of range (1-65535)")
    return value


def _count(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected a whole number >= {minimum}") from None
        if value < minimum:
            raise ValueError(f"must be >= {minimum}")
        return value

    return parse


def _positive(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("expected a number > 0") from None
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a number > 0")
    return value


def _switch(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected 1 or 0 (true/false, yes/no, on/off)")


def _path(raw: str) -> Path:
    return Path(_text(raw)).expanduser()


def _url(raw: str, schemes: tuple[str, ...], example: str) -> SplitResult:
    value = _text(raw)
    try:
        parts = urlsplit(value)
        _ = parts.port  # urlsplit checks the port only when it is read
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc}); expected e.g. {example}") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"expected a {'/'.join(schemes)} URL, e.g. {example}")
    return parts


def _url_list(raw: str) -> list[str]:
    """The URLs of a comma-separated list (the servers of a cluster), none empty."""
    urls = [part.strip() for part in _text(raw).split(",")]
    if not all(urls):
        raise ValueError("an empty entry in a comma-separated list of URLs")
    return urls


def _nats_url(raw: str) -> str:
    return ",".join(
        _url(url, ("nats", "tls", "ws", "wss"), "nats://nats.example.com:4222").geturl()
        for url in _url_list(raw)
    )


def _one_mqtt_url(raw: str) -> str:
    parts = _url(raw, ("mqtt", "mqtts"), "mqtt://mqtt.example.com:1884")
    if parts.path not in ("", "/") or parts.username or parts.password:
        raise ValueError("expected mqtt://HOST:PORT, without a path or credentials")
    if parts.port is None:
        # The registered MQTT ports, so that the URL always names the port we connect to.
        port = 8883 if parts.scheme == "mqtts" else 1883
        parts = parts._replace(netloc=f"{parts.netloc}:{port}")
    return parts.geturl()


def _mqtt_url(raw: str) -> str:
    urls = [_one_mqtt_url(url) for url in _url_list(raw)]
    if len({urlsplit(url).scheme for url in urls}) > 1:
        raise ValueError("mixes mqtt:// and mqtts:// listeners")
    return ",".join(urls)


def port_list(raw: str) -> list[int]:
    """Ports separated by commas (one per node of a cluster), e.g. 4222 or 4222,4223,4224."""
    return [_port(part) for part in _text(raw).split(",")]


def host_list(raw: str) -> list[str]:
    """Hosts separated by commas (one per node of a cluster)."""
    return [_host(part) for part in _text(raw).split(",")]


def nats_servers(nats_url: str) -> list[str]:
    """The servers of a NATS URL setting (one, or a cluster's, comma-separated).

    carcloud connects as several identities (svc, sys, auth) whose passwords come
    from the secrets file, so a user or token in the URL would be ignored: refused.
    """
    servers = _nats_url(nats_url).split(",")
    for server in servers:
        if urlsplit(server).username is not None:
            raise ConfigError(
                f"NATS URL {mask_url(server)} holds credentials; carcloud's services connect "
                "with the passwords of the secrets file (--secrets-file), so give the URL "
                "without them"
            )
    return servers


def mqtt_addresses(mqtt_url: str) -> list[tuple[str, int]]:
    """(host, port) of each MQTT listener of an MQTT URL setting, in the given order."""
    addresses = []
    for url in _mqtt_url(mqtt_url).split(","):
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None  # checked by the parser
        addresses.append((parts.hostname, parts.port))
    return addresses


def _database_url(raw: str) -> str:
    value = _text(raw)
    # Only the shape is checked here; which backends exist is open_storage's to say.
    if not re.match(r"^[a-z][a-z0-9+.-]*://", value):
        raise ValueError("expected a URL such as sqlite:///PATH or postgresql://USER@HOST/DB")
    return value


def _media_mode(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("auto", "on", "off"):
        raise ValueError("expected auto, on or off")
    return value


def _port_range(raw: str) -> tuple[int, int]:
    low, sep, high = raw.strip().partition("-")
    if not sep:
        raise ValueError("expected a range of UDP ports FIRST-LAST, e.g. 40000-40999")
    first, last = _port(low), _port(high)
    if last - first < 9:
        raise ValueError("the range must hold at least 10 ports (FIRST-LAST, FIRST < LAST)")
    return first, last


def _janus_url(raw: str) -> str:
    return _url(raw, ("http", "https"), "http://janus.example.com:8088/janus").geturl()


# ---- the table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One setting: where it comes from, how it is checked, what it defaults to."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    flag: str = ""  # default: --name-with-dashes
    metavar: str | None = None
    default_text: str | None = None  # for --help, when the default is derived

    @property
    def env(self) -> str:
        """The environment variable, e.g. CARCLOUD_HTTP_PORT."""
        return ENV_PREFIX + self.name.upper()

    @property
    def option(self) -> str:
        """The command-line flag, e.g. --http-port."""
        return self.flag or "--" + self.name.replace("_", "-")

    def help_text(self) -> str:
        """The help line: what it is, its variable and its default."""
        default = self.default_text or ("none" if self.default is None else str(self.default))
        return f"{self.help} (env {self.env}, default {default})"

    def from_text(self, raw: str, source: str) -> Any:
        """Parse the text of a flag or variable; ConfigError names `source` and the value."""
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{source}={raw!r}: {exc}") from None


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "data_dir",
        _path,
        Path(".carcloud"),
        "where carcloud keeps its data",
        metavar="DIR",
        default_text="./.carcloud",
    ),
    Setting("host", _host, "127.0.0.1", "address carcloud listens on"),
    Setting("http_port", _port, DEFAULT_HTTP_PORT, "REST API and web page port", metavar="PORT"),
    Setting("mqtt_port", _port, DEFAULT_MQTT_PORT, "MQTT listener for vehicles", metavar="PORT"),
    Setting(
        "nats_port",
        _port,
        DEFAULT_NATS_PORT,
        "NATS client port for platform services",
        metavar="PORT",
    ),
    Setting(
        "database_url",
        _database_url,
        None,
        "database URL",
        flag="--database",
        metavar="URL",
        default_text="sqlite:///DATA_DIR/carcloud.db",
    ),
    Setting("ingest_workers", _count(0), 1, "ingest loops in this process", metavar="N"),
    Setting("ingest_batch", _count(1), 1000, "messages an ingest loop pulls at once", metavar="N"),
    Setting(
        "receipt_interval_ms",
        _count(0),
        1000,
        "least time between two commit receipts to one car; 0 sends none",
        metavar="MS",
    ),
    Setting(
        "retention_days",
        _count(0),
        0,
        "days of full-rate telemetry history kept before today; 0 keeps it forever",
        metavar="DAYS",
    ),
    Setting(
        "downsampled_retention_days",
        _count(0),
        0,
        "days of per-minute history kept (at least --retention-days); 0 keeps it forever",
        metavar="DAYS",
    ),
    Setting(
        "max_message_bytes",
        _count(1),
        64 * 1024,
        "largest telemetry message accepted",
        metavar="BYTES",
    ),
    Setting(
        "tls_cert",
        _path,
        None,
        "certificate (PEM) of the MQTT listener: vehicles use TLS",
        metavar="FILE",
    ),
    Setting("tls_key", _path, None, "private key (PEM) of the TLS certificate", metavar="FILE"),
    Setting(
        "nats_url",
        _nats_url,
        "",
        "an existing NATS server or cluster (URLs separated by commas): `up` then starts "
        "no server of its own, and a worker on another host finds the platform there",
        flag="--nats",
        metavar="URL",
        default_text="up: its own server; worker: from DATA_DIR/runtime.json",
    ),
    Setting(
        "nats_tls_ca",
        _path,
        None,
        "CA certificate (PEM) of the NATS servers: carcloud checks tls:// servers against it "
        "(default: the system's trust store); nats-config: the nodes check each other's routes "
        "with it (and clients' certificates, with --nats-tls-verify-clients)",
        metavar="FILE",
    ),
    Setting(
        "nats_tls_cert",
        _path,
        None,
        "certificate (PEM) on carcloud's side of NATS TLS: nats-config: every node's, for "
        "clients and routes; a carcloud process: its client certificate (mutual TLS: "
        "nodes written with --nats-tls-verify-clients require one)",
        metavar="FILE",
    ),
    Setting("nats_tls_key", _path, None, "private key (PEM) of --nats-tls-cert", metavar="FILE"),
    Setting(
        "nats_tls_first",
        _switch,
        True,
        "NATS TLS starts with the TLS handshake, before the server's INFO, so that nothing "
        "on the network can talk a client out of TLS; 0 for servers that send INFO first "
        "(nats-config: the client ports' handshake_first)",
        metavar="1|0",
    ),
    Setting(
        "mqtt_url",
        _mqtt_url,
        "",
        "the MQTT listener(s) of that NATS (URLs separated by commas): the control role "
        "connects to the first that answers",
        metavar="URL",
        default_text="up: its own listener; worker: from DATA_DIR/runtime.json",
    ),
    Setting(
        "stream_replicas",
        _count(1),
        1,
        "copies each JetStream stream keeps: 3 on a NATS cluster of three or more",
        metavar="N",
    ),
    Setting(
        "secrets_file",
        _path,
        None,
        "a copy of the platform's secrets.json: its service credentials",
        metavar="FILE",
        default_text="DATA_DIR/secrets.json",
    ),
    Setting(
        "webhook_allow_private",
        _switch,
        False,
        "let webhooks reach loopback and private addresses (a test platform, the demo); "
        "by default only public addresses receive them",
        metavar="1|0",
    ),
    Setting(
        "media",
        _media_mode,
        "auto",
        "carcloud's audio rooms on a Janus child process: on, off, or auto (on when "
        "Debian's janus package is installed)",
        metavar="auto|on|off",
    ),
    Setting(
        "janus_url",
        _janus_url,
        None,
        "an external Janus (HTTP API, AudioBridge) instead of the child process",
        metavar="URL",
    ),
    Setting(
        "janus_secret",
        _text,
        None,
        "API secret (and AudioBridge admin key) of the external Janus of --janus-url",
        metavar="SECRET",
    ),
    Setting(
        "media_ports",
        _port_range,
        (40000, 40999),
        "UDP ports the media server uses for calls (open them in the firewall)",
        metavar="FIRST-LAST",
        default_text="40000-40999",
    ),
    Setting(
        "media_interfaces",
        _text,
        None,
        "the only interfaces or addresses (comma-separated) the media server offers to "
        "callers, e.g. eth0 or 203.0.113.7; default: every interface but loopback",
        metavar="LIST",
    ),
    Setting(
        "room_close_after_s",
        _count(1),
        300,
        "seconds an audio room stays open with nobody in it",
        metavar="S",
    ),
    Setting("max_rooms_per_brand", _count(1), 20, "open audio rooms per brand", metavar="N"),
    Setting(
        "max_participants_per_brand",
        _count(1),
        200,
        "people and cars in a brand's audio rooms at once",
        metavar="N",
    ),
    Setting(
        "rejoin_grace_s",
        _count(0),
        120,
        "seconds a participant whose link dropped may rejoin with the same token",
        metavar="S",
    ),
    # Trip detection (docs/telematics.md); every derive process of a platform should agree.
    Setting(
        "trip_stop_s",
        _positive,
        180.0,
        "seconds a car must stand still for its trip to end (power off ends it at once)",
        metavar="S",
    ),
    Setting(
        "trip_gap_s",
        _positive,
        60.0,
        "seconds without data that count as a gap (the car was offline), not sampling",
        metavar="S",
    ),
    Setting(
        "trip_gap_min_m",
        _positive,
        200.0,
        "metres the car must have covered across a gap for its trip to go on through it",
        metavar="M",
    ),
    Setting(
        "trip_gap_min_kmh",
        _positive,
        3.0,
        "average km/h across a gap at or above which the car kept driving through it",
        metavar="KMH",
    ),
    Setting(
        "trip_moving_kmh",
        _positive,
        1.0,
        "speed from which a car that reports its speed is moving",
        metavar="KMH",
    ),
    Setting(
        "trip_min_distance_m",
        _positive,
        100.0,
        "a completed drive shorter than this is not a trip",
        metavar="M",
    ),
    Setting(
        "trip_min_positions",
        _count(1),
        2,
        "a completed drive with fewer reported positions is not a trip",
        metavar="N",
    ),
)

SETTINGS_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}


def _default(name: str) -> Any:
    """A dataclass field whose default is the table's, so it is written once."""
    return field(default_factory=lambda: SETTINGS_BY_NAME[name].default)


def mask_url(url: str) -> str:
    """The URL with its password (or a NATS token in the user part) replaced by ***.

    A comma-separated list (a cluster's servers) is masked URL by URL.
    """
    if "," in url:
        return ",".join(mask_url(part) for part in url.split(","))
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if parts.password is None and parts.username is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = "***" if parts.password is None else f"{parts.username}:***"
    return parts._replace(netloc=f"{user}@{host}").geturl()


@dataclass
class Settings:
    """Where carcloud keeps its data, which ports it serves and what it connects to.

    `nats_url` and `mqtt_url` left empty are derived from host and port when the
    Settings is made; `nats_url_given`/`mqtt_url_given` say whether they were given.
    """

    data_dir: Path = _default("data_dir")
    host: str = _default("host")
    http_port: int = _default("http_port")
    mqtt_port: int = _default("mqtt_port")
    nats_port: int = _default("nats_port")
    database_url: str | None = _default("database_url")
    ingest_workers: int = _default("ingest_workers")
    ingest_batch: int = _default("ingest_batch")
    receipt_interval_ms: int = _default("receipt_interval_ms")
    retention_days: int = _default("retention_days")
    downsampled_retention_days: int = _default("downsampled_retention_days")
    max_message_bytes: int = _default("max_message_bytes")
    tls_cert: Path | None = _default("tls_cert")
    tls_key: Path | None = _default("tls_key")
    nats_url: str = _default("nats_url")
    nats_tls_ca: Path | None = _default("nats_tls_ca")
    nats_tls_cert: Path | None = _default("nats_tls_cert")
    nats_tls_key: Path | None = _default("nats_tls_key")
    nats_tls_first: bool = _default("nats_tls_first")
    mqtt_url: str = _default("mqtt_url")
    stream_replicas: int = _default("stream_replicas")
    secrets_file: Path | None = _default("secrets_file")
    webhook_allow_private: bool = _default("webhook_allow_private")
    media: str = _default("media")
    janus_url: str | None = _default("janus_url")
    janus_secret: str | None = _default("janus_secret")
    media_ports: tuple[int, int] = _default("media_ports")
    media_interfaces: str | None = _default("media_interfaces")
    room_close_after_s: int = _default("room_close_after_s")
    max_rooms_per_brand: int = _default("max_rooms_per_brand")
    max_participants_per_brand: int = _default("max_participants_per_brand")
    rejoin_grace_s: int = _default("rejoin_grace_s")
    trip_stop_s: float = _default("trip_stop_s")
    trip_gap_s: float = _default("trip_gap_s")
    trip_gap_min_m: float = _default("trip_gap_min_m")
    trip_gap_min_kmh: float = _default("trip_gap_min_kmh")
    trip_moving_kmh: float = _default("trip_moving_kmh")
    trip_min_distance_m: float = _default("trip_min_distance_m")
    trip_min_positions: int = _default("trip_min_positions")
    nats_url_given: bool = field(init=False, default=False, repr=False, compare=False)
    mqtt_url_given: bool = field(init=False, default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.absolute()
        # A worker must know whether a URL was given: when not, it looks for the platform
        # of its data dir (runtime.json) instead of trusting a derived local default.
        self.nats_url_given = bool(self.nats_url)
        self.mqtt_url_given = bool(self.mqtt_url)
        if not self.nats_url:
            self.nats_url = f"nats://{self.host}:{self.nats_port}"
        if not self.mqtt_url:
            scheme = "mqtts" if self.tls_cert else "mqtt"
            self.mqtt_url = f"{scheme}://{self.host}:{self.mqtt_port}"

    def __repr__(self) -> str:
        # Settings end up in logs and tracebacks: passwords in URLs never do.
        shown = {
            "data_dir": str(self.data_dir),
            "host": self.host,
            "http_port": self.http_port,
            "mqtt_port": self.mqtt_port,
            "nats_port": self.nats_port,
            "database_url": mask_url(self.resolved_database_url()),
            "ingest_workers": self.ingest_workers,
            "ingest_batch": self.ingest_batch,
            "receipt_interval_ms": self.receipt_interval_ms,
            "retention_days": self.retention_days,
            "downsampled_retention_days": self.downsampled_retention_days,
            "max_message_bytes": self.max_message_bytes,
            "tls_cert": None if self.tls_cert is None else str(self.tls_cert),
            "tls_key": None if self.tls_key is None else str(self.tls_key),
            "nats_url": mask_url(self.nats_url),
            "nats_tls_ca": None if self.nats_tls_ca is None else str(self.nats_tls_ca),
            "nats_tls_cert": None if self.nats_tls_cert is None else str(self.nats_tls_cert),
            "nats_tls_key": None if self.nats_tls_key is None else str(self.nats_tls_key),
            "nats_tls_first": self.nats_tls_first,
            "mqtt_url": mask_url(self.mqtt_url),
            "stream_replicas": self.stream_replicas,
            "secrets_file": None if self.secrets_file is None else str(self.secrets_file),
            "webhook_allow_private": self.webhook_allow_private,
            "media": self.media,
            "janus_url": None if self.janus_url is None else mask_url(self.janus_url),
            "janus_secret": None if self.janus_secret is None else "***",
            "media_ports": "{}-{}".format(*self.media_ports),
            "media_interfaces": self.media_interfaces,
            "room_close_after_s": self.room_close_after_s,
            "max_rooms_per_brand": self.max_rooms_per_brand,
            "max_participants_per_brand": self.max_participants_per_brand,
            "rejoin_grace_s": self.rejoin_grace_s,
            "trip_stop_s": self.trip_stop_s,
            "trip_gap_s": self.trip_gap_s,
            "trip_gap_min_m": self.trip_gap_min_m,
            "trip_gap_min_kmh": self.trip_gap_min_kmh,
            "trip_moving_kmh": self.trip_moving_kmh,
            "trip_min_distance_m": self.trip_min_distance_m,
            "trip_min_positions": self.trip_min_positions,
        }
        return "Settings(" + ", ".join(f"{key}={value!r}" for key, value in shown.items()) + ")"

    def resolved_database_url(self) -> str:
        """The database URL; by default a SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'carcloud.db'}"

    @property
    def http_url(self) -> str:
        """Where the REST API of this process answers."""
        return f"http://{self.host}:{self.http_port}"


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    names: Iterable[str] | None = None,
) -> Settings:
    """Settings from flags, then CARCLOUD_* variables, then the table's defaults.

    `names` are the settings the caller takes (a command takes those it has flags
    for; default: all). The others keep their defaults whatever the environment
    says, so that a variable meant for workers cannot redirect `carcloud up`.
    A flag value of None means "not given"; an empty variable counts as unset.
    Raises ConfigError naming the variable or flag and the bad value.
    """
    flags = flags or {}
    environ = os.environ if environ is None else environ
    taken = set(SETTINGS_BY_NAME if names is None else names)
    unknown = (taken | set(flags)) - set(SETTINGS_BY_NAME)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.name not in taken:
            continue
        given = flags.get(setting.name)
        if isinstance(given, str):
            values[setting.name] = setting.from_text(given, setting.option)
        elif given is not None:
            values[setting.name] = given  # already typed, by argparse or a caller
        elif environ.get(setting.env, "").strip():
            values[setting.name] = setting.from_text(environ[setting.env], setting.env)
    return Settings(**values)


def default_data_dir() -> Path:
    """$CARCLOUD_DATA_DIR, else ./.carcloud in the current directory."""
    return load_settings(names=["data_dir"]).data_dir
