"""`carcloud command`, `twin` and `campaigns`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from carcloud.cli.common import (
    _print_records,
    api_client,
    console,
    err_console,
)
from carcloud.errors import ConfigError


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
