"""`carcloud brands` and `carcloud vehicles`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.progress import Progress
from rich.table import Table

from carcloud.cli.common import (
    _cell,
    _print_records,
    api_client,
    console,
    err_console,
)
from carcloud.registry.importer import (
    ImportReport,
    import_vehicles,
    private_new_file,
    read_vehicle_csv,
)


def cmd_brands_add(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        brand = client.post("/brands", {"slug": args.slug, "name": args.name or args.slug})
    _print_records(args, brand, ["slug", "name", "created_at"], "brand created")
    return 0


def cmd_brands_list(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        brands = client.get("/brands")
    _print_records(args, brands, ["slug", "name", "created_at"], "brands")
    return 0


VEHICLE_COLUMNS = [
    "vin",
    "brand",
    "model",
    "model_year",
    "tags",
    "online",
    "last_seen_at",
    "revoked",
]


def cmd_vehicles_add(args: argparse.Namespace) -> int:
    body = {
        "vin": args.vin,
        "brand": args.brand,
        "model": args.model,
        "model_year": args.year,
        "tags": args.tag or [],
    }
    with api_client(args) as client:
        created = client.post("/vehicles", body)
    _print_credentials(args, created, "vehicle registered")
    return 0


def _print_credentials(args: argparse.Namespace, created: dict[str, Any], title: str) -> None:
    if args.json:
        print(json.dumps(created, indent=2))
        return
    _print_records(args, created["vehicle"], VEHICLE_COLUMNS, title)
    console.print("MQTT credentials (the password is shown only now):")
    console.print(f"  client id  {created['mqtt_client_id']}")
    console.print(f"  username   {created['mqtt_username']}")
    console.print(f"  password   {created['mqtt_password']}")


def cmd_vehicles_list(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        found = client.get(
            "/vehicles", brand=args.brand, tag=args.tag, online=args.online, limit=args.limit
        )
    _print_records(args, found["vehicles"], VEHICLE_COLUMNS, "vehicles")
    return 0


def cmd_vehicles_show(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        vehicle = client.get(f"/vehicles/{args.vin}")
        state = client.get(f"/vehicles/{args.vin}/state")
    if args.json:
        print(json.dumps({"vehicle": vehicle, "state": state}, indent=2))
        return 0
    _print_records(args, vehicle, VEHICLE_COLUMNS, f"vehicle {args.vin}")
    table = Table(title="latest signals")
    for column in ("signal", "value", "time"):
        table.add_column(column)
    for path, value in state["signals"].items():
        table.add_row(path, _cell(value["value"]), _cell(value["ts"]))
    console.print(table)
    return 0


def cmd_vehicles_rotate(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        created = client.post(f"/vehicles/{args.vin}/rotate-secret")
    _print_credentials(args, created, "secret rotated")
    return 0


def cmd_vehicles_revoke(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        vehicle = client.post(f"/vehicles/{args.vin}/revoke")
    _print_records(args, vehicle, VEHICLE_COLUMNS, "vehicle revoked")
    return 0


# At most this many row errors in the table; --json lists every one.
SHOWN_ERRORS = 50


def cmd_vehicles_import(args: argparse.Namespace) -> int:
    rows, file_errors = read_vehicle_csv(args.file)
    with (
        api_client(args) as client,
        private_new_file(args.secrets_out) as secrets_out,
        Progress(console=err_console, transient=True) as progress,
    ):
        task = progress.add_task("registering vehicles", total=len(rows))
        report = import_vehicles(
            client, rows, secrets_out, lambda n: progress.advance(task, n), args.batch_size
        )
    report.rows += len(file_errors)
    report.errors = sorted([*file_errors, *report.errors], key=lambda e: e.line)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        _print_import(report, args.secrets_out)
    return 1 if report.errors else 0


def _print_import(report: ImportReport, secrets_out: Path) -> None:
    console.print(
        f"{report.registered} of {report.rows} vehicles registered; "
        f"secrets (shown nowhere else) in {secrets_out}"
    )
    if not report.errors:
        return
    table = Table(title=f"{len(report.errors)} rows not registered")
    for column in ("line", "vin", "error", "message"):
        table.add_column(column)
    for error in report.errors[:SHOWN_ERRORS]:
        table.add_row(str(error.line), error.vin, error.error, error.message)
    console.print(table)
    if len(report.errors) > SHOWN_ERRORS:
        console.print(f"… and {len(report.errors) - SHOWN_ERRORS} more (--json lists all)")
