"""`carcloud drivers …` (profiles, the vehicle's driver, calendars) and `carcloud agenda VIN`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from typing import Any
from zoneinfo import ZoneInfo

from rich.table import Table

from carcloud.cli.common import _cell, api_client, api_command, console
from carcloud.errors import ValidationError


def _lat_lon(text: str) -> dict[str, float]:
    try:
        lat, lon = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LAT,LON e.g. 52.52,13.405") from None
    return {"lat": lat, "lon": lon}


def add_driver_commands(sub: Any) -> None:
    """Register `drivers` and `agenda` on the top-level subparsers."""
    drivers = sub.add_parser(
        "drivers",
        help="driver profiles, who drives which vehicle, their calendars",
        description="Drivers of a brand: time zone, home and work places, preferences, and "
        "the calendar accounts the cloud keeps in sync for them.",
    )
    actions = drivers.add_subparsers(dest="action", required=True, metavar="ACTION")
    api_command(actions, "list", "list drivers", cmd_drivers_list)
    add = api_command(actions, "add", "create a driver", cmd_drivers_add, "name")
    add.add_argument("--brand", help="the brand (required with an operator key)")
    add.add_argument("--timezone", default="UTC", help="IANA zone, e.g. Europe/Berlin")
    add.add_argument("--home", type=_lat_lon, metavar="LAT,LON")
    add.add_argument("--work", type=_lat_lon, metavar="LAT,LON")
    add.add_argument("--reminder-lead-min", type=int, default=10)
    add.add_argument("--buffer-min", type=int, default=5)
    add.add_argument("--precondition", action="store_true", help="pre-condition the cabin")
    add.add_argument("--target-c", type=float, default=21.0, help="cabin target temperature")
    for verb, func, text in (
        ("show", cmd_drivers_show, "show a driver"),
        ("delete", cmd_drivers_delete, "delete a driver and their calendar accounts"),
        ("calendars", cmd_drivers_calendars, "a driver's calendars and their sync state"),
    ):
        api_command(actions, verb, text, func, "driver_id")
    assign = api_command(
        actions,
        "assign",
        "make a driver the vehicle's current driver",
        cmd_drivers_assign,
        "vin",
        description="Set who drives the vehicle now; --none: nobody.",
    )
    assign.add_argument("driver_id", nargs="?")
    assign.add_argument("--none", action="store_true", help="the vehicle has no driver")
    calendar = api_command(
        actions,
        "add-calendar",
        "give a driver a calendar: an iCalendar feed URL or a CalDAV calendar",
        cmd_drivers_add_calendar,
        "driver_id",
        description="Add a calendar account; it is synced once at once, and a source that "
        "is not a calendar is refused with the reason. The CalDAV password is read from "
        "$CARCLOUD_CALDAV_PASSWORD (not a flag: flags show in the process list).",
    )
    kind = calendar.add_mutually_exclusive_group(required=True)
    kind.add_argument("--ics", metavar="URL", help="an iCalendar feed (https:// or webcal://)")
    kind.add_argument("--caldav", metavar="URL", help="the URL of one CalDAV calendar")
    calendar.add_argument("--username", help="CalDAV user")
    calendar.add_argument("--name", help="a name for the calendar")
    calendar.add_argument("--owner-email", help="the driver's address in invitations")
    agenda = api_command(
        sub,
        "agenda",
        "the meetings of a vehicle's current driver",
        cmd_agenda,
        "vin",
        description="The agenda of the vehicle's current driver: meetings in UTC and the "
        "driver's zone, place and coordinates, when to leave (from the car's live position, "
        "by road, with the buffer and any charging stop) and how to join (provider, link, "
        "dial-in).",
    )
    agenda.add_argument("--from", dest="start", help="RFC 3339 (default now)")
    agenda.add_argument("--to", dest="end", help="RFC 3339 (default 7 days later)")


def _print(args: argparse.Namespace, document: Any) -> bool:
    if args.json:
        print(json.dumps(document, indent=2))
    return bool(args.json)


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    console.print(table)


def _driver_rows(drivers: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (d["id"], d["brand"], d["name"], d["timezone"], ", ".join(p["name"] for p in d["places"]))
        for d in drivers
    ]


_DRIVER_COLUMNS = ("id", "brand", "name", "time zone", "places")


def cmd_drivers_list(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        found = client.get("/drivers")
    if not _print(args, found):
        _table("drivers", _DRIVER_COLUMNS, _driver_rows(found["drivers"]))
    return 0


def cmd_drivers_add(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "name": args.name,
        "timezone": args.timezone,
        "preferences": {
            "reminder_lead_min": args.reminder_lead_min,
            "buffer_min": args.buffer_min,
            "precondition": args.precondition,
            "precondition_target_c": args.target_c,
        },
    }
    for key in ("brand", "home", "work"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    with api_client(args) as client:
        created = client.post("/drivers", body)
    if not _print(args, created):
        _table("driver created", _DRIVER_COLUMNS, _driver_rows([created]))
    return 0


def cmd_drivers_show(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        found = client.get(f"/drivers/{args.driver_id}")
    if not _print(args, found):
        _table("driver", _DRIVER_COLUMNS, _driver_rows([found]))
        console.print(f"preferences: {found['preferences']}")
    return 0


def cmd_drivers_delete(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        client.request("DELETE", f"/drivers/{args.driver_id}")
    console.print(f"driver {args.driver_id} deleted")
    return 0


def cmd_drivers_assign(args: argparse.Namespace) -> int:
    if (args.driver_id is None) != args.none:
        raise ValidationError("give a DRIVER_ID or --none")
    with api_client(args) as client:
        result = client.request(
            "PUT", f"/vehicles/{args.vin}/driver", json={"driver_id": args.driver_id}
        )
    if not _print(args, result):
        driver = result["driver"]
        console.print(
            f"{args.vin}: {driver['name'] + ' (' + driver['id'] + ')' if driver else 'no driver'}"
        )
    return 0


def _account_rows(accounts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            a["id"], a["kind"], a["name"], a["url"], a["sync"]["status"],
            a["sync"]["last_success_at"], a["sync"]["error"],
        )
        for a in accounts
    ]  # fmt: skip


_ACCOUNT_COLUMNS = ("id", "kind", "name", "url", "sync", "last good sync", "error")


def cmd_drivers_calendars(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        found = client.get(f"/drivers/{args.driver_id}/calendar-accounts")
    if not _print(args, found):
        _table(f"calendars of {args.driver_id}", _ACCOUNT_COLUMNS, _account_rows(found["accounts"]))
    return 0


def cmd_drivers_add_calendar(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"kind": "ics" if args.ics else "caldav", "url": args.ics or args.caldav}
    if args.caldav:
        body["username"] = args.username
        body["password"] = os.environ.get("CARCLOUD_CALDAV_PASSWORD")
    for key in ("name", "owner_email"):
        if getattr(args, key):
            body[key] = getattr(args, key)
    with api_client(args) as client:
        created = client.post(f"/drivers/{args.driver_id}/calendar-accounts", body)
    if not _print(args, created):
        _table("calendar added", _ACCOUNT_COLUMNS, _account_rows([created]))
    return 0


def cmd_agenda(args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("from", args.start), ("to", args.end)) if v}
    with api_client(args) as client:
        agenda = client.get(f"/vehicles/{args.vin}/agenda", **params)
    if _print(args, agenda):
        return 0
    rows = []
    zone = ZoneInfo(agenda["timezone"])
    for event in agenda["events"]:
        join = event["join"] or {}
        dial = join.get("dial_in") or []
        rows.append(
            (
                event["start_local"][:16].replace("T", " "),
                event["end_local"][11:16],
                event["title"],
                event["location"],
                *_leave_by_cells(event.get("leave_by"), zone),
                join.get("provider"),
                join.get("url"),
                dial[0]["uri"] if dial else None,
            )
        )
    _table(
        f"agenda of {args.vin} ({agenda['timezone']})",
        ("start", "end", "title", "where", "leave by", "drive", "charging", "provider", "join",
         "dial-in"),
        rows,
    )  # fmt: skip
    if agenda.get("position") is None:
        console.print("no leave-by times: the car has not reported its position yet")
    return 0


def _leave_by_cells(plan: dict[str, Any] | None, zone: ZoneInfo) -> tuple[str | None, ...]:
    """Leave-by (driver's clock), the drive (minutes, km, router, buffer), the charging stop."""
    if plan is None:
        return None, None, None
    leave = dt.datetime.fromisoformat(plan["leave_by"].replace("Z", "+00:00")).astimezone(zone)
    travel = plan["travel"]
    drive = (
        f"{travel['minutes']:.0f} min, {travel['distance_km']:.1f} km ({travel['source']}) "
        f"+ {plan['buffer_min']} min buffer"
    )
    stop = plan.get("charging_stop")
    charging = f"{stop['minutes']:.0f} min: {stop['reason']}" if stop else None
    late = f" (late by {plan['late_by_min']} min)" if plan.get("late_by_min") else ""
    return f"{leave:%H:%M}{late}", drive, charging
