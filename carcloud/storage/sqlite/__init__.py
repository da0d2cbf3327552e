"""The embedded backend: every store over one SQLite file (WAL)."""

from __future__ import annotations

from pathlib import Path

from carcloud.catalog import SignalCatalog
from carcloud.storage.sqlite.alerts import SqliteAlertStore
from carcloud.storage.sqlite.calendars import SqliteCalendarStore
from carcloud.storage.sqlite.calls import SqliteCallStore
from carcloud.storage.sqlite.commands import SqliteCommandStore
from carcloud.storage.sqlite.drivers import SqliteDriverStore
from carcloud.storage.sqlite.engine import SqliteEngine
from carcloud.storage.sqlite.events import SqliteEventStore
from carcloud.storage.sqlite.geofences import SqliteGeofenceStore
from carcloud.storage.sqlite.productivity import SqliteProductivityStore
from carcloud.storage.sqlite.registry import SqliteRegistryStore
from carcloud.storage.sqlite.telematics import SqliteTelematicsStore
from carcloud.storage.sqlite.telemetry import SqliteTelemetryStore
from carcloud.storage.sqlite.twins import SqliteTwinStore
from carcloud.storage.sqlite.webhooks import SqliteWebhookStore
from carcloud.storage.stores import Stores


def sqlite_stores(
    path: Path | str, catalog: SignalCatalog | None = None, synchronous: str = "NORMAL"
) -> Stores:
    """Every store over one SQLite file (not opened yet)."""
    engine = SqliteEngine(path, synchronous)
    return Stores(
        engine=engine,
        registry=SqliteRegistryStore(engine),
        telemetry=SqliteTelemetryStore(engine, catalog),
        commands=SqliteCommandStore(engine),
        twins=SqliteTwinStore(engine),
        events=SqliteEventStore(engine),
        drivers=SqliteDriverStore(engine),
        calls=SqliteCallStore(engine),
        calendars=SqliteCalendarStore(engine),
        telematics=SqliteTelematicsStore(engine, catalog),
        webhooks=SqliteWebhookStore(engine),
        geofences=SqliteGeofenceStore(engine),
        alerts=SqliteAlertStore(engine),
        productivity=SqliteProductivityStore(engine),
    )


__all__ = ["SqliteEngine", "sqlite_stores"]
