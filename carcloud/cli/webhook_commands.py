"""`carcloud webhooks …`: subscribe URLs to events, read deliveries, redeliver one."""

from __future__ import annotations

import argparse
from typing import Any

from carcloud.cli.common import _print_records, api_client, api_command, console

WEBHOOK_COLUMNS = ("id", "brand", "url", "event_types", "vins", "description")
DELIVERY_COLUMNS = (
    "id", "event_id", "event_type", "status", "attempts", "last_status_code", "last_error",
    "next_attempt_at",
)  # fmt: skip


def add_webhook_commands(sub: Any) -> None:
    """Register `carcloud webhooks` and its subcommands on the top-level subparsers."""
    webhooks = sub.add_parser(
        "webhooks",
        help="subscribe URLs to events; deliveries and redelivery",
        description="Signed POSTs of domain events to your URLs (docs/webhooks.md).",
    )
    actions = webhooks.add_subparsers(dest="action", required=True)

    api_command(actions, "list", "the webhooks the key may see", cmd_list)
    add = api_command(actions, "add", "subscribe a URL (prints its secret once)", cmd_add, "url")
    add.add_argument(
        "--type", dest="types", action="append", required=True, metavar="TYPE",
        help="an event type or group (trip, vehicle.*); repeat for more",
    )  # fmt: skip
    add.add_argument("--vin", dest="vins", action="append", default=[], help="only this VIN")
    add.add_argument("--brand", help="the brand (operator keys; default: every brand)")
    add.add_argument("--description", default="")
    api_command(actions, "delete", "unsubscribe", cmd_delete, "webhook_id", json_output=False)
    deliveries = api_command(
        actions, "deliveries", "a webhook's deliveries, newest first", cmd_deliveries, "webhook_id"
    )
    deliveries.add_argument("--status", choices=["pending", "succeeded", "failed"])
    deliveries.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    api_command(
        actions,
        "redeliver",
        "send one delivery again now",
        cmd_redeliver,
        "webhook_id",
        "delivery_id",
    )


def cmd_list(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        hooks = client.get("/webhooks")["webhooks"]
    _print_records(args, hooks, WEBHOOK_COLUMNS, "webhooks")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    body = {"url": args.url, "event_types": args.types, "vins": args.vins,
            "brand": args.brand, "description": args.description}  # fmt: skip
    with api_client(args) as client:
        created = client.post("/webhooks", body)
    _print_records(args, created, (*WEBHOOK_COLUMNS, "secret"), "webhook created")
    if not args.json:
        console.print("Keep the secret: it is not shown again.")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        client.request("DELETE", f"/webhooks/{args.webhook_id}")
    console.print(f"deleted {args.webhook_id}")
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        page = client.get(
            f"/webhooks/{args.webhook_id}/deliveries", status=args.status, limit=args.limit
        )
    _print_records(args, page["deliveries"], DELIVERY_COLUMNS, f"deliveries of {args.webhook_id}")
    return 0


def cmd_redeliver(args: argparse.Namespace) -> int:
    path = f"/webhooks/{args.webhook_id}/deliveries/{args.delivery_id}/redeliver"
    with api_client(args) as client:
        delivery = client.post(path)
    _print_records(args, delivery, DELIVERY_COLUMNS, "queued again")
    return 0
