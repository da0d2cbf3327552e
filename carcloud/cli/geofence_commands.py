"""`carcloud geofences`: list, add and delete a brand's fences, and show their visits."""

from __future__ import annotations

import argparse
from typing import Any

from carcloud.cli.common import _print_records, api_client, api_command, console
from carcloud.errors import ValidationError


def add_geofence_commands(sub: Any) -> None:
    """Register `carcloud geofences ACTION` on the top-level subparsers."""
    fences = sub.add_parser(
        "geofences",
        help="geofences (circles, polygons, corridors) and visits to them",
        description="Geofences of a brand; enter/exit use the fence's margin and minimum dwell.",
    )
    actions = fences.add_subparsers(dest="action", required=True, metavar="ACTION")
    api_command(actions, "list", "geofences the key may see", None)
    add = api_command(
        actions,
        "add",
        "create a geofence",
        None,
        "name",
        description="e.g. `carcloud geofences add depot --circle 48.137,11.575,200` or "
        "`--polygon '48.1,11.5 48.1,11.51 48.11,11.505'` or "
        "`--corridor '48.1,11.5 48.2,11.6' --width 60`",
    )
    shape = add.add_mutually_exclusive_group(required=True)
    shape.add_argument("--circle", metavar="LAT,LON,RADIUS_M")
    shape.add_argument("--polygon", metavar="'LAT,LON LAT,LON ...'")
    shape.add_argument("--corridor", metavar="'LAT,LON LAT,LON ...'")
    add.add_argument("--width", type=float, help="corridor width in metres")
    add.add_argument("--brand", help="the fence's brand (needed with an operator key)")
    add.add_argument("--margin", type=float, default=25.0, help="hysteresis margin, metres")
    add.add_argument("--dwell", type=float, default=30.0, help="minimum dwell, seconds")
    delete_text = "delete a geofence and its visits"
    api_command(actions, "delete", delete_text, None, "geofence_id", json_output=False)
    visits = api_command(
        actions, "visits", "visits to a geofence, newest first", None, "geofence_id"
    )
    visits.add_argument("--vin")
    visits.add_argument("--limit", type=int, default=20)
    fences.set_defaults(func=cmd_geofences)


def _points(text: str, flag: str) -> list[dict[str, float]]:
    points = []
    for index, pair in enumerate(text.split()):
        try:
            lat, lon = (float(part) for part in pair.split(","))
        except ValueError as exc:
            raise ValidationError(f"{flag}: point {index} is not LAT,LON: {pair!r}") from exc
        points.append({"lat": lat, "lon": lon})
    return points


def _body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": args.name,
        "brand": args.brand,
        "margin_m": args.margin,
        "min_dwell_s": args.dwell,
    }
    if args.circle:
        try:
            lat, lon, radius = (float(part) for part in args.circle.split(","))
        except ValueError as exc:
            raise ValidationError(
                f"--circle must be LAT,LON,RADIUS_M, not {args.circle!r}"
            ) from exc
        body.update(shape="circle", center={"lat": lat, "lon": lon}, radius_m=radius)
    elif args.polygon:
        body.update(shape="polygon", points=_points(args.polygon, "--polygon"))
    else:
        body.update(shape="corridor", points=_points(args.corridor, "--corridor"))
        body["width_m"] = args.width
    return body


def cmd_geofences(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        if args.action == "list":
            found = client.get("/geofences")["geofences"]
            for fence in found:
                fence["size"] = (
                    f"r {fence['radius_m']:g} m"
                    if fence["shape"] == "circle"
                    else f"{len(fence['points'])} points"
                )
            columns: tuple[str, ...] = (
                "id",
                "brand",
                "name",
                "shape",
                "size",
                "margin_m",
                "min_dwell_s",
            )
            _print_records(args, found, columns, "geofences")
        elif args.action == "add":
            created = client.post("/geofences", _body(args))
            _print_records(args, created, ("id", "brand", "name", "shape"), "geofence created")
        elif args.action == "delete":
            client.request("DELETE", f"/geofences/{args.geofence_id}")
            console.print(f"geofence {args.geofence_id} deleted")
        else:
            found = client.get(
                f"/geofences/{args.geofence_id}/visits", vin=args.vin, limit=args.limit
            )["visits"]
            columns = ("vin", "geofence_name", "entered_at", "exited_at", "dwell_s")
            _print_records(args, found, columns, f"visits to {args.geofence_id}")
    return 0
