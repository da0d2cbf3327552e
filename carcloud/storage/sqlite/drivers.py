"""DriverStore for SQLite: driver profiles and vehicles' current drivers."""

from __future__ import annotations

import sqlite3
from typing import Any

from carcloud.drivers.models import Driver
from carcloud.errors import NotFoundError
from carcloud.storage.calendar_rows import DRIVER_FIELDS, driver_of, driver_values
from carcloud.storage.sqlite.engine import SqliteEngine
from carcloud.storage.sqlite.vehicles import visible_vehicle_id
from carcloud.timeutil import now_us

_SELECT = (
    f"SELECT d.id, b.slug, {', '.join('d.' + f for f in DRIVER_FIELDS)} "
    "FROM drivers d JOIN brands b ON b.id = d.brand_id "
)


def find_drivers(conn: sqlite3.Connection, where: str, params: list[Any]) -> list[Driver]:
    """Drivers matching a WHERE clause over d (drivers) and b (brands)."""
    return [driver_of(row[0], row[1], row[2:]) for row in conn.execute(_SELECT + where, params)]


def visible_driver(conn: sqlite3.Connection, driver_id: str, brand: str | None) -> Driver:
    """A driver the caller may see; NotFoundError otherwise."""
    where, params = "WHERE d.id = ?", [driver_id]
    if brand is not None:
        where += " AND b.slug = ?"
        params.append(brand)
    found = find_drivers(conn, where, params)
    if not found:
        raise NotFoundError(f"driver {driver_id} not found")
    return found[0]


class SqliteDriverStore:
    """DriverStore over the shared SQLite engine."""

    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine

    async def create_driver(self, driver: Driver) -> Driver:
        marks = ", ".join("?" * (len(DRIVER_FIELDS) + 2))

        def write(conn: sqlite3.Connection) -> Driver:
            row = conn.execute("SELECT id FROM brands WHERE slug = ?", (driver.brand,)).fetchone()
            if row is None:
                raise NotFoundError(f"brand {driver.brand!r} not found")
            conn.execute(
                f"INSERT INTO drivers (id, brand_id, {', '.join(DRIVER_FIELDS)}) VALUES ({marks})",
                (driver.id, row[0], *driver_values(driver)),
            )
            return driver

        return await self.engine.write(write)

    async def update_driver(self, driver: Driver) -> Driver:
        assignments = ", ".join(f"{name} = ?" for name in DRIVER_FIELDS)

        def write(conn: sqlite3.Connection) -> Driver:
            cursor = conn.execute(
                f"UPDATE drivers SET {assignments} WHERE id = ?",
                (*driver_values(driver), driver.id),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"driver {driver.id} not found")
            return driver

        return await self.engine.write(write)

    async def get_driver(self, driver_id: str, brand: str | None) -> Driver:
        return await self.engine.read(lambda conn: visible_driver(conn, driver_id, brand))

    async def list_drivers(self, brand: str | None) -> list[Driver]:
        where, params = ("WHERE b.slug = ? ", [brand]) if brand is not None else ("", [])
        return await self.engine.read(
            lambda conn: find_drivers(conn, where + "ORDER BY d.name, d.id", params)
        )

    async def delete_driver(self, driver_id: str, brand: str | None) -> None:
        def write(conn: sqlite3.Connection) -> None:
            visible_driver(conn, driver_id, brand)
            conn.execute("DELETE FROM drivers WHERE id = ?", (driver_id,))

        await self.engine.write(write)

    async def set_vehicle_driver(self, vin: str, brand: str | None, driver_id: str | None) -> None:
        def write(conn: sqlite3.Connection) -> None:
            vehicle_id = visible_vehicle_id(conn, vin, brand)
            if driver_id is None:
                conn.execute("DELETE FROM vehicle_drivers WHERE vehicle_id = ?", (vehicle_id,))
                return
            same_brand = conn.execute(
                "SELECT 1 FROM drivers d JOIN vehicles v ON v.brand_id = d.brand_id "
                "WHERE d.id = ? AND v.id = ?",
                (driver_id, vehicle_id),
            ).fetchone()
            if same_brand is None:
                raise NotFoundError(f"driver {driver_id} not found in the brand of vehicle {vin}")
            conn.execute(
                "INSERT OR REPLACE INTO vehicle_drivers (vehicle_id, driver_id, set_at) "
                "VALUES (?, ?, ?)",
                (vehicle_id, driver_id, now_us()),
            )

        await self.engine.write(write)

    async def vehicle_driver(self, vin: str, brand: str | None) -> Driver | None:
        def query(conn: sqlite3.Connection) -> Driver | None:
            vehicle_id = visible_vehicle_id(conn, vin, brand)
            found = find_drivers(
                conn,
                "JOIN vehicle_drivers vd ON vd.driver_id = d.id WHERE vd.vehicle_id = ?",
                [vehicle_id],
            )
            return found[0] if found else None

        return await self.engine.read(query)
