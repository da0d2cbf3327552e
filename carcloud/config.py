"""Settings of a carcloud installation, with defaults for the embedded laptop setup."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HTTP_PORT = 8740
DEFAULT_MQTT_PORT = 1884
DEFAULT_NATS_PORT = 4225
# Simulated time the demo fleet runs, unsent, before going live: cars already drive.
DEMO_WARMUP_S = 600.0


def default_data_dir() -> Path:
    """$CARCLOUD_DATA_DIR, else ./.carcloud in the current directory."""
    return Path(os.environ.get("CARCLOUD_DATA_DIR", ".carcloud")).absolute()


@dataclass
class Settings:
    """Where carcloud keeps its data and which local ports it serves."""

    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    http_port: int = DEFAULT_HTTP_PORT
    mqtt_port: int = DEFAULT_MQTT_PORT
    nats_port: int = DEFAULT_NATS_PORT
    database_url: str | None = None
    ingest_workers: int = 1
    ingest_batch: int = 1000
    max_message_bytes: int = 64 * 1024
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def __repr__(self) -> str:
        return (
            f"Settings(data_dir={str(self.data_dir)!r}, host={self.host!r}, "
            f"http_port={self.http_port}, mqtt_port={self.mqtt_port}, "
            f"nats_port={self.nats_port}, database_url={self.resolved_database_url()!r}, "
            f"ingest_workers={self.ingest_workers})"
        )

    def resolved_database_url(self) -> str:
        """The database URL; by default a SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'carcloud.db'}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def nats_url(self) -> str:
        return f"nats://{self.host}:{self.nats_port}"

    @property
    def mqtt_url(self) -> str:
        scheme = "mqtts" if self.tls_cert else "mqtt"
        return f"{scheme}://{self.host}:{self.mqtt_port}"
