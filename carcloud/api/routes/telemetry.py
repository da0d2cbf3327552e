"""Latest state, signal history, dead letters and the signal catalog."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query

from carcloud.api.schemas import (
    CatalogSignal,
    DeadLetterOut,
    HistoryPointOut,
    SignalHistory,
    SignalValueOut,
    VehicleState,
)
from carcloud.api.security import CurrentPrincipal, CurrentServices
from carcloud.errors import ValidationError
from carcloud.timeutil import format_us, parse_rfc3339_us
from carcloud.vin import Vin

router = APIRouter()

_DURATION_RE = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_US = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}


def parse_duration_us(raw: str, field: str) -> int:
    """'500ms', '10s', '5m', '1h', '1d' to microseconds."""
    match = _DURATION_RE.fullmatch(raw.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValidationError(f"{field} {raw!r} is not a duration like 500ms, 10s, 5m, 1h or 1d")
    return int(match.group(1)) * _UNIT_US[match.group(2)]


@router.get("/vehicles/{vin}/state", tags=["telemetry"])
async def vehicle_state(vin: str, who: CurrentPrincipal, svc: CurrentServices) -> VehicleState:
    """The latest value and time of every signal, online status and last-seen time."""
    vehicle = await svc.registry.get_vehicle(str(Vin.parse(vin)), who.brand)
    latest = await svc.stores.telemetry.latest_state(vehicle.vin)
    last_seen = max(vehicle.last_seen_at or 0, latest.received_at or 0) or None
    return VehicleState(
        vin=vehicle.vin,
        online=vehicle.online,
        last_seen_at=format_us(last_seen),
        received_at=format_us(latest.received_at),
        signals={value.path: SignalValueOut.of(value) for value in latest.values},
    )


@router.get("/vehicles/{vin}/signals", tags=["telemetry"])
async def signal_history(
    vin: str,
    who: CurrentPrincipal,
    svc: CurrentServices,
    path: Annotated[str, Query(description="A VSS path, e.g. Vehicle.Speed")],
    from_: Annotated[str | None, Query(alias="from", description="RFC 3339, inclusive")] = None,
    to: Annotated[str | None, Query(description="RFC 3339, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    interval: Annotated[
        str | None, Query(description="Downsample: average per bucket, e.g. 1m or 1h")
    ] = None,
) -> SignalHistory:
    """History of one signal, oldest first; with `interval`, one averaged point per bucket."""
    vehicle = await svc.registry.get_vehicle(str(Vin.parse(vin)), who.brand)
    spec = svc.catalog.get(path)
    if spec is None:
        raise ValidationError(f"unknown signal path {path!r}; see GET /api/v1/catalog")
    start = parse_rfc3339_us(from_, "from") if from_ is not None else None
    end = parse_rfc3339_us(to, "to") if to is not None else None
    if start is not None and end is not None and end <= start:
        raise ValidationError("to must be after from")
    bucket = parse_duration_us(interval, "interval") if interval is not None else None
    points = await svc.stores.telemetry.history(vehicle.vin, path, start, end, limit, bucket)
    return SignalHistory(
        vin=vehicle.vin,
        path=path,
        unit=spec.unit,
        interval=interval,
        points=[HistoryPointOut(ts=format_us(p.ts), value=p.value, count=p.count) for p in points],
    )


@router.get("/dead-letters", tags=["telemetry"])
async def dead_letters(
    who: CurrentPrincipal,
    svc: CurrentServices,
    vin: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: int | None = None,
) -> list[DeadLetterOut]:
    """Input that could not be stored, newest first, with the reason and the raw payload."""
    if vin is not None:
        vin = str(Vin.parse(vin))
    letters = await svc.stores.telemetry.list_dead_letters(vin, who.brand, limit, before_id)
    return [DeadLetterOut.of(letter) for letter in letters]


@router.get("/catalog", tags=["telemetry"])
async def catalog(who: CurrentPrincipal, svc: CurrentServices) -> list[CatalogSignal]:
    """The VSS signals carcloud accepts, with types, units and ranges."""
    return [
        CatalogSignal(
            path=spec.path,
            datatype=spec.datatype,
            unit=spec.unit,
            min=spec.min,
            max=spec.max,
            allowed=list(spec.allowed) if spec.allowed else None,
            description=spec.description,
        )
        for spec in svc.catalog
    ]
