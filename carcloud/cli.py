"""The `carcloud` command: parse, call the library, print."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.live import Live
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

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

T = TypeVar("T")

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
    parser.add_argument(
        "--tls-cert", type=Path, help="certificate (PEM) of the MQTT listener: vehicles use TLS"
    )
    parser.add_argument("--tls-key", type=Path, help="private key (PEM) of --tls-cert")


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
        tls_cert=getattr(args, "tls_cert", None),
        tls_key=getattr(args, "tls_key", None),
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


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop (a faster event loop) where it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


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

    run_async(run_up(settings, ready))
    console.print("carcloud stopped.")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from carcloud.runtime.platform import Started, run_worker

    settings = _settings(args)

    def ready(started: Started) -> None:
        console.print(f"worker running roles: {', '.join(args.roles)} (Ctrl-C to stop)")

    run_async(run_worker(settings, tuple(args.roles), ready))
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


def _mqtt_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--mqtt {text!r} is not HOST:PORT")
    return host, int(port)


def cmd_simulate(args: argparse.Namespace) -> int:
    from carcloud.sim.session import (
        SimulationOptions,
        cars_for,
        prepare,
        run_shard,
    )

    data_dir = DataDir((args.data_dir or default_data_dir()).absolute())
    runtime = {} if (args.api and args.mqtt) else data_dir.read_runtime()
    api_url = args.api or str(runtime["http_url"])
    mqtt_host, mqtt_port = _mqtt_address(args.mqtt or str(runtime["mqtt_url"]).split("://")[1])
    key = args.key or os.environ.get("CARCLOUD_API_KEY") or data_dir.operator_key()
    if not key:
        raise ConfigError("no API key: pass --key, set CARCLOUD_API_KEY, or use --data-dir")
    shard, _, shards = (args.shard or "0/1").partition("/")
    options = SimulationOptions(
        api_url=api_url,
        api_key=key,
        mqtt_host=mqtt_host,
        mqtt_port=mqtt_port,
        vehicles=args.vehicles,
        brands=args.brands.split(",") if args.brands else None,
        rate=args.rate,
        duration_s=args.duration,
        seed=args.seed,
        speedup=args.speedup,
        gaps_per_hour=args.offline_rate,
        start_epoch_s=args.start if args.start is not None else float(int(time.time())),
        credentials_file=args.credentials or data_dir.path / "sim-credentials.json",
        processes=args.processes,
        shard=int(shard),
        shards=int(shards or 1),
    )
    if args.status_json:  # a child of --processes: credentials were prepared by the parent
        from carcloud.sim.enrolment import load_credentials
        from carcloud.sim.session import fleet_for

        vehicles, credentials = fleet_for(options), load_credentials(options.credentials_file)
    else:
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("registering vehicles", total=options.vehicles)
            vehicles, credentials = prepare(options, lambda n: progress.advance(task, n))
    if options.processes > 1 and not args.status_json:
        return _run_processes(options)

    def report(stats: Any) -> None:
        if args.status_json:
            print(json.dumps(stats.as_dict()), flush=True)
        else:
            live.update(Text(stats.line()))

    async def go() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        cars = cars_for(vehicles, credentials, options.seed, options.shard, options.shards)
        return await run_shard(options, cars, stop, report)

    with Live(Text("connecting…"), console=err_console, transient=args.status_json) as live:
        stats = run_async(go())
    if not args.status_json:
        console.print(stats.line())
    return 0


def _run_processes(options: Any) -> int:
    from carcloud.sim.session import read_shard_stats, spawn_shards

    options.shards = options.processes
    children = spawn_shards(options)
    latest: dict[int, dict[str, int]] = {}

    def follow(index: int, child: Any) -> None:
        for line in child.stdout:
            parsed = read_shard_stats(line)
            if parsed is not None:
                latest[index] = parsed

    import threading

    readers = [
        threading.Thread(target=follow, args=(i, c), daemon=True) for i, c in enumerate(children)
    ]
    for reader in readers:
        reader.start()
    try:
        with Live(Text("starting processes…"), console=err_console) as live:
            while any(child.poll() is None for child in children):
                total = {
                    key: sum(s.get(key, 0) for s in latest.values())
                    for key in (
                        "vehicles",
                        "connected",
                        "offline",
                        "sent",
                        "acked",
                        "late",
                        "ticks",
                        "errors",
                        "buffered",
                    )
                }
                late = 100.0 * total["late"] / total["ticks"] if total["ticks"] else 0.0
                live.update(
                    Text(
                        f"processes {len(children)}  vehicles {total['vehicles']}  "
                        f"connected {total['connected']}  "
                        f"sent {total['sent']}  acks pending {total['sent'] - total['acked']}  "
                        f"late {late:.2f}%  errors {total['errors']}"
                    )
                )
                time.sleep(0.5)
    except KeyboardInterrupt:
        for child in children:
            child.send_signal(signal.SIGINT)
    for child in children:
        child.wait()
    return max((child.returncode or 0) for child in children)


def parse_assignments(pairs: Sequence[str]) -> dict[str, Any]:
    """key=value pairs; values are JSON when they parse as JSON (22, true, {"a":1}), else text."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{pair!r} is not key=value")
        try:
            parsed[key] = json.loads(raw)
        except ValueError:
            parsed[key] = raw
    return parsed


def cmd_command(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"kind": args.kind, "params": parse_assignments(args.params)}
    if args.ttl:
        body["ttl"] = args.ttl
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    with api_client(args) as client:
        command = client.request(
            "POST", f"/vehicles/{args.vin}/commands", json=body, headers=headers
        )
        if args.wait:
            err_console.print(f"{command['id']} {command['status']}; waiting up to {args.wait}…")
            command = client.get(f"/vehicles/{args.vin}/commands/{command['id']}", wait=args.wait)
    if args.json:
        print(json.dumps(command, indent=2))
    else:
        console.print(
            f"{command['id']}  {command['kind']}  [bold]{command['status']}[/]"
            + (f"  ({command['reason']})" if command.get("reason") else "")
        )
        for step in command["transitions"]:
            console.print(
                f"  {step['at']}  {step['status']}"
                + (f"  {step['reason']}" if step.get("reason") else "")
            )
    final = command["status"] in ("succeeded", "failed", "expired", "cancelled")
    if args.wait and not final:
        return 3
    return 1 if command["status"] in ("failed", "expired") else 0


def cmd_twin_show(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        twin = client.get(f"/vehicles/{args.vin}/twin")
    if args.json:
        print(json.dumps(twin, indent=2))
        return 0
    desired, reported = twin["desired"], twin["reported"]
    console.print(f"twin of {twin['vin']}  tags: {', '.join(twin['tags']) or '-'}")
    console.print(f"desired (version {desired['version']}):  {json.dumps(desired['properties'])}")
    console.print(
        f"reported (applied version {reported['desired_version']}):  "
        f"{json.dumps(reported['properties'])}"
    )
    console.print(
        "in sync" if twin["in_sync"] else f"not applied yet: {json.dumps(twin['pending'])}"
    )
    return 0


def cmd_twin_set(args: argparse.Namespace) -> int:
    properties = parse_assignments(args.properties)
    headers = {"If-Match": f'"{args.if_match}"'} if args.if_match is not None else None
    method = "PUT" if args.replace else "PATCH"
    with api_client(args) as client:
        twin = client.request(
            method,
            f"/vehicles/{args.vin}/twin/desired",
            json={"properties": properties},
            headers=headers,
        )
    if args.json:
        print(json.dumps(twin, indent=2))
    else:
        console.print(
            f"desired version {twin['desired']['version']}: "
            f"{json.dumps(twin['desired']['properties'])}"
        )
    return 0


CAMPAIGN_COLUMNS = ["name", "trigger", "signals", "active", "targeted", "running", "failed"]


def _campaign_row(campaign: dict[str, Any]) -> dict[str, Any]:
    definition = campaign["definition"]
    trigger = (
        f"when {definition['condition']}"
        if definition["trigger"] == "condition"
        else f"every {definition['period_ms']} ms"
    )
    return {
        "name": campaign["name"],
        "trigger": trigger,
        "signals": definition["signals"],
        "active": campaign["active"],
        **campaign["status"],
    }


def cmd_campaigns(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        if args.action == "list":
            found = client.get("/campaigns")
        elif args.action == "create":
            target: dict[str, Any] = {}
            if args.brand:
                target["brand"] = args.brand
            if args.model:
                target["model"] = args.model
            if args.tag:
                target["tags"] = args.tag
            body: dict[str, Any] = {
                "name": args.name,
                "target": target,
                "signals": [s.strip() for s in args.signals.split(",") if s.strip()],
                "trigger": "condition" if args.when else "time",
                "period_ms": args.every_ms,
                "condition": args.when,
                "mode": "always" if args.always else "rising_edge",
                "min_interval_ms": args.min_interval_ms,
                "pre_trigger_ms": args.pre_ms,
                "post_trigger_ms": args.post_ms,
            }
            found = client.post("/campaigns", body)
        elif args.action == "delete":
            client.request("DELETE", f"/campaigns/{args.name}")
            console.print(f"campaign {args.name} deleted")
            return 0
        else:
            found = client.post(f"/campaigns/{args.name}/{args.action}")
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    rows = [_campaign_row(c) for c in (found if isinstance(found, list) else [found])]
    _print_records(args, rows, CAMPAIGN_COLUMNS, "campaigns")
    return 0


def cmd_agent(args: argparse.Namespace) -> int:
    from carcloud.agent.config import EXAMPLE, load_config
    from carcloud.agent.runtime import Agent

    if args.example:
        print(EXAMPLE, end="")
        return 0
    if args.config is None:
        raise ConfigError("carcloud agent needs --config FILE (see --example)")
    config = load_config(args.config)

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        agent = Agent(config)
        console.print(
            f"carcloud agent for {config.vin} → {config.host}:{config.port} (Ctrl-C stops)"
        )
        await agent.run(stop)

    run_async(go())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import tempfile

    from carcloud.runtime.demo import live_page_url, run_demo
    from carcloud.runtime.platform import Started

    if args.data_dir is None:
        args.data_dir = Path(tempfile.mkdtemp(prefix="carcloud-demo-"))
    settings = _settings(args)

    def ready(started: Started) -> None:
        console.print(f"[bold green]carcloud demo is up[/] (data dir {settings.data_dir})")
        console.print(f"  registering a fleet of {args.vehicles} vehicles of three brands…")

    def fleet_ready(count: int) -> None:
        key = (settings.data_dir / "operator.key").read_text().strip()
        console.print(f"  {count} simulated vehicles are driving. Open the live fleet page:")
        console.print(f"\n    [bold]{live_page_url(settings, key)}[/]\n")
        console.print(f"  API {settings.http_url}/api/v1/docs   MQTT {settings.mqtt_url}")
        console.print("Press Ctrl-C to stop.")

    run_async(
        run_demo(
            settings,
            vehicles=args.vehicles,
            seed=args.seed,
            speedup=args.speedup,
            gaps_per_hour=args.offline_rate,
            on_ready=ready,
            on_fleet=fleet_ready,
        )
    )
    console.print("carcloud demo stopped.")
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
        description="Run worker roles (callout, presence, ingest, control, api) as their "
        "own process, against the platform of --data-dir. Run several for more throughput.",
    )
    worker.add_argument(
        "roles", nargs="+", choices=["callout", "presence", "ingest", "control", "api"]
    )
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

    command = sub.add_parser(
        "command",
        help="send a remote command to a vehicle",
        description="Send a command (lock, unlock, climate_start, charge_start, charge_stop, "
        "set_charge_limit, honk_flash, navigate_to, custom, …) with key=value parameters, e.g. "
        "`carcloud command VIN set_charge_limit percent=80 --wait 30s`. Exit code: 0 succeeded "
        "or accepted, 1 failed or expired, 3 still open when --wait ended.",
    )
    command.add_argument("vin")
    command.add_argument("kind", help="command kind (GET /api/v1/command-kinds lists them)")
    command.add_argument("params", nargs="*", help="parameters as key=value (values may be JSON)")
    command.add_argument("--wait", nargs="?", const="30s", help="wait for the result (default 30s)")
    command.add_argument("--ttl", help="how long it may wait for an offline car, e.g. 2h")
    command.add_argument(
        "--idempotency-key", help="repeat-safe key: the same key, the same command"
    )
    _add_client(command)
    command.set_defaults(func=cmd_command)

    twin = sub.add_parser("twin", help="show or set a vehicle's twin", description="Twins.")
    twin_sub = twin.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = twin_sub.add_parser(
        "show",
        help="desired, reported and pending properties",
        description="Show a vehicle's twin.",
    )
    show.add_argument("vin")
    _add_client(show)
    show.set_defaults(func=cmd_twin_show)
    setter = twin_sub.add_parser(
        "set",
        help="set desired properties (key=value, merged; null removes)",
        description="Merge desired properties into a vehicle's twin, e.g. "
        "`carcloud twin set VIN charge_limit_percent=80 hvac='{\"eco\": true}'`.",
    )
    setter.add_argument("vin")
    setter.add_argument("properties", nargs="+", help="key=value (values may be JSON)")
    setter.add_argument("--if-match", type=int, help="only if the desired version is still this")
    setter.add_argument("--replace", action="store_true", help="replace instead of merge")
    _add_client(setter)
    setter.set_defaults(func=cmd_twin_set)

    campaigns = sub.add_parser(
        "campaigns",
        help="data-collection campaigns for agents",
        description="Define which signals agents collect, and when: every N ms, or when a "
        "condition such as 'Vehicle.Speed > 130' holds.",
    )
    c_sub = campaigns.add_subparsers(dest="action", required=True, metavar="ACTION")
    c_list = c_sub.add_parser(
        "list",
        help="campaigns and how many vehicles run each",
        description="List campaigns with targeted, running and failed counts.",
    )
    _add_client(c_list)
    c_list.set_defaults(func=cmd_campaigns)
    c_create = c_sub.add_parser(
        "create",
        help="start a campaign",
        description="Start a campaign, e.g. `carcloud campaigns create overspeed --signals "
        "Vehicle.Speed --when 'Vehicle.Speed > 130' --brand volta`.",
    )
    c_create.add_argument("name")
    c_create.add_argument("--signals", required=True, help="comma-separated VSS paths")
    c_create.add_argument("--every-ms", type=int, default=1000, help="time-based period")
    c_create.add_argument("--when", help="condition over signals (makes it condition-based)")
    c_create.add_argument(
        "--always", action="store_true", help="send while true, not only on the rising edge"
    )
    c_create.add_argument("--min-interval-ms", type=int, default=0)
    c_create.add_argument("--pre-ms", type=int, default=0, help="samples before the trigger")
    c_create.add_argument("--post-ms", type=int, default=0, help="samples after the trigger")
    c_create.add_argument("--brand")
    c_create.add_argument("--model")
    c_create.add_argument("--tag", action="append")
    _add_client(c_create)
    c_create.set_defaults(func=cmd_campaigns)
    for verb, text in (
        ("pause", "stop collecting (the definition stays)"),
        ("resume", "collect again"),
        ("delete", "remove the campaign"),
    ):
        change = c_sub.add_parser(verb, help=text, description=text[0].upper() + text[1:] + ".")
        change.add_argument("name")
        _add_client(change)
        change.set_defaults(func=cmd_campaigns)

    agent = sub.add_parser(
        "agent",
        help="run the edge agent of one car",
        description="The in-car agent: samples its signal source, keeps everything in a "
        "durable outbox, drains it in order over MQTT, and runs commands and desired "
        "properties. `carcloud agent --example` prints a configuration to start from.",
    )
    agent.add_argument("--config", type=Path, help="the agent's TOML configuration file")
    agent.add_argument("--example", action="store_true", help="print an example configuration")
    agent.set_defaults(func=cmd_agent)

    demo = sub.add_parser(
        "demo",
        help="the platform plus a simulated fleet of three brands, with a live page",
        description="Start carcloud on its embedded default in a fresh data dir, register a "
        "demo fleet of three brands, drive it with the simulator, and print the URL of the "
        "live fleet page. Ctrl-C stops everything.",
    )
    _add_ports(demo)
    demo.add_argument("--vehicles", type=int, default=60, help="fleet size (default %(default)s)")
    demo.add_argument("--seed", type=int, default=7, help="same seed, same fleet and drives")
    demo.add_argument("--speedup", type=float, default=1.0, help="simulated seconds per second")
    demo.add_argument(
        "--offline-rate",
        type=float,
        default=2.0,
        help="connectivity gaps per vehicle per simulated hour (default %(default)s)",
    )
    demo.set_defaults(func=cmd_demo)

    simulate = sub.add_parser(
        "simulate",
        help="drive simulated vehicles against a running carcloud",
        description="Connect N simulated vehicles (real MQTT clients with their own "
        "credentials) and publish canonical telemetry. Finds the platform in --data-dir, "
        "or use --api/--mqtt/--key.",
    )
    _add_data_dir(simulate)
    simulate.add_argument("--api", help="API base URL (default: from the data dir)")
    simulate.add_argument("--mqtt", help="MQTT HOST:PORT (default: from the data dir)")
    simulate.add_argument("--key", help="operator API key (default: the data dir's)")
    simulate.add_argument("--vehicles", type=int, default=50, help="how many (default %(default)s)")
    simulate.add_argument(
        "--brands", help="comma-separated brand slugs (default: volta,strada,kargo)"
    )
    simulate.add_argument("--rate", type=float, default=1.0, help="messages per vehicle per second")
    simulate.add_argument("--duration", type=float, help="stop after this many seconds")
    simulate.add_argument("--seed", type=int, default=1, help="same seed, same fleet and drives")
    simulate.add_argument(
        "--speedup", type=float, default=1.0, help="simulated seconds per real second"
    )
    simulate.add_argument(
        "--offline-rate",
        type=float,
        default=0.0,
        help="connectivity gaps per vehicle per simulated hour",
    )
    simulate.add_argument(
        "--register",
        action="store_true",
        help="register the vehicles through the API (always done when needed)",
    )
    simulate.add_argument(
        "--processes", type=int, default=1, help="split the fleet over N processes"
    )
    simulate.add_argument(
        "--start", type=float, help="simulated start time, epoch seconds (default now)"
    )
    simulate.add_argument("--credentials", type=Path, help="file that keeps the vehicles' secrets")
    simulate.add_argument("--shard", help=argparse.SUPPRESS)
    simulate.add_argument("--status-json", action="store_true", help=argparse.SUPPRESS)
    simulate.set_defaults(func=cmd_simulate)
    return parser


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
