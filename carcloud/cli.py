"""The `carcloud` command: parse, call the library, print."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from carcloud import __version__
from carcloud.client import ApiClient
from carcloud.config import (
    DEFAULT_HTTP_PORT,
    DEFAULT_MQTT_PORT,
    DEFAULT_NATS_PORT,
    Settings,
    default_data_dir,
)
from carcloud.errors import CarcloudError, ConfigError
from carcloud.runtime.datadir import DataDir

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


# ---- shared options -------------------------------------------------------------------


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where carcloud keeps its data (default: $CARCLOUD_DATA_DIR or ./.carcloud)",
    )


def _add_ports(parser: argparse.ArgumentParser) -> None:
    _add_data_dir(parser)
    parser.add_argument(
        "--http-port",
        type=int,
        default=DEFAULT_HTTP_PORT,
        help="REST API and web page port (default %(default)s)",
    )
    parser.add_argument(
        "--mqtt-port",
        type=int,
        default=DEFAULT_MQTT_PORT,
        help="MQTT listener for vehicles (default %(default)s)",
    )
    parser.add_argument(
        "--nats-port",
        type=int,
        default=DEFAULT_NATS_PORT,
        help="NATS client port for platform services (default %(default)s)",
    )
    parser.add_argument(
        "--ingest-workers",
        type=int,
        default=1,
        help="ingest loops in this process (default %(default)s)",
    )


def _add_client(parser: argparse.ArgumentParser, json_output: bool = True) -> None:
    _add_data_dir(parser)
    parser.add_argument(
        "--api", help="API base URL (default: the running platform of the data dir)"
    )
    parser.add_argument(
        "--key", help="API key (default: $CARCLOUD_API_KEY or the data dir's operator key)"
    )
    if json_output:
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        data_dir=(args.data_dir or default_data_dir()).absolute(),
        http_port=getattr(args, "http_port", DEFAULT_HTTP_PORT),
        mqtt_port=getattr(args, "mqtt_port", DEFAULT_MQTT_PORT),
        nats_port=getattr(args, "nats_port", DEFAULT_NATS_PORT),
        ingest_workers=getattr(args, "ingest_workers", 1),
    )


def api_client(args: argparse.Namespace) -> ApiClient:
    """A client for the platform named by --api/--key or found in the data dir."""
    data_dir = DataDir((args.data_dir or default_data_dir()).absolute())
    base = args.api or str(data_dir.read_runtime()["http_url"])
    key = args.key or os.environ.get("CARCLOUD_API_KEY") or data_dir.operator_key()
    if not key:
        raise ConfigError(
            "no API key: pass --key, set CARCLOUD_API_KEY, or use the data dir of a platform "
            f"({data_dir.path})"
        )
    return ApiClient(base, key)


def _print_records(
    args: argparse.Namespace, records: Any, columns: Sequence[str], title: str
) -> None:
    if getattr(args, "json", False):
        print(json.dumps(records, indent=2))
        return
    rows = records if isinstance(records, list) else [records]
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# ---- commands -------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    from carcloud.runtime.platform import Started, run_up

    settings = _settings(args)

    def ready(started: Started) -> None:
        console.print(f"[bold green]carcloud {__version__} is up[/]")
        console.print(
            f"  API       {settings.http_url}/api/v1   (OpenAPI: {settings.http_url}/api/v1/docs)"
        )
        console.print(
            f"  MQTT      {settings.mqtt_url}   (vehicles: username = VIN, client id = VIN)"
        )
        console.print(f"  data dir  {settings.data_dir}")
        if started.new_operator_key:
            console.print(f"  operator API key (kept in {settings.data_dir / 'operator.key'}):")
            console.print(f"    {started.operator_key}")
        console.print("Press Ctrl-C to stop.")

    asyncio.run(run_up(settings, ready))
    console.print("carcloud stopped.")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from carcloud.runtime.platform import Started, run_worker

    settings = _settings(args)

    def ready(started: Started) -> None:
        console.print(f"worker running roles: {', '.join(args.roles)} (Ctrl-C to stop)")

    asyncio.run(run_worker(settings, tuple(args.roles), ready))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        status = client.get("/status")
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    vehicles = status["vehicles"]
    console.print(f"carcloud {status['version']} at {client.base_url}")
    console.print(f"  vehicles  {vehicles['registered']} registered, {vehicles['online']} online")
    console.print(f"  MQTT      {status['mqtt_url']}")
    if "ingest" in status:
        ingest = status["ingest"]
        console.print(
            f"  ingest    {ingest.get('pending', '?')} waiting, "
            f"{ingest.get('ack_pending', '?')} in flight"
        )
    return 0


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


# ---- parser ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; every command has --help."""
    parser = argparse.ArgumentParser(
        prog="carcloud",
        description="carcloud: an open automotive cloud. Vehicles connect over MQTT, "
        "their VSS telemetry is stored and served by a REST API.",
    )
    parser.add_argument("--version", action="version", version=f"carcloud {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up",
        help="run the whole platform here (embedded NATS + SQLite)",
        description="Start nats-server (JetStream + MQTT), every worker role and the HTTP API. "
        "The first start creates an operator API key and prints it. Ctrl-C stops everything.",
    )
    _add_ports(up)
    up.set_defaults(func=cmd_up)

    worker = sub.add_parser(
        "worker",
        help="run some roles against a running platform",
        description="Run worker roles (callout, presence, ingest, api) as their own process, "
        "against the platform of --data-dir. Run several for more throughput.",
    )
    worker.add_argument("roles", nargs="+", choices=["callout", "presence", "ingest", "api"])
    _add_ports(worker)
    worker.set_defaults(func=cmd_worker)

    status = sub.add_parser(
        "status", help="vehicles online, ingest backlog", description="Show the platform's status."
    )
    _add_client(status)
    status.set_defaults(func=cmd_status)

    brands = sub.add_parser(
        "brands", help="manage brands (tenants)", description="Brands are the tenants."
    )
    brands_sub = brands.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = brands_sub.add_parser("add", help="create a brand", description="Create a brand.")
    add.add_argument("slug", help="short lowercase id, e.g. volta")
    add.add_argument("name", nargs="?", help="display name, e.g. 'Volta Motors'")
    _add_client(add)
    add.set_defaults(func=cmd_brands_add)
    lst = brands_sub.add_parser("list", help="list brands", description="List brands.")
    _add_client(lst)
    lst.set_defaults(func=cmd_brands_list)

    vehicles = sub.add_parser(
        "vehicles",
        help="register and manage vehicles",
        description="Vehicles and their MQTT credentials.",
    )
    v_sub = vehicles.add_subparsers(dest="action", required=True, metavar="ACTION")
    v_add = v_sub.add_parser(
        "add",
        help="register a vehicle and print its MQTT credentials",
        description="Register a vehicle; its MQTT password is printed once "
        "and stored only as a hash.",
    )
    v_add.add_argument("vin", help="17-character VIN (ISO 3779)")
    v_add.add_argument("--brand", required=True, help="brand slug")
    v_add.add_argument("--model", required=True, help="model name")
    v_add.add_argument("--year", type=int, help="model year")
    v_add.add_argument("--tag", action="append", help="a tag (repeat for several)")
    _add_client(v_add)
    v_add.set_defaults(func=cmd_vehicles_add)
    v_list = v_sub.add_parser(
        "list", help="list vehicles", description="List vehicles with online status."
    )
    v_list.add_argument("--brand")
    v_list.add_argument("--tag")
    v_list.add_argument("--online", action=argparse.BooleanOptionalAction, default=None)
    v_list.add_argument("--limit", type=int, default=100)
    _add_client(v_list)
    v_list.set_defaults(func=cmd_vehicles_list)
    for name, func, text in (
        ("show", cmd_vehicles_show, "show a vehicle and its latest signals"),
        (
            "rotate-secret",
            cmd_vehicles_rotate,
            "issue a new MQTT password (the old one stops working)",
        ),
        ("revoke", cmd_vehicles_revoke, "revoke the credentials and drop the live connection"),
    ):
        action = v_sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        action.add_argument("vin")
        _add_client(action)
        action.set_defaults(func=func)

    for extra in _EXTRA_COMMANDS:
        extra(sub)
    return parser


# Later modules (simulator, demo) register their commands here.
_EXTRA_COMMANDS: list[Callable[[Any], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `carcloud` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("nats").setLevel(logging.WARNING if not args.verbose else logging.DEBUG)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        result: int = args.func(args)
        return result
    except CarcloudError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
