"""`carcloud alerts`: alerts and their acknowledgement, and the alert rules of a brand."""

from __future__ import annotations

import argparse
from typing import Any

from carcloud.cli.common import _print_records, api_client, api_command, console


def add_alert_commands(sub: Any) -> None:
    """Register `carcloud alerts ACTION` on the top-level subparsers."""
    alerts = sub.add_parser(
        "alerts",
        help="alerts, their acknowledgement, and alert rules",
        description="Alerts raised by a brand's rules (active → acknowledged → cleared).",
    )
    actions = alerts.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = api_command(actions, "list", "alerts, newest first", None)
    listing.add_argument("--status", help="active, acknowledged, cleared or open")
    listing.add_argument("--vin")
    listing.add_argument("--limit", type=int, default=20)
    api_command(actions, "ack", "acknowledge an active alert", None, "alert_id")
    api_command(actions, "rules", "the alert rules the key may see", None)
    add = api_command(
        actions,
        "add-rule",
        "create an alert rule",
        None,
        description="e.g. `carcloud alerts add-rule fast --when 'Vehicle.Speed > 130' --for 10` "
        "or turn a built-in on: `carcloud alerts add-rule --builtin low_12v_battery`",
    )
    add.add_argument("name", nargs="?")
    add.add_argument("--builtin", help="start from a built-in rule")
    add.add_argument("--when", help="the condition (campaign condition language)")
    add.add_argument("--clear-when", help="the clear condition (default: not the condition)")
    add.add_argument("--for", dest="for_s", type=float, help="seconds it must hold first")
    add.add_argument("--severity", choices=("info", "warning", "critical"))
    add.add_argument("--brand", help="the rule's brand (needed with an operator key)")
    api_command(
        actions,
        "delete-rule",
        "delete a rule (its open alerts clear)",
        None,
        "rule_id",
        json_output=False,
    )
    alerts.set_defaults(func=cmd_alerts)


_ALERT_COLUMNS = ("id", "vin", "rule_name", "severity", "status", "raised_at", "cleared_at")


def cmd_alerts(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        if args.action == "list":
            found = client.get("/alerts", status=args.status, vin=args.vin, limit=args.limit)
            _print_records(args, found["alerts"], _ALERT_COLUMNS, "alerts")
        elif args.action == "ack":
            done = client.post(f"/alerts/{args.alert_id}/acknowledge")
            columns: tuple[str, ...] = ("id", "status", "acknowledged_by", "acknowledged_at")
            _print_records(args, done, columns, "alert acknowledged")
        elif args.action == "rules":
            rules = client.get("/alert-rules")["rules"]
            columns = ("id", "brand", "name", "kind", "condition", "for_s", "severity", "enabled")
            _print_records(args, rules, columns, "alert rules")
        elif args.action == "add-rule":
            body = {
                key: value
                for key, value in (
                    ("name", args.name),
                    ("builtin", args.builtin),
                    ("condition", args.when),
                    ("clear_condition", args.clear_when),
                    ("for_s", args.for_s),
                    ("severity", args.severity),
                    ("brand", args.brand),
                )
                if value is not None
            }
            created = client.post("/alert-rules", body)
            _print_records(args, created, ("id", "brand", "name", "condition", "for_s"), "rule")
        else:
            client.request("DELETE", f"/alert-rules/{args.rule_id}")
            console.print(f"alert rule {args.rule_id} deleted")
    return 0
