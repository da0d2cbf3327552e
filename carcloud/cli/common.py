"""What every carcloud command shares: options, the API client, printing, the event loop."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

from carcloud.client import ApiClient
from carcloud.config import (
    SETTINGS_BY_NAME,
    Setting,
    Settings,
    default_data_dir,
    load_settings,
)
from carcloud.errors import ConfigError
from carcloud.runtime.datadir import DataDir

T = TypeVar("T")

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


# ---- shared options -------------------------------------------------------------------


# The settings each command takes; each gets its flag, and only these read CARCLOUD_*
# variables. `up` and `worker` take the same: with --nats (CARCLOUD_NATS_URL) `up` uses
# that NATS instead of starting its own, as a worker does.
_LOCAL_SETTINGS = (
    "data_dir",
    "host",
    "http_port",
    "mqtt_port",
    "nats_port",
    "database_url",
    "ingest_workers",
    "ingest_batch",
    "receipt_interval_ms",
    "retention_days",
    "downsampled_retention_days",
    "max_message_bytes",
    "tls_cert",
    "tls_key",
    "webhook_allow_private",
    "media",
    "janus_url",
    "janus_secret",
    "media_ports",
    "media_interfaces",
    "room_close_after_s",
    "max_rooms_per_brand",
    "max_participants_per_brand",
    "rejoin_grace_s",
    "trip_stop_s",
    "trip_gap_s",
    "trip_gap_min_m",
    "trip_gap_min_kmh",
    "trip_moving_kmh",
    "trip_min_distance_m",
    "trip_min_positions",
)
# TLS on NATS (docs/scale-out.md): nats-config's node certificate, the clients' CA and certificate.
NATS_TLS_SETTINGS = ("nats_tls_ca", "nats_tls_cert", "nats_tls_key", "nats_tls_first")
UP_SETTINGS = (
    *_LOCAL_SETTINGS,
    "nats_url",
    *NATS_TLS_SETTINGS,
    "mqtt_url",
    "secrets_file",
    "stream_replicas",
)
WORKER_SETTINGS = UP_SETTINGS
# The demo makes a fresh data dir, database and NATS of its own, unless --data-dir is given.
DEMO_SETTINGS = tuple(name for name in _LOCAL_SETTINGS if name not in ("data_dir", "database_url"))
# `carcloud retention` needs only the database and the rule.
RETENTION_SETTINGS = ("data_dir", "database_url", "retention_days", "downsampled_retention_days")


def _flag_type(setting: Setting) -> Any:
    """argparse's type for a setting: the table's parser, with argparse's error."""

    def parse(raw: str) -> Any:
        try:
            return setting.parse(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{raw!r}: {exc}") from None

    return parse


def _add_settings(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """A flag per setting, from the settings table; its help names its CARCLOUD_* variable.

    Flags default to None, so that `_settings` can tell a flag from a variable.
    """
    for name in names:
        setting = SETTINGS_BY_NAME[name]
        parser.add_argument(
            setting.option,
            dest=setting.name,
            type=_flag_type(setting),
            default=None,
            metavar=setting.metavar,
            help=setting.help_text().replace("%", "%%"),
        )


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    _add_settings(parser, ["data_dir"])


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


def api_command(
    actions: Any,
    name: str,
    text: str,
    func: Callable[[argparse.Namespace], int] | None,
    *positionals: str,
    description: str | None = None,
    json_output: bool = True,
) -> argparse.ArgumentParser:
    """A subcommand that talks to the API: its help (and, unless given, a description made
    from it), its positional arguments, the client options (--api, --key, --json, --data-dir)
    and its handler (None: the parent's handler reads `args.action`). Returns the parser,
    for options of its own."""
    parser: argparse.ArgumentParser = actions.add_parser(
        name, help=text, description=description or text[0].upper() + text[1:] + "."
    )
    for positional in positionals:
        parser.add_argument(positional)
    _add_client(parser, json_output)
    if func is not None:
        parser.set_defaults(func=func)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    """The command's settings: its flags, then CARCLOUD_* variables, then defaults.

    A command takes the settings it has flags for (see `_add_settings`).
    """
    given = {name: value for name, value in vars(args).items() if name in SETTINGS_BY_NAME}
    return load_settings(given, names=list(given))


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
