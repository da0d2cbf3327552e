"""`carcloud trips VIN` and `carcloud charging VIN`: a vehicle's drives and charges."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from carcloud.cli.common import _cell, api_client, api_command, console


def add_telematics_commands(sub: Any) -> None:
    """Register the telematics commands on the top-level subparsers."""
    trips = api_command(
        sub,
        "trips",
        "a vehicle's trips, newest first",
        cmd_trips,
        "vin",
        description="Trips detected from the vehicle's committed telemetry: start and end, "
        "the geofence or driver's place at each end, distance, driving time, energy and "
        "consumption. A trip under way shows as driving.",
    )
    trips.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    charging = api_command(
        sub,
        "charging",
        "a vehicle's charging sessions, newest first",
        cmd_charging,
        "vin",
        description="One session per plug-in, with its charging segments, energy, power, "
        "AC/DC and cost from the brand's tariff.",
    )
    charging.add_argument("--limit", type=int, default=20, help="how many (default 20)")


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    console.print(table)


def _place(place: dict[str, Any] | None) -> str | None:
    """A trip end's geofence or named place, as the table shows it."""
    return str(place["name"]) if place else None


def cmd_trips(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        page = client.get(f"/vehicles/{args.vin}/trips", limit=args.limit)
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    _table(
        f"trips of {args.vin}",
        (
            "start",
            "from",
            "end",
            "to",
            "status",
            "km",
            "driving min",
            "kWh",
            "kWh/100km",
            "max km/h",
        ),
        [
            (
                t["start_at"][:19],
                _place(t.get("start_place")),
                t["end_at"][:19],
                _place(t.get("end_place")),
                t["status"],
                t["distance_km"],
                round(t["driving_s"] / 60, 1),
                t["energy_kwh"],
                t["consumption_kwh_per_100km"],
                t["max_speed_kmh"],
            )
            for t in page["trips"]
        ],
    )
    return 0


def cmd_charging(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        page = client.get(f"/vehicles/{args.vin}/charging-sessions", limit=args.limit)
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    _table(
        f"charging sessions of {args.vin}",
        ("plugged in", "unplugged", "status", "segments", "kWh", "max kW", "type", "cost"),
        [
            (
                s["start_at"][:19],
                s["end_at"][:19],
                s["status"],
                len(s["segments"]),
                s["energy_kwh"],
                s["max_power_kw"],
                s["current_type"],
                f"{s['cost']:.2f} {s['currency']}" if s["cost"] is not None else None,
            )
            for s in page["sessions"]
        ],
    )
    return 0
