"""The productivity worker's agenda reads (issue 13): each car's driver's agenda read
every pass, before and after the per-driver agenda cache, in one run.

    python bench/agenda_cache.py [--drivers 10000] [--events 20] [--changed-percent 1]

N drivers with one calendar account each of EVENTS meetings in the worker's window
(one of them a daily series), stored in a SQLite file as a sync stores them. Read as
the productivity worker reads them (`[now - 1 h, now + 7 days)`, now 5 s later each
pass):

1. Baseline, the read as it was (objects read from the store, parsed through a
   `ParsedItems` of 20,000 objects, expanded, placed): two passes.
2. `CalendarService.agenda` with the cache: the first pass (everything parsed), a
   second over unchanged calendars (objects parsed: must be none), and one after
   CHANGED-PERCENT of the calendars had one event renamed by a sync (parsed: just the
   renamed ones; each new title seen).
3. The memory a driver's kept agenda takes (tracemalloc, a few hundred drivers).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import os
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from carcloud.calendars.agenda import ParsedItems, build_agenda  # noqa: E402
from carcloud.calendars.credentials import CredentialBox, derive_key  # noqa: E402
from carcloud.calendars.models import CalendarItem, ItemChanges, SyncState  # noqa: E402
from carcloud.calendars.service import AccountDraft, CalendarService  # noqa: E402
from carcloud.calendars.sources import SourceSettings  # noqa: E402
from carcloud.drivers.models import Driver, Place  # noqa: E402
from carcloud.drivers.service import DriverService  # noqa: E402
from carcloud.storage import Stores  # noqa: E402
from carcloud.storage.sqlite import sqlite_stores  # noqa: E402

NOW = dt.datetime(2026, 12, 1, 7, 0, tzinfo=dt.UTC)
PASS_S = 5.0
HOUR = dt.timedelta(hours=1)
PLACES = (Place("home", 52.52, 13.405), Place("Office", 52.5076, 13.3904))


def item(driver: int, index: int, title: str) -> CalendarItem:
    """One meeting of a driver: every 9 h from NOW, the first a daily series."""
    start = NOW + dt.timedelta(hours=2 + 9 * index)
    rule = "RRULE:FREQ=DAILY;COUNT=60\r\n" if index == 0 else ""
    geo = f"GEO:52.{500 + index};13.{400 + driver % 97}\r\n"
    where = "LOCATION:Office\r\n" if index % 3 == 0 else f"{geo}LOCATION:Site {index}\r\n"
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:d{driver}-e{index}\r\nDTSTAMP:20261101T000000Z\r\n"
        f"DTSTART:{start.strftime('%Y%m%dT%H%M%SZ')}\r\nDURATION:PT1H\r\n{rule}"
        f"SUMMARY:{title}\r\n{where}DESCRIPTION:Join https://meet.example.org/{driver}-{index}"
        "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    return CalendarItem(f"/d{driver}/e{index}.ics", f"{hash(ics) & 0xFFFFFFFF:08x}", ics)


async def setup(stores: Stores, service: CalendarService, count: int, events: int) -> list[Driver]:
    drivers = DriverService(stores.drivers)
    created = []
    ok = SyncState(status="ok", next_sync_at=2**62)
    for d in range(count):
        driver = await drivers.create(Driver("", "volta", f"Driver {d}", "Europe/Berlin", PLACES))
        draft = AccountDraft("ics", "https://calendar.example.org/feed.ics", "Work")
        account = await stores.calendars.create_account(service.prepare(driver, draft))
        items = tuple(item(d, e, f"Meeting {e}") for e in range(events))
        await stores.calendars.save_sync(account.id, ItemChanges(upserts=items), ok)
        created.append(driver)
    return created


def window(pass_no: int) -> tuple[dt.datetime, dt.datetime]:
    now = NOW + dt.timedelta(seconds=PASS_S * pass_no)
    return now - HOUR, now + dt.timedelta(days=7)


async def old_read(
    service: CalendarService, parsed: ParsedItems, driver: Driver, pass_no: int
) -> int:
    """The agenda read as it was before the cache (CalendarService.agenda of c834c06)."""
    accounts = await service.store.list_accounts(driver.id, None)
    items = await service.store.driver_items(driver.id)
    entries = build_agenda(driver, accounts, items, *window(pass_no), parsed)
    return len(await service.locator.place(entries))


async def timed_pass(service: CalendarService, drivers: list[Driver], pass_no: int) -> float:
    began = time.perf_counter()
    for driver in drivers:
        await service.agenda(driver, *window(pass_no))
    return time.perf_counter() - began


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


async def run(args: argparse.Namespace) -> None:
    count, events = args.drivers, args.events
    print(f"{count} drivers x {events} events, worker window 7 days + 1 h; {load()}", flush=True)
    with tempfile.TemporaryDirectory() as name:
        stores = sqlite_stores(Path(name) / "carcloud.db")
        await stores.open()
        await stores.registry.create_brand("volta", "Volta")
        box = CredentialBox(derive_key("bench"))
        settings = SourceSettings(allow_private=True)

        def new_service() -> CalendarService:
            return CalendarService(stores.calendars, DriverService(stores.drivers), box, settings)

        made = time.perf_counter()
        service = new_service()
        drivers = await setup(stores, service, count, events)
        print(f"set-up: {time.perf_counter() - made:.1f} s", flush=True)
        ms = 1000 / count

        parsed = ParsedItems()  # as the service had it: 20,000 objects
        for pass_no in (1, 2):
            began = time.perf_counter()
            entries = 0
            for driver in drivers:
                entries += await old_read(service, parsed, driver, pass_no)
            took = time.perf_counter() - began
            print(f"baseline (parsed-object cache of {parsed.capacity:,}), pass {pass_no}: "
                  f"{took:.2f} s, {took * ms:.2f} ms/driver, {entries / count:.1f} entries "
                  f"per agenda; 10,000 cars at this rate {took / count * 10_000:.0f} s; "
                  f"{load()}", flush=True)  # fmt: skip

        cache = service.agendas
        for pass_no, what in ((3, "first (all parsed)"), (4, "second, unchanged")):
            before = cache.parsed
            took = await timed_pass(service, drivers, pass_no)
            print(f"cached agendas, pass {what}: {took:.2f} s, {took * ms:.2f} ms/driver, "
                  f"objects parsed {cache.parsed - before}; 10,000 cars at this rate "
                  f"{took / count * 10_000:.0f} s; {load()}", flush=True)  # fmt: skip

        rng = random.Random(1)
        changed = sorted(rng.sample(range(count), max(1, count * args.changed_percent // 100)))
        other = new_service()  # the sync is another process's: no signal reaches `service`
        for d in changed:
            account = (await other.store.list_accounts(drivers[d].id, None))[0]
            edited = item(d, 5, "Renamed")
            await other.store.save_sync(
                account.id, ItemChanges(upserts=(edited,)), SyncState(status="ok")
            )
        before = cache.parsed
        took = await timed_pass(service, drivers, 5)
        seen = 0
        for d in changed:
            agenda = await service.agenda(drivers[d], *window(5))
            seen += any(entry.title == "Renamed" for entry in agenda)
        print(f"cached agendas, pass after {len(changed)} calendars had one event renamed by "
              f"another process's sync: {took:.2f} s, {took * ms:.2f} ms/driver, objects "
              f"parsed {cache.parsed - before}; renamed events seen {seen}/{len(changed)}; "
              f"{load()}", flush=True)  # fmt: skip
        print(
            f"cache: {len(cache)} drivers, {cache.held} entries held (capacity {cache.capacity:,})",
            flush=True,
        )

        sample = min(count, args.memory_sample)
        probe = new_service()
        gc.collect()
        tracemalloc.start()
        first = tracemalloc.take_snapshot()
        for driver in drivers[:sample]:
            await probe.agenda(driver, *window(6))
        gc.collect()
        grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(first, "filename"))
        tracemalloc.stop()
        held = probe.agendas.held - len(probe.agendas)
        print(f"memory of kept agendas: {grown / sample / 1024:.1f} KiB per driver "
              f"({held / sample:.1f} entries each, {grown / max(held, 1):.0f} B per entry; "
              f"{sample} drivers, tracemalloc); 10,000 drivers: "
              f"{grown / sample * 10_000 / 2**20:.0f} MiB", flush=True)  # fmt: skip
        await stores.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drivers", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--changed-percent", type=int, default=1)
    parser.add_argument("--memory-sample", type=int, default=300)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
