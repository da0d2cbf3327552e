"""Calendar accounts and agendas over REST, scoped by brand through the driver."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from carcloud.api.security import CurrentPrincipal, CurrentServices
from carcloud.calendars.agenda import AgendaEntry
from carcloud.calendars.consent import ConsentFlow
from carcloud.calendars.service import AccountDraft
from carcloud.drivers.models import Driver
from carcloud.timeutil import parse_rfc3339_us, to_datetime
from carcloud.vin import Vin

router = APIRouter()
DEFAULT_DAYS = 7

From = Annotated[
    str | None, Query(alias="from", description="RFC 3339 start of the range (default now)")
]
To = Annotated[str | None, Query(description="RFC 3339 end (default 7 days after from)")]


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(
        examples=["caldav"], description="ics (a feed URL), caldav, google or graph (Outlook)"
    )
    url: str | None = Field(
        default=None, examples=["https://dav.example.org/dav/ada/work/"], description="ics, caldav"
    )
    name: str | None = Field(default=None, examples=["Work"])
    username: str | None = Field(default=None, description="CalDAV only")
    password: str | None = Field(default=None, description="CalDAV only; stored encrypted")
    owner_email: str | None = Field(
        default=None, description="The driver's address in invitations (to leave out declined)"
    )
    refresh_token: str | None = Field(
        default=None, description="google, graph: the driver's OAuth refresh token; encrypted"
    )
    calendar_id: str | None = Field(default=None, description="google only (default primary)")


def _range(start: str | None, end: str | None) -> tuple[dt.datetime, dt.datetime]:
    begins = to_datetime(parse_rfc3339_us(start, "from")) if start else dt.datetime.now(dt.UTC)
    ends = to_datetime(parse_rfc3339_us(end, "to")) if end else begins + dt.timedelta(DEFAULT_DAYS)
    return begins, ends


def _agenda(
    driver: Driver, entries: list[AgendaEntry], start: dt.datetime, end: dt.datetime
) -> dict[str, Any]:
    return {
        "driver_id": driver.id,
        "timezone": driver.timezone,
        "from": start.isoformat().replace("+00:00", "Z"),
        "to": end.isoformat().replace("+00:00", "Z"),
        "preferences": driver.preferences.document(),
        "events": [entry.document(driver.zone) for entry in entries],
    }


@router.post(
    "/drivers/{driver_id}/calendar-accounts",
    status_code=status.HTTP_201_CREATED,
    tags=["calendars"],
)
async def add_account(
    driver_id: str, body: AccountIn, who: CurrentPrincipal, svc: CurrentServices
) -> Any:
    """Add a calendar (synced once at once); 422 names what is wrong with the source."""
    draft = AccountDraft(
        body.kind, body.url, body.name, body.username, body.password, body.owner_email,
        body.refresh_token, body.calendar_id,
    )  # fmt: skip
    return (await svc.calendars.add_account(driver_id, who.brand, draft)).document()


@router.get("/drivers/{driver_id}/calendar-accounts/oauth/start", tags=["calendars"])
async def oauth_start(
    driver_id: str,
    request: Request,
    who: CurrentPrincipal,
    svc: CurrentServices,
    provider: Annotated[str, Query(description="google or graph (Microsoft 365)")],
    calendar_id: Annotated[str | None, Query(description="google only (default primary)")] = None,
    redirect_uri: Annotated[
        str | None, Query(description="where the provider sends the driver back (default: "
                          "this API's callback; it must be registered with the OAuth client)")
    ] = None,
) -> dict[str, Any]:  # fmt: skip
    """The URL where the driver gives carcloud read access to a Google or Microsoft 365
    calendar (authorization code with PKCE); the provider then redirects to the callback,
    which adds the account. The consent is for this driver and expires in 10 minutes."""
    callback = redirect_uri or str(request.url_for("oauth_callback"))
    flow = ConsentFlow(svc.calendars)
    started = await flow.start(driver_id, who.brand, provider, callback, calendar_id)
    return {"driver_id": driver_id, **started.document()}


@router.get(
    "/calendar-accounts/oauth/callback",
    status_code=status.HTTP_201_CREATED,
    tags=["calendars"],
    name="oauth_callback",
)
async def oauth_callback(
    svc: CurrentServices,
    state: str | None = None,
    code: str | None = None,
    error: str | None = None,
) -> Any:
    """Where the provider sends the driver back: the code is exchanged for tokens (the
    refresh token is stored encrypted) and the calendar is added to the driver the consent
    was started for. No API key: the sealed `state` says whose consent it is."""
    return (await ConsentFlow(svc.calendars).finish(code, state, error)).document()


@router.get("/drivers/{driver_id}/calendar-accounts", tags=["calendars"])
async def list_accounts(
    driver_id: str, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """A driver's calendars with their sync state (never their secrets)."""
    accounts = await svc.calendars.list_accounts(driver_id, who.brand)
    return {"accounts": [account.document() for account in accounts]}


@router.get("/calendar-accounts/{account_id}", tags=["calendars"])
async def get_account(account_id: str, who: CurrentPrincipal, svc: CurrentServices) -> Any:
    """One calendar account: its last sync, its error while it fails."""
    return (await svc.calendars.get_account(account_id, who.brand)).document()


@router.post("/calendar-accounts/{account_id}/sync", tags=["calendars"])
async def sync_account(account_id: str, who: CurrentPrincipal, svc: CurrentServices) -> Any:
    """Sync now rather than on the schedule."""
    return (await svc.calendars.sync_now(account_id, who.brand)).document()


@router.delete(
    "/calendar-accounts/{account_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["calendars"],
)
async def delete_account(account_id: str, who: CurrentPrincipal, svc: CurrentServices) -> None:
    """Remove a calendar and what was synced from it."""
    await svc.calendars.delete_account(account_id, who.brand)


@router.get("/drivers/{driver_id}/agenda", tags=["calendars"])
async def driver_agenda(
    driver_id: str,
    who: CurrentPrincipal,
    svc: CurrentServices,
    start: From = None,
    to: To = None,
) -> dict[str, Any]:
    """The driver's meetings in [from, to), in UTC and the driver's zone, with join details."""
    begins, ends = _range(start, to)
    driver = await svc.drivers.get(driver_id, who.brand)
    return _agenda(driver, await svc.calendars.agenda(driver, begins, ends), begins, ends)


@router.get("/vehicles/{vin}/agenda", tags=["calendars"])
async def vehicle_agenda(
    vin: str,
    who: CurrentPrincipal,
    svc: CurrentServices,
    start: From = None,
    to: To = None,
) -> dict[str, Any]:
    """The agenda of the vehicle's current driver; each upcoming meeting with a place has
    its leave-by from the car's live position (travel, route source, buffer, charging stop)."""
    begins, ends = _range(start, to)
    number = str(Vin.parse(vin))
    found = await svc.productivity.agenda(number, who.brand, begins, ends)
    assert found.driver is not None
    document = {"vin": number, **_agenda(found.driver, found.upcoming, begins, ends)}
    car = found.situation
    where = car.position if car is not None else None
    document["position"] = {"lat": where.lat, "lon": where.lon} if where is not None else None
    for event in document["events"]:
        plan = found.plans.get(event["id"])
        event["leave_by"] = plan.document() if plan is not None else None
    return document
