"""Reading vehicles in PostgreSQL, shared by the stores that join them; targets as SQL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from carcloud.errors import NotFoundError
from carcloud.registry.models import Vehicle
from carcloud.storage.postgres.engine import Conn, Params, Row

VEHICLE_COLUMNS = (
    "v.id, v.vin, b.slug, v.model, v.model_year, v.created_at, v.revoked_at, "
    "v.online, v.last_seen_at, v.connected_at, "
    "ARRAY(SELECT t.tag FROM vehicle_tags t WHERE t.vehicle_id = v.id ORDER BY t.tag) AS tags"
)
VEHICLE_FROM = "FROM vehicles v JOIN brands b ON b.id = v.brand_id"


def vehicle_of(row: Row) -> Vehicle:
    """A vehicle from a row of VEHICLE_COLUMNS."""
    return Vehicle(
        id=row[0],
        vin=row[1],
        brand=row[2],
        model=row[3],
        model_year=row[4],
        tags=tuple(row[10]),
        created_at=row[5],
        revoked_at=row[6],
        online=bool(row[7]),
        last_seen_at=row[8],
        connected_at=row[9],
    )


async def fetch_vehicle(conn: Conn, vin: str, brand: str | None) -> Vehicle:
    """One vehicle, only if it is `brand`'s when given; NotFoundError otherwise."""
    sql = f"SELECT {VEHICLE_COLUMNS} {VEHICLE_FROM} WHERE v.vin = $1"
    args: list[Any] = [vin]
    if brand is not None:
        sql += " AND b.slug = $2"
        args.append(brand)
    row = await conn.fetchrow(sql, *args)
    if row is None:
        raise NotFoundError(f"vehicle {vin} not found")
    return vehicle_of(row)


async def visible_vehicle_id(conn: Conn, vin: str, brand: str | None) -> int:
    """The id of a vehicle the caller may see."""
    sql = "SELECT v.id FROM vehicles v JOIN brands b ON b.id = v.brand_id WHERE v.vin = $1"
    args: list[Any] = [vin]
    if brand is not None:
        sql += " AND b.slug = $2"
        args.append(brand)
    found = await conn.fetchval(sql, *args)
    if found is None:
        raise NotFoundError(f"vehicle {vin} not found")
    return int(found)


def target_where(target: Mapping[str, Any], params: Params) -> str:
    """A fleet target as a WHERE clause over v, b (the same rules as `twins.documents.matches`)."""
    where = ["TRUE"]
    if "brand" in target:
        where.append(f"b.slug = {params.add(target['brand'])}")
    if "model" in target:
        where.append(f"v.model = {params.add(target['model'])}")
    if "model_year_min" in target:
        where.append(f"v.model_year >= {params.add(target['model_year_min'])}")
    if "model_year_max" in target:
        where.append(f"v.model_year <= {params.add(target['model_year_max'])}")
    tags = list(dict.fromkeys(target.get("tags", [])))
    if tags:
        where.append(
            f"(SELECT COUNT(*) FROM vehicle_tags t WHERE t.vehicle_id = v.id "
            f"AND t.tag = ANY({params.add(tags)}::text[])) = {params.add(len(tags))}"
        )
    return " AND ".join(where)
