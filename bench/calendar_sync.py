"""Calendar sync at scale: the `calendar` worker syncing N accounts, first and then
incrementally with 1 % of the events changed, against the same incremental sync one
account at a time (the baseline) in the same run.

    python bench/calendar_sync.py [--target radicale|standin] [--accounts 1000]
        [--events 20] [--concurrency 32] [--per-host 8] [--baseline-accounts N]
        [--latency-ms MS] [--profile FILE]

ACCOUNTS drivers get one CalDAV calendar each, of EVENTS meetings, on the target: a
real Radicale (its calendars written straight into its storage folder, which is what
Radicale reads) or `bench/caldav_standin.py`, an in-memory server that answers the
same requests at a fraction of Radicale's cost, to tell carcloud's cost from the
server's, and, with `--latency-ms`, to add the round trip of a server on the internet.
Either runs in a child process on the same machine. Accounts are stored in a SQLite
file; the real `CalendarSyncWorker` claims and syncs them (CONCURRENCY at once,
PER-HOST against one server; Radicale serves 8 connections at once by default, more
against it only queue). Timed: the first sync (everything fetched), then, after 1 % of
all events were edited on the server and every account made due, the incremental sync
(sync-collection with the tokens of the first); then after another 1 % edit the
baseline, the same incremental sync with concurrency 1 over the first
BASELINE-ACCOUNTS accounts. CPU seconds of this process (carcloud) and of the server
are reported per phase, with the load average of the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from carcloud.calendars.credentials import CredentialBox, derive_key
from carcloud.calendars.models import CalendarAccount, SyncState
from carcloud.calendars.service import AccountDraft, CalendarService
from carcloud.calendars.sources import SourceSettings
from carcloud.calendars.sync import CalendarSyncer, CalendarSyncWorker, SyncPolicy, WorkerLimits
from carcloud.drivers.models import Driver
from carcloud.drivers.service import DriverService
from carcloud.runtime.launcher import free_port
from carcloud.storage.sqlite import sqlite_stores
from carcloud.storage.sqlite.calendars import SqliteCalendarStore
from carcloud.storage.stores import Stores

sys.path.insert(0, str(Path(__file__).resolve().parent))
from caldav_standin import event  # noqa: E402 - the bench folder is no package

USER, PASSWORD = "ada", "pw"


class CountingSyncer(CalendarSyncer):
    """The worker's syncer, counting syncs and requests until `expected` are done."""

    expected = 0
    synced = 0
    failures = 0
    requests = 0
    fetched = 0
    done: asyncio.Event
    # account URL -> objects fetched by its last sync (those that fetched any)
    fetched_by: dict[str, int]

    async def sync(self, client: httpx.AsyncClient, account: CalendarAccount) -> SyncState:
        state = await super().sync(client, account)
        self.synced += 1
        if state.status != "ok":
            self.failures += 1
            print(f"  {account.id} failed: {state.error}", file=sys.stderr)
        elif state.report is not None:
            self.requests += state.report.requests
            self.fetched += state.report.fetched
            if state.report.fetched:
                self.fetched_by[account.url] = state.report.fetched
        if self.synced >= self.expected:
            self.done.set()
        return state


@dataclass
class Phase:
    name: str
    accounts: int
    seconds: float
    requests: int
    fetched: int
    failed: int
    own_cpu: float
    server_cpu: float
    load: float

    def line(self) -> str:
        per = self.seconds / self.accounts * 1000
        return (
            f"{self.name}: {self.accounts} accounts in {self.seconds:.2f} s, {per:.2f} ms/account, "
            f"{self.requests} requests, {self.fetched} objects fetched, {self.failed} failed; "
            f"CPU carcloud {self.own_cpu:.1f} s "
            f"({self.own_cpu / self.accounts * 1000:.2f} ms/account), server "
            f"{self.server_cpu:.1f} s; load {self.load:.1f}; 10,000 accounts at this rate: "
            f"{per * 10:.0f} s"
        )


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Target:
    """The CalDAV server in a child process: Radicale or the stand-in."""

    def __init__(
        self, kind: str, folder: Path, accounts: int, events: int, latency_ms: float
    ) -> None:
        self.kind, self.port = kind, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        root = Path(__file__).resolve().parent
        if kind == "standin":
            command = [
                sys.executable, str(root / "caldav_standin.py"), "--port", str(self.port),
                "--accounts", str(accounts), "--events", str(events),
                "--latency-ms", str(latency_ms),
            ]  # fmt: skip
        else:
            users = folder / "users"
            users.write_text(f"{USER}:{PASSWORD}\n")
            storage = folder / "collections"
            for a in range(accounts):  # what MKCALENDAR and PUT would leave, written at once
                calendar = storage / "collection-root" / USER / f"c{a}"
                calendar.mkdir(parents=True)
                props = {"tag": "VCALENDAR", "D:displayname": f"c{a}"}
                (calendar / ".Radicale.props").write_text(json.dumps(props))
                for e in range(events):
                    text = event(f"e{a}-{e}", f"Meeting {e}", 1 + e % 28)
                    (calendar / f"e{e}.ics").write_text(text, newline="")
            config = folder / "config"
            config.write_text(
                f"[server]\nhosts = 127.0.0.1:{self.port}\n"
                f"[auth]\ntype = htpasswd\nhtpasswd_filename = {users}\n"
                "htpasswd_encryption = plain\ndelay = 0\n"
                f"[storage]\nfilesystem_folder = {storage}\n"
                "[rights]\ntype = owner_only\n[logging]\nlevel = warning\n"
            )
            command = [sys.executable, "-m", "radicale", "--config", str(config)]
        self.log = (folder / f"{kind}.log").open("ab")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{kind} exited; see {folder / (kind + '.log')}")
            try:
                httpx.get(self.url, timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise SystemExit(f"{kind} did not start")

    def cpu(self) -> float:
        return process_cpu(self.process.pid)

    def edit(self, chosen: Sequence[tuple[int, int]], round_: int) -> int:
        """Edit event e of calendar a for each (a, e) chosen; how many."""
        with httpx.Client(base_url=self.url, auth=(USER, PASSWORD), timeout=30) as client:
            for a, e in chosen:
                answer = client.put(
                    f"/{USER}/c{a}/e{e}.ics",
                    content=event(f"e{a}-{e}", f"Changed {round_}", 1 + e % 28),
                    headers={"Content-Type": "text/calendar"},
                )
                assert answer.status_code in (201, 204), answer.text
        return len(chosen)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()


def some_events(accounts: int, events: int, round_: int) -> list[tuple[int, int]]:
    """1 % of all events (at least one), as (calendar, event)."""
    chosen = random.Random(round_).sample(
        range(accounts * events), max(1, accounts * events // 100)
    )
    return [divmod(n, events) for n in chosen]


@dataclass
class Platform:
    """The bench's SQLite platform: driver a has calendar c{a} of the target."""

    stores: Stores
    service: CalendarService
    syncer: CountingSyncer
    drivers: list[Driver]


async def open_platform(folder: Path, target: Target, accounts: int) -> Platform:
    """A SQLite platform with a driver of one CalDAV account per calendar of `target`."""
    stores = sqlite_stores(folder / "carcloud.db")
    await stores.open()
    await stores.registry.create_brand("volta", "Volta")
    drivers = DriverService(stores.drivers)
    box = CredentialBox(derive_key("bench"))
    settings = SourceSettings(allow_private=True, timeout_s=60.0)
    policy = SyncPolicy(interval_s=3600, lease_s=600)
    service = CalendarService(stores.calendars, drivers, box, settings, policy)
    syncer = CountingSyncer(stores.calendars, box, settings, policy)
    created = []
    for a in range(accounts):
        driver = await drivers.create(Driver("", "volta", f"Driver {a}", "Europe/Berlin"))
        draft = AccountDraft("caldav", f"{target.url}/{USER}/c{a}/", None, USER, PASSWORD)
        await stores.calendars.create_account(service.prepare(driver, draft))
        created.append(driver)
    return Platform(stores, service, syncer, created)


async def all_due(stores: Stores, limit: int, failed_only: bool = False) -> None:
    """Make the first `limit` accounts (those whose last sync failed) due now."""
    assert isinstance(stores.calendars, SqliteCalendarStore)
    which = "WHERE status = 'error' " if failed_only else ""
    await stores.calendars.engine.write(
        lambda conn: conn.execute(
            "UPDATE calendar_accounts SET next_sync_at = 0 WHERE id IN "
            f"(SELECT id FROM calendar_accounts {which}ORDER BY created_at, id LIMIT ?)",
            (limit,),
        )
    )


async def sync_phase(
    name: str, syncer: CountingSyncer, limits: WorkerLimits, accounts: int, target: Target
) -> Phase:
    """Run the worker until `accounts` syncs are done; their time and cost."""
    syncer.expected, syncer.synced, syncer.failures, syncer.requests = accounts, 0, 0, 0
    syncer.fetched, syncer.fetched_by = 0, {}
    syncer.done = asyncio.Event()
    stop = asyncio.Event()
    cpu, server = own_cpu(), target.cpu()
    started = time.perf_counter()
    task = asyncio.create_task(CalendarSyncWorker(syncer, limits, idle_s=0.05).run(stop))
    await syncer.done.wait()
    seconds = time.perf_counter() - started
    stop.set()
    await task
    return Phase(
        name, accounts, seconds, syncer.requests, syncer.fetched, syncer.failures,
        own_cpu() - cpu,
        target.cpu() - server, os.getloadavg()[0],
    )  # fmt: skip


async def run(args: argparse.Namespace) -> None:
    accounts, events = args.accounts, args.events
    per_host = args.per_host
    baseline_accounts = min(args.baseline_accounts or accounts, accounts)
    load = os.getloadavg()[0]
    print(f"target {args.target} (latency {args.latency_ms:g} ms), {accounts} accounts x "
          f"{events} events, concurrency "
          f"{args.concurrency}, per host {per_host}; load at start {load:.1f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        made = time.perf_counter()
        target = Target(args.target, folder, accounts, events, args.latency_ms)
        try:
            platform = await open_platform(folder, target, accounts)
            stores, syncer = platform.stores, platform.syncer
            print(f"set-up (server, drivers, accounts): {time.perf_counter() - made:.1f} s")
            limits = WorkerLimits(args.concurrency, per_host)
            phases = [await sync_phase("first sync", syncer, limits, accounts, target)]
            changed = target.edit(some_events(accounts, events, 1), 1)
            await all_due(stores, accounts)
            profile = cProfile.Profile() if args.profile else None
            if profile is not None:
                profile.enable()
            phases.append(await sync_phase("incremental", syncer, limits, accounts, target))
            if profile is not None:
                profile.disable()
                profile.dump_stats(args.profile)
            target.edit(some_events(accounts, events, 2), 2)
            await all_due(stores, baseline_accounts)
            phases.append(
                await sync_phase(
                    "baseline: incremental, one at a time", syncer, WorkerLimits(1, 1),
                    baseline_accounts, target,
                )
            )  # fmt: skip
            await stores.close()
        finally:
            target.stop()
    print(f"{changed} events changed before each incremental sync (1 %)")
    for phase in phases:
        print(phase.line())
    speedup = (phases[2].seconds / phases[2].accounts) / (phases[1].seconds / phases[1].accounts)
    print(f"incremental vs baseline per account: {speedup:.1f} x faster")


def target_arguments(
    parser: argparse.ArgumentParser, target: str, accounts: int, per_host: int
) -> None:
    """The options of the target and the worker (with these defaults)."""
    parser.add_argument("--target", choices=("radicale", "standin"), default=target)
    parser.add_argument("--accounts", type=int, default=accounts)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--per-host", type=int, default=per_host, help="Radicale serves 8 connections at once"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="stand-in only: delay of each answer"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target_arguments(parser, "radicale", 1000, 8)
    parser.add_argument("--baseline-accounts", type=int, default=0, help="default: all")
    parser.add_argument("--profile", help="write a cProfile of the incremental sync here")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
