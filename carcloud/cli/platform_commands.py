"""`carcloud up`, `worker`, `status` and `demo`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from carcloud import __version__
from carcloud.cli.common import (
    _settings,
    api_client,
    console,
    run_async,
)
from carcloud.config import mask_url


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
        nats_url = mask_url(str(started.info["nats_url"]))
        console.print(
            f"worker running roles: {', '.join(args.roles)} against {nats_url} (Ctrl-C to stop)"
        )

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
    if "derive" in status:
        derive = status["derive"]
        console.print(
            f"  derive    {derive.get('vehicles_waiting', '?')} vehicles waiting "
            f"(oldest {derive.get('oldest_waiting_s', '?')} s), "
            f"{derive.get('notices_waiting', '?')} commit notices"
        )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import tempfile

    from carcloud.runtime.demo import headunit_url, live_page_url, run_demo
    from carcloud.runtime.democalendars import DemoDriver
    from carcloud.runtime.platform import Started
    from carcloud_agent.protocol.notifications import Notification

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

    def drivers_ready(drivers: list[DemoDriver]) -> None:
        key = (settings.data_dir / "operator.key").read_text().strip()
        console.print(
            f"  {len(drivers)} cars have a driver with a calendar: their next meeting and "
            "when to leave show on the car's screen within a minute. Open one:"
        )
        for driver in drivers:
            console.print(f"    {driver.name} ({driver.brand}, {driver.vin}):")
            console.print(f"      [bold]{headunit_url(settings, key, driver.vin)}[/]")

    def card_shown(vin: str, card: Notification) -> None:
        console.print(f"  card on {vin}: {card.title}")

    run_async(
        run_demo(
            settings,
            vehicles=args.vehicles,
            seed=args.seed,
            speedup=args.speedup,
            gaps_per_hour=args.offline_rate,
            warmup_s=args.warm_up,
            on_ready=ready,
            on_fleet=fleet_ready,
            on_drivers=drivers_ready,
            on_card=card_shown,
        )
    )
    console.print("carcloud demo stopped.")
    return 0


# ---- parser ---------------------------------------------------------------------------
