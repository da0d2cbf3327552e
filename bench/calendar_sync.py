"""Calendar sync cost against a real Radicale: first sync, incremental sync with 1 % of
the events changed, and the baseline of the same sync without sync tokens.

    python bench/calendar_sync.py [--accounts 100] [--events 20] [--concurrency 8]

ACCOUNTS CalDAV calendars of EVENTS meetings each are made on a Radicale in a temporary
folder (htpasswd auth); each becomes a calendar account over SQLite and is synced
once ("first": everything fetched). Then 1 % of all events are edited on the server
and every account is synced again, CONCURRENCY at a time, as the calendar role does:
"incremental" with the RFC 6578 sync tokens of the first sync, and, after another 1 %
edit, the baseline "no token", where each account lists its members and ETags and
fetches only what differs. Radicale runs in one process on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import random
import sys
import tempfile
import time
from pathlib import Path

from carcloud.calendars.credentials import CredentialBox, derive_key
from carcloud.calendars.service import AccountDraft, CalendarService
from carcloud.calendars.sources import SourceSettings
from carcloud.calendars.sync import http_client
from carcloud.drivers.models import Driver
from carcloud.drivers.service import DriverService
from carcloud.storage.sqlite import sqlite_stores


def _radicale_helper() -> type:
    """The tests' Radicale launcher (tests/ is no package: loaded from its file)."""
    path = Path(__file__).resolve().parent.parent / "tests" / "calendars" / "radicale.py"
    spec = importlib.util.spec_from_file_location("radicale_helper", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["radicale_helper"] = module
    spec.loader.exec_module(module)
    found: type = module.Radicale
    return found


Radicale = _radicale_helper()


def event(uid: str, summary: str, day: int) -> str:
    return (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//bench//EN\nBEGIN:VEVENT\n"
        f"UID:{uid}\nDTSTAMP:20261101T000000Z\nDTSTART:202612{day:02d}T090000Z\n"
        f"DURATION:PT1H\nSUMMARY:{summary}\nEND:VEVENT\nEND:VCALENDAR\n"
    )


async def sync_all(service: CalendarService, ids: list[str], concurrency: int) -> tuple[float, int]:
    """Seconds to sync every account, and the requests they made."""
    limit = asyncio.Semaphore(concurrency)
    requests = 0
    async with http_client(service.settings) as client:

        async def one(account_id: str) -> None:
            nonlocal requests
            async with limit:
                account = await service.store.get_account(account_id, None)
                state = await service.syncer.sync(client, account)
                assert state.status == "ok", state.error
                assert state.report is not None
                requests += state.report.requests

        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for account_id in ids:
                group.create_task(one(account_id))
        return time.perf_counter() - started, requests


async def run(accounts: int, events: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        radicale = Radicale(Path(folder) / "radicale", {"ada": "pw"})
        radicale.start()
        try:
            stores = sqlite_stores(Path(folder) / "carcloud.db")
            await stores.open()
            await stores.registry.create_brand("volta", "Volta")
            drivers = DriverService(stores.drivers)
            service = CalendarService(
                stores.calendars, drivers, CredentialBox(derive_key("bench")),
                SourceSettings(allow_private=True),
            )  # fmt: skip
            driver = await drivers.create(Driver("", "volta", "Ada", "Europe/Berlin"))
            urls = []
            with radicale.client("ada") as client:
                for a in range(accounts):
                    urls.append(radicale.make_calendar("ada", f"c{a}"))
                    for e in range(events):
                        client.put(
                            f"/ada/c{a}/e{e}.ics",
                            content=event(f"e{a}-{e}", f"Meeting {e}", 1 + e % 28),
                            headers={"Content-Type": "text/calendar"},
                        )
            started = time.perf_counter()
            ids = []
            for url in urls:
                draft = AccountDraft("caldav", url, None, "ada", "pw")
                ids.append((await service.add_account(driver.id, "volta", draft)).id)
            first = time.perf_counter() - started

            def edit(round_: int) -> int:
                chosen = random.Random(round_).sample(
                    [(a, e) for a in range(accounts) for e in range(events)],
                    max(1, accounts * events // 100),
                )
                with radicale.client("ada") as client:
                    for a, e in chosen:
                        client.put(
                            f"/ada/c{a}/e{e}.ics",
                            content=event(f"e{a}-{e}", f"Changed {round_}", 1 + e % 28),
                            headers={"Content-Type": "text/calendar"},
                        )
                return len(chosen)

            changed = edit(1)
            incremental, inc_requests = await sync_all(service, ids, concurrency)
            edit(2)
            for account_id in ids:  # the baseline: the same sync without sync tokens
                account = await service.store.get_account(account_id, None)
                await service.store.save_state(
                    account_id, dataclasses.replace(account.state, sync_token=None)
                )
            baseline, base_requests = await sync_all(service, ids, concurrency)
            await stores.close()
        finally:
            radicale.stop()
    total = accounts * events
    print(f"{accounts} accounts x {events} events ({total}), {changed} changed, "
          f"concurrency {concurrency}")  # fmt: skip
    print(f"first sync (sequential, via add_account): {first:.2f} s, "
          f"{first / accounts * 1000:.1f} ms/account")  # fmt: skip
    for name, seconds, requests in (
        ("incremental (sync-token)", incremental, inc_requests),
        ("baseline (no token, ETag listing)", baseline, base_requests),
    ):
        print(f"{name}: {seconds:.2f} s, {seconds / accounts * 1000:.1f} ms/account, "
              f"{requests} requests; 10,000 accounts at this rate: "
              f"{seconds / accounts * 10_000:.0f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(run(args.accounts, args.events, args.concurrency))


if __name__ == "__main__":
    main()
