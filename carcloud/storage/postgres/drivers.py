"""DriverStore for PostgreSQL: driver profiles and vehicles' current drivers."""

from __future__ import annotations

from typing import Any

from carcloud.drivers.models import Driver
from carcloud.errors import NotFoundError
from carcloud.storage.calendar_rows import DRIVER_FIELDS, driver_of, driver_values
from carcloud.storage.postgres.engine import Conn, PostgresEngine, Tx
from carcloud.storage.postgres.vehicles import visible_vehicle_id
from carcloud.timeutil import now_us

_SELECT = (
    f"SELECT d.id, b.slug, {', '.join('d.' + f for f in DRIVER_FIELDS)} "
    "FROM drivers d JOIN brands b ON b.id = d.brand_id "
)


async def find_drivers(conn: Conn, where: str, *args: Any) -> list[Driver]:
    """Drivers matching a WHERE clause over d (drivers) and b (brands)."""
    return [
        driver_of(row[0], row[1], list(row)[2:]) for row in await conn.fetch(_SELECT + where, *args)
    ]


async def visible_driver(conn: Conn, driver_id: str, brand: str | None) -> Driver:
    """A driver the caller may see; NotFoundError otherwise."""
    if brand is None:
        found = await find_drivers(conn, "WHERE d.id = $1", driver_id)
    else:
        found = await find_drivers(conn, "WHERE d.id = $1 AND b.slug = $2", driver_id, brand)
    if not found:
        raise NotFoundError(f"driver {driver_id} not found")
    return found[0]


class PostgresDriverStore:
    """DriverStore over the shared PostgreSQL engine."""

    def __init__(self, engine: PostgresEngine) -> None:
        self.engine = engine

    async def create_driver(self, driver: Driver) -> Driver:
        marks = ", ".join(f"${n}" for n in range(1, len(DRIVER_FIELDS) + 3))

        async def write(tx: Tx) -> Driver:
            brand_id = await tx.conn.fetchval("SELECT id FROM brands WHERE slug = $1", driver.brand)
            if brand_id is None:
                raise NotFoundError(f"brand {driver.brand!r} not found")
            await tx.conn.execute(
                f"INSERT INTO drivers (id, brand_id, {', '.join(DRIVER_FIELDS)}) VALUES ({marks})",
                driver.id,
                brand_id,
                *driver_values(driver),
            )
            return driver

        return await self.engine.write(write)

    async def update_driver(self, driver: Driver) -> Driver:
        assignments = ", ".join(f"{name} = ${n}" for n, name in enumerate(DRIVER_FIELDS, 2))

        async def write(tx: Tx) -> Driver:
            status = await tx.conn.execute(
                f"UPDATE drivers SET {assignments} WHERE id = $1", driver.id, *driver_values(driver)
            )
            if status.endswith(" 0"):
                raise NotFoundError(f"driver {driver.id} not found")
            return driver

        return await self.engine.write(write)

    async def get_driver(self, driver_id: str, brand: str | None) -> Driver:
        return await self.engine.read(lambda conn: visible_driver(conn, driver_id, brand))

    async def list_drivers(self, brand: str | None) -> list[Driver]:
        if brand is None:
            return await self.engine.read(lambda conn: find_drivers(conn, "ORDER BY d.name, d.id"))
        return await self.engine.read(
            lambda conn: find_drivers(conn, "WHERE b.slug = $1 ORDER BY d.name, d.id", brand)
        )

    async def delete_driver(self, driver_id: str, brand: str | None) -> None:
        async def write(tx: Tx) -> None:
            await visible_driver(tx.conn, driver_id, brand)
            await tx.conn.execute("DELETE FROM drivers WHERE id = $1", driver_id)

        await self.engine.write(write)

    async def set_vehicle_driver(self, vin: str, brand: str | None, driver_id: str | None) -> None:
        async def write(tx: Tx) -> None:
            vehicle_id = await visible_vehicle_id(tx.conn, vin, brand)
            if driver_id is None:
                await tx.conn.execute(
                    "DELETE FROM vehicle_drivers WHERE vehicle_id = $1", vehicle_id
                )
                return
            same_brand = await tx.conn.fetchval(
                "SELECT 1 FROM drivers d JOIN vehicles v ON v.brand_id = d.brand_id "
                "WHERE d.id = $1 AND v.id = $2",
                driver_id,
                vehicle_id,
            )
            if same_brand is None:
                raise NotFoundError(f"driver {driver_id} not found in the brand of vehicle {vin}")
            await tx.conn.execute(
                "INSERT INTO vehicle_drivers (vehicle_id, driver_id, set_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (vehicle_id) DO UPDATE SET driver_id = $2, set_at = $3",
                vehicle_id,
                driver_id,
                now_us(),
            )

        await self.engine.write(write)

    async def vehicle_driver(self, vin: str, brand: str | None) -> Driver | None:
        async def query(conn: Conn) -> Driver | None:
            vehicle_id = await visible_vehicle_id(conn, vin, brand)
            found = await find_drivers(
                conn,
                "JOIN vehicle_drivers vd ON vd.driver_id = d.id WHERE vd.vehicle_id = $1",
                vehicle_id,
            )
            return found[0] if found else None

        return await self.engine.read(query)
