"""The scale backend: every store over one PostgreSQL database (asyncpg pool)."""

from __future__ import annotations

from carcloud.catalog import SignalCatalog
from carcloud.storage.postgres.alerts import PostgresAlertStore
from carcloud.storage.postgres.calendars import PostgresCalendarStore
from carcloud.storage.postgres.calls import PostgresCallStore
from carcloud.storage.postgres.commands import PostgresCommandStore
from carcloud.storage.postgres.drivers import PostgresDriverStore
from carcloud.storage.postgres.engine import PostgresEngine
from carcloud.storage.postgres.events import PostgresEventStore
from carcloud.storage.postgres.geofences import PostgresGeofenceStore
from carcloud.storage.postgres.productivity import PostgresProductivityStore
from carcloud.storage.postgres.registry import PostgresRegistryStore
from carcloud.storage.postgres.telematics import PostgresTelematicsStore
from carcloud.storage.postgres.telemetry import PostgresTelemetryStore
from carcloud.storage.postgres.twins import PostgresTwinStore
from carcloud.storage.postgres.webhooks import PostgresWebhookStore
from carcloud.storage.stores import Stores


def postgres_stores(url: str, catalog: SignalCatalog | None = None) -> Stores:
    """Every store over one PostgreSQL database (not opened yet)."""
    engine = PostgresEngine(url)
    return Stores(
        engine=engine,
        registry=PostgresRegistryStore(engine),
        telemetry=PostgresTelemetryStore(engine, catalog),
        commands=PostgresCommandStore(engine),
        twins=PostgresTwinStore(engine),
        events=PostgresEventStore(engine),
        drivers=PostgresDriverStore(engine),
        calls=PostgresCallStore(engine),
        calendars=PostgresCalendarStore(engine),
        telematics=PostgresTelematicsStore(engine, catalog),
        webhooks=PostgresWebhookStore(engine),
        geofences=PostgresGeofenceStore(engine),
        alerts=PostgresAlertStore(engine),
        productivity=PostgresProductivityStore(engine),
    )


__all__ = ["PostgresEngine", "postgres_stores"]
