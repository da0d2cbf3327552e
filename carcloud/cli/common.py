"""What every carcloud command shares: options, the API client, printing, the event loop."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

from carcloud.client import ApiClient
from carcloud.config import (
    DEFAULT_HTTP_PORT,
    DEFAULT_MQTT_PORT,
    DEFAULT_NATS_PORT,
    Settings,
    default_data_dir,
)
from carcloud.errors import ConfigError
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
