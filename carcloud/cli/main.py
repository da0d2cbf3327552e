"""The `carcloud` command tree: every command, its options and its help."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from carcloud import __version__
from carcloud.cli.alert_commands import add_alert_commands
from carcloud.cli.cluster_commands import add_cluster_commands
from carcloud.cli.common import (
    DEMO_SETTINGS,
    RETENTION_SETTINGS,
    UP_SETTINGS,
    WORKER_SETTINGS,
    _add_data_dir,
    _add_settings,
    api_command,
    err_console,
)
from carcloud.cli.control_commands import cmd_campaigns, cmd_command, cmd_twin_set, cmd_twin_show
from carcloud.cli.driver_commands import add_driver_commands
from carcloud.cli.fleet_commands import cmd_agent, cmd_simulate
from carcloud.cli.geofence_commands import add_geofence_commands
from carcloud.cli.platform_commands import cmd_demo, cmd_status, cmd_up, cmd_worker
from carcloud.cli.registry_commands import (
    cmd_brands_add,
    cmd_brands_list,
    cmd_vehicles_add,
    cmd_vehicles_import,
    cmd_vehicles_list,
    cmd_vehicles_revoke,
    cmd_vehicles_rotate,
    cmd_vehicles_show,
)
from carcloud.cli.storage_commands import cmd_retention
from carcloud.cli.telematics_commands import add_telematics_commands
from carcloud.cli.webhook_commands import add_webhook_commands
from carcloud.config import DEMO_WARMUP_S
from carcloud.errors import CarcloudError
from carcloud.runtime.role_names import ROLE_DESCRIPTIONS, USER_ROLES


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
        "The first start creates an operator API key and prints it. Ctrl-C stops everything. "
        "Every option can also be set by its CARCLOUD_* environment variable.",
    )
    _add_settings(up, UP_SETTINGS)
    up.set_defaults(func=cmd_up)

    worker = sub.add_parser(
        "worker",
        help="run some roles against a running platform",
        description="Run worker roles as their own process. Run several for more throughput. "
        "On the platform's host it finds the platform through --data-dir; on another host give "
        "--nats, --database and --secrets-file (or CARCLOUD_NATS_URL, CARCLOUD_DATABASE_URL, "
        "CARCLOUD_SECRETS_FILE), "
        "and --mqtt-url for the control role. Every option can also be set by its "
        "CARCLOUD_* environment variable.",
    )
    worker.add_argument(
        "roles",
        nargs="+",
        choices=USER_ROLES,
        metavar="ROLE",
        help="the roles this process runs: "
        + "; ".join(f"{name} ({ROLE_DESCRIPTIONS[name]})" for name in USER_ROLES),
    )
    _add_settings(worker, WORKER_SETTINGS)
    worker.set_defaults(func=cmd_worker)

    retention = sub.add_parser(
        "retention",
        help="prepare history partitions and drop expired history",
        description="Create the coming days' telemetry history partitions (PostgreSQL) and "
        "apply the retention policy once: full-rate history older than --retention-days whole "
        "days is folded into per-minute aggregates and removed (PostgreSQL drops each day's "
        "partition; SQLite deletes rows in chunks); aggregates older than "
        "--downsampled-retention-days go. The ingest role runs the same pass every hour.",
    )
    _add_settings(retention, RETENTION_SETTINGS)
    retention.add_argument("--json", action="store_true", help="print JSON")
    retention.set_defaults(func=cmd_retention)

    add_cluster_commands(sub)

    api_command(
        sub,
        "status",
        "vehicles online, ingest backlog",
        cmd_status,
        description="Show the platform's status.",
    )

    brands = sub.add_parser(
        "brands", help="manage brands (tenants)", description="Brands are the tenants."
    )
    brands_sub = brands.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = api_command(brands_sub, "add", "create a brand", cmd_brands_add)
    add.add_argument("slug", help="short lowercase id, e.g. volta")
    add.add_argument("name", nargs="?", help="display name, e.g. 'Volta Motors'")
    api_command(brands_sub, "list", "list brands", cmd_brands_list)

    vehicles = sub.add_parser(
        "vehicles",
        help="register and manage vehicles",
        description="Vehicles and their MQTT credentials.",
    )
    v_sub = vehicles.add_subparsers(dest="action", required=True, metavar="ACTION")
    v_add = api_command(
        v_sub,
        "add",
        "register a vehicle and print its MQTT credentials",
        cmd_vehicles_add,
        description="Register a vehicle; its MQTT password is printed once "
        "and stored only as a hash.",
    )
    v_add.add_argument("vin", help="17-character VIN (ISO 3779)")
    v_add.add_argument("--brand", required=True, help="brand slug")
    v_add.add_argument("--model", required=True, help="model name")
    v_add.add_argument("--year", type=int, help="model year")
    v_add.add_argument("--tag", action="append", help="a tag (repeat for several)")
    v_import = api_command(
        v_sub,
        "import",
        "register many vehicles from a CSV file",
        cmd_vehicles_import,
        description="Register the vehicles of a CSV file with the header "
        "vin,brand,model,year,tags (year and tags may be empty or left out; tags "
        "separated by ';'), in batches through the API. Bad rows are reported with "
        "their line and the others registered; the exit status is 1 if any row failed. "
        "The MQTT secrets are written once to --secrets-out (a new file, mode 0600).",
    )
    v_import.add_argument("file", type=Path, help="the CSV file")
    v_import.add_argument(
        "--secrets-out",
        type=Path,
        required=True,
        help="new file for the vehicles' MQTT secrets (CSV, mode 0600; never overwritten)",
    )
    v_import.add_argument(
        "--batch-size",
        type=int,
        default=1000,
        help="vehicles per API request, at most 1000 (default %(default)s)",
    )
    v_list = api_command(
        v_sub,
        "list",
        "list vehicles",
        cmd_vehicles_list,
        description="List vehicles with online status.",
    )
    v_list.add_argument("--brand")
    v_list.add_argument("--tag")
    v_list.add_argument("--online", action=argparse.BooleanOptionalAction, default=None)
    v_list.add_argument("--limit", type=int, default=100)
    api_command(v_sub, "show", "show a vehicle and its latest signals", cmd_vehicles_show, "vin")
    api_command(
        v_sub,
        "rotate-secret",
        "issue a new MQTT password (the old one stops working)",
        cmd_vehicles_rotate,
        "vin",
    )
    api_command(
        v_sub,
        "revoke",
        "revoke the credentials and drop the live connection",
        cmd_vehicles_revoke,
        "vin",
    )

    command = api_command(
        sub,
        "command",
        "send a remote command to a vehicle",
        cmd_command,
        "vin",
        description="Send a command (lock, unlock, climate_start, charge_start, charge_stop, "
        "set_charge_limit, honk_flash, navigate_to, custom, …) with key=value parameters, e.g. "
        "`carcloud command VIN set_charge_limit percent=80 --wait 30s`. Exit code: 0 succeeded "
        "or accepted, 1 failed or expired, 3 still open when --wait ended.",
    )
    command.add_argument("kind", help="command kind (GET /api/v1/command-kinds lists them)")
    command.add_argument("params", nargs="*", help="parameters as key=value (values may be JSON)")
    command.add_argument("--wait", nargs="?", const="30s", help="wait for the result (default 30s)")
    command.add_argument("--ttl", help="how long it may wait for an offline car, e.g. 2h")
    command.add_argument(
        "--idempotency-key", help="repeat-safe key: the same key, the same command"
    )

    twin = sub.add_parser("twin", help="show or set a vehicle's twin", description="Twins.")
    twin_sub = twin.add_subparsers(dest="action", required=True, metavar="ACTION")
    api_command(
        twin_sub,
        "show",
        "desired, reported and pending properties",
        cmd_twin_show,
        "vin",
        description="Show a vehicle's twin.",
    )
    setter = api_command(
        twin_sub,
        "set",
        "set desired properties (key=value, merged; null removes)",
        cmd_twin_set,
        "vin",
        description="Merge desired properties into a vehicle's twin, e.g. "
        "`carcloud twin set VIN charge_limit_percent=80 hvac='{\"eco\": true}'`.",
    )
    setter.add_argument("properties", nargs="+", help="key=value (values may be JSON)")
    setter.add_argument("--if-match", type=int, help="only if the desired version is still this")
    setter.add_argument("--replace", action="store_true", help="replace instead of merge")

    campaigns = sub.add_parser(
        "campaigns",
        help="data-collection campaigns for agents",
        description="Define which signals agents collect, and when: every N ms, or when a "
        "condition such as 'Vehicle.Speed > 130' holds.",
    )
    c_sub = campaigns.add_subparsers(dest="action", required=True, metavar="ACTION")
    api_command(
        c_sub,
        "list",
        "campaigns and how many vehicles run each",
        cmd_campaigns,
        description="List campaigns with targeted, running and failed counts.",
    )
    c_create = api_command(
        c_sub,
        "create",
        "start a campaign",
        cmd_campaigns,
        "name",
        description="Start a campaign, e.g. `carcloud campaigns create overspeed --signals "
        "Vehicle.Speed --when 'Vehicle.Speed > 130' --brand volta`.",
    )
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
    for verb, text in (
        ("pause", "stop collecting (the definition stays)"),
        ("resume", "collect again"),
        ("delete", "remove the campaign"),
    ):
        api_command(c_sub, verb, text, cmd_campaigns, "name")

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

    add_telematics_commands(sub)
    add_driver_commands(sub)
    add_webhook_commands(sub)
    add_geofence_commands(sub)
    add_alert_commands(sub)

    demo = sub.add_parser(
        "demo",
        help="the platform plus a simulated fleet of three brands, with a live page",
        description="Start carcloud on its embedded default in a fresh data dir, register a "
        "demo fleet of three brands, drive it with the simulator, and print the URL of the "
        "live fleet page. Ctrl-C stops everything.",
    )
    demo.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the demo keeps its data (default: a fresh temporary folder)",
    )
    _add_settings(demo, DEMO_SETTINGS)
    demo.add_argument("--vehicles", type=int, default=60, help="fleet size (default %(default)s)")
    demo.add_argument("--seed", type=int, default=7, help="same seed, same fleet and drives")
    demo.add_argument("--speedup", type=float, default=1.0, help="simulated seconds per second")
    demo.add_argument(
        "--warm-up",
        type=float,
        default=DEMO_WARMUP_S,
        metavar="SECONDS",
        help="simulated time the fleet runs, unsent, before going live: cars are already "
        "on the road when the page opens (default %(default)s)",
    )
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
        "--warm-up",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="run the fleet's day this long forward, unsent, before going live, so that "
        "cars are already driving and charging at the start (default %(default)s)",
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
    simulate.add_argument(
        "--ground-truth",
        type=Path,
        metavar="FILE",
        help="write the trips and charging sessions the cars really had to FILE, as JSON "
        "lines, to measure detection against (docs/telematics.md)",
    )
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
