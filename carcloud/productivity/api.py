"""Leave-by plans, cards sent to a car, pre-conditioning and the head unit's view, over REST."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from carcloud.api.security import CurrentPrincipal, CurrentServices
from carcloud.productivity.headunit import screen
from carcloud.timeutil import format_us, now_us
from carcloud.vin import Vin

router = APIRouter()


@router.get("/vehicles/{vin}/notifications", tags=["productivity"])
async def notifications(
    vin: str,
    who: CurrentPrincipal,
    svc: CurrentServices,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """The cards sent to the car, newest first, each with why it was sent."""
    number = str(Vin.parse(vin))
    cards = await svc.productivity.cards(number, who.brand, limit)
    return {"vin": number, "notifications": [card.document() for card in cards]}


@router.get("/vehicles/{vin}/leave-by", tags=["productivity"])
async def leave_by(vin: str, who: CurrentPrincipal, svc: CurrentServices) -> dict[str, Any]:
    """The current driver's meetings of the next 24 h with a place: when to leave, by road
    from the car's live position, with the buffer and any charging stop."""
    number = str(Vin.parse(vin))
    outlook = await svc.productivity.outlook(number, who.brand)
    car = outlook.situation
    return {
        "vin": number,
        "driver_id": outlook.driver.id if outlook.driver else None,
        "computed_at": format_us(outlook.computed_at),
        "position": {"lat": car.position.lat, "lon": car.position.lon}
        if car is not None and car.position is not None
        else None,
        "range_km": round(car.range_km, 1)
        if car is not None and car.range_km is not None
        else None,
        "plans": [
            outlook.plans[e.id].document() for e in outlook.upcoming if e.id in outlook.plans
        ],
        "without_place": [e.id for e in outlook.upcoming if e.coordinates is None],
    }


@router.get("/vehicles/{vin}/preconditioning", tags=["productivity"])
async def preconditioning(vin: str, who: CurrentPrincipal, svc: CurrentServices) -> dict[str, Any]:
    """Pre-conditioning commands scheduled, sent and cancelled for the car's meetings."""
    number = str(Vin.parse(vin))
    found = await svc.productivity.preconditions(number, who.brand)
    return {"vin": number, "preconditioning": [p.document() for p in found]}


@router.get("/vehicles/{vin}/headunit", tags=["productivity"])
async def headunit(vin: str, who: CurrentPrincipal, svc: CurrentServices) -> dict[str, Any]:
    """What the car's screen shows: next meeting, leave-by countdown, the cards shown."""
    number = str(Vin.parse(vin))
    now = now_us()
    outlook = await svc.productivity.outlook(number, who.brand, now)
    cards = await svc.productivity.cards(number, who.brand, 20)
    return screen(outlook, cards, now)
