"""Trips, charging sessions and tariffs over REST, scoped by brand like every read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from carcloud.api.security import CurrentPrincipal, CurrentServices, Principal
from carcloud.errors import ValidationError
from carcloud.telematics.models import session_document, trip_document
from carcloud.telematics.tariffs import Place, Tariff, TariffPeriod
from carcloud.timeutil import format_us, parse_rfc3339_us
from carcloud.vin import Vin

router = APIRouter()

Before = Annotated[
    str | None, Query(description="RFC 3339: only items that started before (the next page)")
]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _before(raw: str | None) -> int | None:
    return parse_rfc3339_us(raw, "before") if raw is not None else None


def _page(items: list[dict[str, Any]], key: str, limit: int) -> dict[str, Any]:
    last = items[-1]["start_at"] if len(items) == limit else None
    return {key: items, "next_before": last}


@router.get("/vehicles/{vin}/trips", tags=["telematics"])
async def list_trips(
    vin: str,
    who: CurrentPrincipal,
    svc: CurrentServices,
    before: Before = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    """A vehicle's trips, newest first; `status` is `driving` for the trip under way."""
    trips = await svc.telematics.list_trips(str(Vin.parse(vin)), who.brand, _before(before), limit)
    return _page([trip_document(trip) for trip in trips], "trips", limit)


@router.get("/vehicles/{vin}/trips/{trip_id}", tags=["telematics"])
async def get_trip(
    vin: str,
    trip_id: str,
    who: CurrentPrincipal,
    svc: CurrentServices,
    max_points: Annotated[int, Query(ge=2, le=10_000, description="Route points at most")] = 500,
) -> dict[str, Any]:
    """One trip with its route: the positions the car reported, evenly downsampled."""
    trip = await svc.telematics.get_trip(str(Vin.parse(vin)), who.brand, trip_id)
    route = await svc.telematics.route(trip, max_points)
    return {
        **trip_document(trip),
        "route": [{"at": format_us(ts), "lat": p.lat, "lon": p.lon} for ts, p in route],
    }


@router.get("/vehicles/{vin}/charging-sessions", tags=["telematics"])
async def list_charging_sessions(
    vin: str,
    who: CurrentPrincipal,
    svc: CurrentServices,
    before: Before = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    """A vehicle's charging sessions with their segments, newest first."""
    sessions = await svc.telematics.list_sessions(
        str(Vin.parse(vin)), who.brand, _before(before), limit
    )
    return _page([session_document(s) for s in sessions], "sessions", limit)


# ---- tariffs --------------------------------------------------------------------------------


class PeriodIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: list[str] = Field(examples=[["mon", "tue", "wed", "thu", "fri"]])
    start: str = Field(examples=["22:00"], description="Local time HH:MM")
    end: str = Field(examples=["06:00"], description="Local time HH:MM; before start: overnight")
    price_per_kwh: float | None = Field(default=None, description="None: the base price")
    price_per_minute: float | None = None


class PlaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float
    lon: float
    radius_m: float = 150.0


class TariffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(examples=["home, night rate"])
    brand: str | None = Field(default=None, description="Required with an operator key")
    currency: str = Field(examples=["EUR"])
    timezone: str = Field(default="UTC", examples=["Europe/Berlin"])
    price_per_kwh: float = 0.0
    price_per_minute: float = Field(default=0.0, description="Per minute of charging")
    price_per_session: float = 0.0
    periods: list[PeriodIn] = Field(default_factory=list, description="Time-of-use prices")
    vins: list[str] = Field(default_factory=list, description="None listed: every vehicle")
    home: PlaceIn | None = Field(default=None, description="Only sessions within this circle")
    geofence_id: str | None = Field(
        default=None, description="Only sessions inside this geofence of the brand (not with home)"
    )


def _draft(body: TariffIn, who: Principal) -> Tariff:
    brand = body.brand or who.brand
    if brand is None:
        raise ValidationError("brand: an operator key must name the tariff's brand")
    who.check_brand(brand)
    return Tariff(
        id="new",
        brand=brand,
        name=body.name,
        currency=body.currency,
        timezone=body.timezone,
        price_per_kwh=body.price_per_kwh,
        price_per_minute=body.price_per_minute,
        price_per_session=body.price_per_session,
        periods=tuple(
            TariffPeriod(tuple(p.days), p.start, p.end, p.price_per_kwh, p.price_per_minute)
            for p in body.periods
        ),
        vins=tuple(body.vins),
        home=Place(body.home.lat, body.home.lon, body.home.radius_m) if body.home else None,
        geofence_id=body.geofence_id,
    )


def tariff_document(tariff: Tariff) -> dict[str, Any]:
    """A tariff's public shape."""
    home = tariff.home
    return {
        "id": tariff.id,
        "brand": tariff.brand,
        "name": tariff.name,
        "currency": tariff.currency,
        "timezone": tariff.timezone,
        "price_per_kwh": tariff.price_per_kwh,
        "price_per_minute": tariff.price_per_minute,
        "price_per_session": tariff.price_per_session,
        "periods": [
            {
                "days": list(p.days),
                "start": p.start,
                "end": p.end,
                "price_per_kwh": p.price_per_kwh,
                "price_per_minute": p.price_per_minute,
            }
            for p in tariff.periods
        ],
        "vins": list(tariff.vins),
        "home": {"lat": home.lat, "lon": home.lon, "radius_m": home.radius_m} if home else None,
        "geofence_id": tariff.geofence_id,
        "created_at": format_us(tariff.created_at),
        "updated_at": format_us(tariff.updated_at),
    }


@router.get("/tariffs", tags=["telematics"])
async def list_tariffs(who: CurrentPrincipal, svc: CurrentServices) -> dict[str, Any]:
    """Charging tariffs the caller may see."""
    tariffs = await svc.telematics.list_tariffs(who.brand)
    return {"tariffs": [tariff_document(t) for t in tariffs]}


@router.get("/tariffs/{tariff_id}", tags=["telematics"])
async def get_tariff(tariff_id: str, who: CurrentPrincipal, svc: CurrentServices) -> dict[str, Any]:
    """One tariff."""
    return tariff_document(await svc.telematics.get_tariff(tariff_id, who.brand))


@router.post("/tariffs", tags=["telematics"], status_code=status.HTTP_201_CREATED)
async def create_tariff(
    body: TariffIn, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """Create a tariff; sessions derived from now on are priced by it where it fits."""
    return tariff_document(await svc.telematics.create_tariff(_draft(body, who)))


@router.put("/tariffs/{tariff_id}", tags=["telematics"])
async def replace_tariff(
    tariff_id: str, body: TariffIn, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """Replace a tariff (its id, brand and creation time stay)."""
    draft = _draft(body, who)
    current = await svc.telematics.get_tariff(tariff_id, who.brand)
    if draft.brand != current.brand:
        raise ValidationError(f"brand: a tariff keeps its brand ({current.brand})")
    return tariff_document(await svc.telematics.replace_tariff(tariff_id, who.brand, draft))
