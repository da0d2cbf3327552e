"""The `calendar` worker role: each account synced on its own schedule, with backoff.

Accounts are claimed from the store (a claim moves the account's next sync to a lease
time, so workers in several processes never sync one account at once) and synced
concurrently, a few at a time. A failing account records its error and is retried
later, doubling the wait up to a cap; it never stops the others. A failure is logged
once when it starts and once when the account recovers, not on every retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from dataclasses import dataclass

import httpx

from carcloud.calendars import caldav
from carcloud.calendars.credentials import CredentialBox
from carcloud.calendars.ics import feed_changes, fetch_feed
from carcloud.calendars.models import CalendarAccount, ItemChanges, SyncReport, SyncState
from carcloud.calendars.sources import SourceSettings
from carcloud.calendars.store import CalendarStore
from carcloud.errors import ConfigError, SourceError, StorageError, UnreachableError
from carcloud.timeutil import now_us

log = logging.getLogger(__name__)
SECOND = 1_000_000


@dataclass(frozen=True)
class SyncPolicy:
    """How often accounts sync, and how failing ones back off."""

    interval_s: float = 300.0
    first_retry_s: float = 60.0
    max_backoff_s: float = 3600.0
    lease_s: float = 300.0

    def backoff_s(self, failures: int) -> float:
        """The wait after the n-th failure in a row, with ±20 % jitter."""
        base = min(self.first_retry_s * 2.0 ** max(failures - 1, 0), self.max_backoff_s)
        return base * random.uniform(0.8, 1.2)


def http_client(settings: SourceSettings) -> httpx.AsyncClient:
    """The HTTP client of calendar requests (redirects followed, as feeds often move)."""
    return httpx.AsyncClient(
        timeout=settings.timeout_s,
        follow_redirects=True,
        headers={"User-Agent": "carcloud-calendar/0.1"},
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
    )


class CalendarSyncer:
    """Syncs one account: opens its credentials, asks its source, stores the outcome."""

    def __init__(
        self,
        store: CalendarStore,
        box: CredentialBox,
        settings: SourceSettings,
        policy: SyncPolicy,
    ) -> None:
        self.store = store
        self.box = box
        self.settings = settings
        self.policy = policy

    async def fetch(
        self, client: httpx.AsyncClient, account: CalendarAccount
    ) -> tuple[ItemChanges, SyncReport]:
        """What changed at the source since the stored objects; errors name the problem."""
        credentials = self.box.open(account.secret)
        stored = await self.store.item_etags(account.id)
        if account.kind == "ics":
            return feed_changes(await fetch_feed(client, credentials["url"], self.settings), stored)
        auth = httpx.BasicAuth(account.username or "", credentials.get("password", ""))
        return await caldav.sync(
            client, account.url, auth, account.state.sync_token, stored, self.settings
        )

    async def sync(self, client: httpx.AsyncClient, account: CalendarAccount) -> SyncState:
        """Sync once and store the new state; never raises for a bad account."""
        started = now_us()
        try:
            changes, report = await self.fetch(client, account)
        except (SourceError, UnreachableError, ConfigError) as exc:
            return await self.failed(account, started, str(exc))
        except StorageError:
            raise
        except Exception as exc:  # a library's surprise must not stop the other accounts
            log.exception("calendar account %s: sync failed unexpectedly", account.id)
            return await self.failed(account, started, f"internal error: {type(exc).__name__}")
        return await self.succeeded(account, started, changes, report)

    async def succeeded(
        self, account: CalendarAccount, started: int, changes: ItemChanges, report: SyncReport
    ) -> SyncState:
        """Store a sync's changes with the account's new state."""
        done = now_us()
        new = SyncState(
            status="ok",
            error=None,
            failures=0,
            last_attempt_at=started,
            last_success_at=done,
            next_sync_at=done + int(self.policy.interval_s * SECOND),
            sync_token=changes.sync_token,
            report=report,
        )
        await self.store.save_sync(account.id, changes, new)
        if account.state.failures:
            failures = account.state.failures
            log.info("calendar account %s syncs again after %d failures", account.id, failures)
        return new

    async def failed(self, account: CalendarAccount, started: int, error: str) -> SyncState:
        """Store a failed sync: its error, and when to try again."""
        state = account.state
        failures = state.failures + 1
        new = dataclasses.replace(
            state,
            status="error",
            error=error,
            failures=failures,
            last_attempt_at=started,
            next_sync_at=now_us() + int(self.policy.backoff_s(failures) * SECOND),
        )
        await self.store.save_state(account.id, new)
        if state.failures == 0:
            log.warning("calendar account %s fails to sync: %s", account.id, error)
        return new


class CalendarSyncWorker:
    """Claims due accounts and syncs them, `concurrency` at a time, until stopped."""

    def __init__(
        self,
        syncer: CalendarSyncer,
        batch: int = 50,
        concurrency: int = 8,
        idle_s: float = 1.0,
    ) -> None:
        self.syncer = syncer
        self.batch = batch
        self.concurrency = concurrency
        self.idle_s = idle_s

    async def run(self, stop: asyncio.Event) -> None:
        """Sync until `stop` is set."""
        limit = asyncio.Semaphore(self.concurrency)
        async with http_client(self.syncer.settings) as client:

            async def one(account: CalendarAccount) -> None:
                async with limit:
                    try:
                        await self.syncer.sync(client, account)
                    except StorageError as exc:  # the lease runs out: it is tried again
                        log.warning("calendar account %s: state not saved: %s", account.id, exc)

            while not stop.is_set():
                claimed = await self.claim()
                if claimed:
                    async with asyncio.TaskGroup() as group:
                        for account in claimed:
                            group.create_task(one(account))
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.idle_s)

    async def claim(self) -> list[CalendarAccount]:
        """Due accounts, leased to this worker (none while the database is down)."""
        now = now_us()
        lease = now + int(self.syncer.policy.lease_s * SECOND)
        try:
            return await self.syncer.store.claim_due(now, lease, self.batch)
        except StorageError as exc:
            log.warning("calendar sync cannot claim accounts: %s", exc)
            return []
