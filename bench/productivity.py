"""The driver's day at fleet scale (issue 13): N drivers with a CalDAV calendar each, a
full sync, an incremental sync after 1 % of the calendars changed, and leave-by for
10,000 moving cars, each against a baseline measured in the same run.

    python bench/productivity.py [--target standin|radicale] [--accounts 10000]
        [--events 20] [--changed-percent 1] [--concurrency 32] [--per-host 32]
        [--latency-ms MS] [--cars 10000] [--moves 2]

The pieces are the existing benches' (no copies): the CalDAV target, the platform and
the phases of `bench/calendar_sync.py` (the stand-in `bench/caldav_standin.py` or a real
Radicale, in a child process; the real `CalendarSyncWorker` over a SQLite file), and the
fleet and passes of `bench/leaveby.py`.

1. Full sync of every account (everything fetched).
2. Baseline: one PROPFIND (depth 0) to every calendar, as many at once as the worker
   sends to one server (CONCURRENCY, at most PER-HOST), over connection pools like the
   worker's, nothing else: the rate at which the server answers this machine just
   before the incremental sync (after the full sync, so that Radicale's first touch
   of each collection, which writes its caches, is not in it).
3. CHANGED-PERCENT of the calendars get one event edited on the server (a new title),
   every account is made due, and the incremental sync runs. Checked afterwards: the
   objects fetched are exactly the edited ones (calendars not edited fetched nothing),
   and each edited event shows its new title in its driver's agenda.
4. Leave-by for CARS cars at random points of the demo's Berlin network, each with a
   meeting at one of its places: a pass with new routes, then MOVES passes after every
   car moved ~300 m; the straight-line estimate (no routing) is the baseline.

Targets: incremental sync of 10,000 accounts under 60 s; leave-by for 10,000 cars under 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The bench folder is no package: its modules are imported by name.
from calendar_sync import (  # noqa: E402
    PASSWORD,
    USER,
    Platform,
    Target,
    all_due,
    open_platform,
    sync_phase,
    target_arguments,
)
from leaveby import fleet, moved, one_pass  # noqa: E402

from carcloud.calendars.sync import CLIENT_CONNECTIONS, WorkerLimits  # noqa: E402
from carcloud.productivity.demonetwork import DemoNetworkRouter  # noqa: E402
from carcloud.productivity.routing import RouterChain  # noqa: E402
from carcloud.sim.citygen import network_for  # noqa: E402

INCREMENTAL_TARGET_S = 60.0
LEAVE_BY_TARGET_S = 5.0
_PROBE = (
    '<?xml version="1.0" encoding="utf-8"?><propfind xmlns="DAV:"><prop>'
    "<resourcetype/><sync-token/></prop></propfind>"
)


class Lines(list[str]):
    """The report's lines, each printed as it is added (a long run shows its progress)."""

    def append(self, line: str) -> None:
        print(line, flush=True)
        super().append(line)


def load() -> float:
    return os.getloadavg()[0]


def verdict(seconds: float, target: float, scale: float) -> str:
    """'met' or 'missed' for a time measured at `scale` of the target's size."""
    at_target = seconds / scale
    shown = f"{at_target:.2f} s" + ("" if scale == 1 else f" (extrapolated from {seconds:.2f} s)")
    return f"{shown} against < {target:g} s: {'met' if at_target < target else 'MISSED'}"


async def raw_fetch(url: str, accounts: int, concurrency: int) -> tuple[float, int]:
    """Seconds for one PROPFIND to each calendar, `concurrency` at once; failures."""
    pools = [
        httpx.AsyncClient(
            base_url=url,
            auth=(USER, PASSWORD),
            timeout=60,
            limits=httpx.Limits(
                max_connections=CLIENT_CONNECTIONS, max_keepalive_connections=CLIENT_CONNECTIONS
            ),
        )
        for _ in range(0, concurrency, CLIENT_CONNECTIONS)
    ]
    queue = list(range(accounts))
    failed = 0

    async def lane(client: httpx.AsyncClient) -> None:
        nonlocal failed
        while queue:
            a = queue.pop()
            try:
                answer = await client.request(
                    "PROPFIND", f"/{USER}/c{a}/", content=_PROBE, headers={"Depth": "0"}
                )
            except httpx.TransportError:
                failed += 1
                continue
            failed += answer.status_code != 207

    began = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for n in range(concurrency):
            group.create_task(lane(pools[n // CLIENT_CONNECTIONS]))
    seconds = time.perf_counter() - began
    for pool in pools:
        await pool.aclose()
    return seconds, failed


DECEMBER = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)  # the events are on 1 to 28 December 2026


async def changes_visible(platform: Platform, chosen: list[tuple[int, int]], title: str) -> int:
    """How many edited events show `title` in their driver's agenda."""
    seen = 0
    for a, e in chosen:
        entries = await platform.service.agenda(
            platform.drivers[a], DECEMBER, DECEMBER + dt.timedelta(days=31)
        )
        seen += any(entry.uid == f"e{a}-{e}" and entry.title == title for entry in entries)
    return seen


async def agenda_reads(platform: Platform, count: int) -> tuple[float, float]:
    """Seconds per agenda read of the first `count` drivers: first (objects parsed), again
    (the agenda kept by `AgendaCache`: nothing parsed)."""
    times = []
    for _ in range(2):
        began = time.perf_counter()
        for driver in platform.drivers[:count]:
            await platform.service.agenda(driver, DECEMBER, DECEMBER + dt.timedelta(days=31))
        times.append((time.perf_counter() - began) / count)
    return times[0], times[1]


async def calendars(args: argparse.Namespace) -> list[str]:
    """The sync phases; the lines of the report."""
    accounts, events, limits = (
        args.accounts,
        args.events,
        WorkerLimits(args.concurrency, args.per_host),
    )
    lines = Lines()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        made = time.perf_counter()
        target = Target(args.target, folder, accounts, events, args.latency_ms)
        try:
            platform = await open_platform(folder, target, accounts)
            lines.append(f"set-up (server, drivers, accounts): {time.perf_counter() - made:.1f} s")
            full = await sync_phase("full sync", platform.syncer, limits, accounts, target)
            lines.append(full.line())
            failed, rounds = full.failed, 0
            while failed and rounds < 5:  # so that every account has its sync token
                await all_due(platform.stores, accounts, failed_only=True)
                retry = await sync_phase("again", platform.syncer, limits, failed, target)
                lines.append(f"  the {failed} failed accounts synced again: {retry.failed} failed")
                failed, rounds = retry.failed, rounds + 1
            lanes = min(args.concurrency, args.per_host)  # as many at once as the worker
            raw, failed = await raw_fetch(target.url, accounts, lanes)
            lines.append(
                f"baseline, raw HTTP: {accounts} PROPFINDs in {raw:.2f} s "
                f"({accounts / raw:.0f} requests/s, {failed} failed), {lanes} at once; "
                f"load {load():.1f}"
            )
            rng = random.Random(1)
            count = max(1, accounts * args.changed_percent // 100)
            chosen = [
                (a, rng.randrange(events)) for a in sorted(rng.sample(range(accounts), count))
            ]
            target.edit(chosen, 1)
            await all_due(platform.stores, accounts)
            incremental = await sync_phase("incremental", platform.syncer, limits, accounts, target)
            lines.append(incremental.line())
            expected = {f"{target.url}/{USER}/c{a}/": 1 for a, _ in chosen}
            only = platform.syncer.fetched_by == expected
            lines.append(
                f"  {count} calendars changed ({args.changed_percent} %), one event each; "
                f"fetched {incremental.fetched} objects from "
                f"{len(platform.syncer.fetched_by)} calendars: only the changes "
                f"transferred: {'yes' if only else 'NO'}; requests {incremental.requests} "
                f"(one sync-collection a calendar, one multiget a changed one: "
                f"{accounts + count})"
            )
            began = time.perf_counter()
            seen = await changes_visible(platform, chosen, "Changed 1")
            took = time.perf_counter() - began
            lines.append(
                f"  changed events seen in their drivers' agendas: {seen}/{count} "
                f"({took / count * 1000:.1f} ms per agenda of {events} events)"
            )
            sample = min(accounts, args.agenda_sample)
            first, again = await agenda_reads(platform, sample)
            lines.append(
                f"agenda reads (what the productivity worker reads per car before leave-by), "
                f"{sample} drivers: first {first * 1000:.1f} ms, again (agenda kept, no parsing) "
                f"{again * 1000:.1f} ms; 10,000 cars at these rates: {first * 10_000:.0f} s, "
                f"{again * 10_000:.0f} s; load {load():.1f}"
            )
            lines.append(
                f"incremental sync vs raw HTTP to every calendar: "
                f"{incremental.seconds / raw:.1f} x the raw time"
            )
            lines.append(
                "target, incremental sync of 10,000 accounts: "
                + verdict(incremental.seconds, INCREMENTAL_TARGET_S, accounts / 10_000)
            )
            await platform.stores.close()
        finally:
            target.stop()
    return lines


async def leave_by(cars: int, moves: int) -> list[str]:
    """Leave-by passes for `cars` cars; the lines of the report."""
    began = time.perf_counter()
    network_for("berlin")
    lines = Lines()
    lines.append(f"leave-by: Berlin network built in {time.perf_counter() - began:.2f} s")
    fleet_now = fleet(cars, 1)
    rng = random.Random(7)
    worst = 0.0
    for name, router in (
        ("baseline, straight line", RouterChain([])),
        ("demo network", RouterChain([DemoNetworkRouter(["berlin"])])),
    ):
        current = fleet_now
        times = [await one_pass(router, current)]
        for _ in range(moves):
            current = moved(current, rng)
            times.append(await one_pass(router, current))
        shown = ", ".join(f"{t:.2f}" for t in times)
        lines.append(
            f"  {name}: {cars} cars, passes {shown} s (first: new routes; then after every "
            f"car moved ~300 m); load {load():.1f}"
        )
        if name == "demo network":
            worst = max(times[1:] or times)
    lines.append(
        "target, leave-by for 10,000 moving cars (slowest pass after a move): "
        + verdict(worst, LEAVE_BY_TARGET_S, cars / 10_000)
    )
    return lines


async def run(args: argparse.Namespace) -> None:
    began = time.perf_counter()
    print(
        f"target {args.target} (latency {args.latency_ms:g} ms), {args.accounts} accounts x "
        f"{args.events} events, concurrency {args.concurrency}, per host {args.per_host}; "
        f"{args.cars} cars; load at start {load():.1f}",
        flush=True,
    )
    await calendars(args)
    await leave_by(args.cars, args.moves)
    print(f"({time.perf_counter() - began:.0f} s in all; load at the end {load():.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target_arguments(parser, "standin", 10_000, 32)
    parser.add_argument("--changed-percent", type=int, default=1)
    parser.add_argument(
        "--agenda-sample", type=int, default=500, help="drivers whose agenda is read"
    )
    parser.add_argument("--cars", type=int, default=10_000)
    parser.add_argument("--moves", type=int, default=2)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
