"""Reading vehicles in SQLite, shared by the stores that join them, and fleet targets as SQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from carcloud.errors import NotFoundError
from carcloud.registry.models import Vehicle

VEHICLE_COLUMNS = (
    "v.id, v.vin, b.slug, v.model, v.model_year, v.created_at, v.revoked_at, "
    "v.online, v.last_seen_at, v.connected_at"
)
VEHICLE_FROM = "FROM vehicles v JOIN brands b ON b.id = v.brand_id"
VEHICLE_WIDTH = len(VEHICLE_COLUMNS.split(","))


def vehicle_rows(conn: sqlite3.Connection, rows: Iterable[Sequence[Any]]) -> list[Vehicle]:
    """Vehicles from rows of VEHICLE_COLUMNS, with their tags read in chunks."""
    rows = list(rows)
    if not rows:
        return []
    ids = [row[0] for row in rows]
    tags: dict[int, list[str]] = {vehicle_id: [] for vehicle_id in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for vehicle_id, tag in conn.execute(
            f"SELECT vehicle_id, tag FROM vehicle_tags WHERE vehicle_id IN ({marks}) ORDER BY tag",
            chunk,
        ):
            tags[vehicle_id].append(tag)
    return [
        Vehicle(
            id=row[0],
            vin=row[1],
            brand=row[2],
            model=row[3],
            model_year=row[4],
            tags=tuple(tags[row[0]]),
            created_at=row[5],
            revoked_at=row[6],
            online=bool(row[7]),
            last_seen_at=row[8],
            connected_at=row[9],
        )
        for row in rows
    ]


def fetch_vehicle(conn: sqlite3.Connection, vin: str, brand: str | None) -> Vehicle:
    """One vehicle, only if it is `brand`'s when given; NotFoundError otherwise."""
    sql = f"SELECT {VEHICLE_COLUMNS} {VEHICLE_FROM} WHERE v.vin = ?"
    params: list[Any] = [vin]
    if brand is not None:
        sql += " AND b.slug = ?"
        params.append(brand)
    found = vehicle_rows(conn, conn.execute(sql, params))
    if not found:
        raise NotFoundError(f"vehicle {vin} not found")
    return found[0]


def visible_vehicle_id(conn: sqlite3.Connection, vin: str, brand: str | None) -> int:
    """The id of a vehicle the caller may see (no tags: many callers need only the id)."""
    sql = "SELECT v.id FROM vehicles v JOIN brands b ON b.id = v.brand_id WHERE v.vin = ?"
    params: list[Any] = [vin]
    if brand is not None:
        sql += " AND b.slug = ?"
        params.append(brand)
    row = conn.execute(sql, params).fetchone()
    if row is None:
        raise NotFoundError(f"vehicle {vin} not found")
    return int(row[0])


def target_where(target: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """A fleet target (brand, model, model_year_min/max, tags) as a WHERE clause over v, b.

    The same conditions as `carcloud.twins.documents.matches`; the contract suite
    checks that both agree.
    """
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if "brand" in target:
        where.append("b.slug = ?")
        params.append(target["brand"])
    if "model" in target:
        where.append("v.model = ?")
        params.append(target["model"])
    if "model_year_min" in target:
        where.append("v.model_year >= ?")
        params.append(target["model_year_min"])
    if "model_year_max" in target:
        where.append("v.model_year <= ?")
        params.append(target["model_year_max"])
    for tag in dict.fromkeys(target.get("tags", [])):
        where.append("v.id IN (SELECT vehicle_id FROM vehicle_tags WHERE tag = ?)")
        params.append(tag)
    return " AND ".join(where), params
