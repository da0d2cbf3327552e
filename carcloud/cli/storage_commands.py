"""`carcloud retention`: prepare history partitions, roll up closed minutes and apply the
retention policy once."""

from __future__ import annotations

import argparse
import json

from carcloud.cli.common import _settings, console, run_async
from carcloud.config import mask_url
from carcloud.ingest.maintenance import MaintenanceReport, maintain_history
from carcloud.ingest.retention import RetentionPolicy
from carcloud.storage import open_storage
from carcloud.timeutil import format_us


async def _retention(url: str, policy: RetentionPolicy) -> MaintenanceReport:
    stores = open_storage(url)
    await stores.open()
    try:
        return await maintain_history(stores.telemetry, policy)
    finally:
        await stores.close()


def cmd_retention(args: argparse.Namespace) -> int:
    settings = _settings(args)
    policy = RetentionPolicy(settings.retention_days, settings.downsampled_retention_days)
    url = settings.resolved_database_url()
    report = run_async(_retention(url, policy))
    retention = report.retention
    if args.json:
        print(
            json.dumps(
                {
                    "partitions_created": report.partitions_created,
                    "retention": None if retention is None else retention.__dict__,
                    "rollup": None if report.rollup is None else report.rollup.__dict__,
                },
                indent=2,
            )
        )
        return 0
    console.print(f"history of {mask_url(url)}: {report.partitions_created} partition(s) created")
    if report.rollup is not None:
        console.print(
            f"  minute rollup to {format_us(report.rollup.until)}: "
            f"{report.rollup.minutes_written} minute aggregate(s) written"
        )
    if retention is None:
        console.print("retention: none set (--retention-days 0 keeps history forever)")
        return 0
    if retention.full_rate_from is not None:
        console.print(
            f"  full-rate history now starts {format_us(retention.full_rate_from)}: "
            f"{retention.days_dropped} day partition(s) dropped, {retention.rows_deleted} "
            f"row(s) deleted, {retention.minutes_written} minute aggregate(s) written, "
            f"{retention.messages_deleted} expired message identities deleted (no longer "
            "deduplicated)"
        )
    console.print(f"  {retention.minutes_deleted} expired minute aggregate(s) deleted")
    return 0
