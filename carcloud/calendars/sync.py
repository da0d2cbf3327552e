"""The `calendar` worker role: each account synced on its own schedule, with backoff.

Accounts are claimed from the store (a claim moves the account's next sync to a lease
time, so workers in several processes never sync one account at once) and synced
concurrently: `CARCLOUD_CALENDAR_CONCURRENCY` at once, at most
`CARCLOUD_CALENDAR_PER_HOST` against one server. A failing account records its error and is retried
later, doubling the wait up to a cap; it never stops the others. A failure is logged
once when it starts and once when the account recovers, not on every retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from carcloud.calendars import caldav, google, graph
from carcloud.calendars.credentials import CredentialBox
from carcloud.calendars.geocoding import Locator
from carcloud.calendars.ics import feed_changes, fetch_feed
from carcloud.calendars.models import (
    OAUTH_KINDS,
    CalendarAccount,
    ItemChanges,
    SyncReport,
    SyncState,
)
from carcloud.calendars.oauth import Grant, OAuthProvider, TokenCache
from carcloud.calendars.sources import SourceSettings
from carcloud.calendars.store import CalendarStore
from carcloud.errors import ConfigError, SourceError, StorageError, UnreachableError
from carcloud.events.models import NewEvent
from carcloud.timeutil import now_us

log = logging.getLogger(__name__)
SECOND = 1_000_000
# At most this many objects are named in an `agenda.changed` event (the counts are exact).
EVENT_HREFS = 50
# Connections of one HTTP client of the worker (see CalendarSyncWorker.run).
CLIENT_CONNECTIONS = 8
# Calendar APIs built for all their customers at once: no per-host limit of ours.
PROVIDER_HOSTS = ("googleapis.com", "graph.microsoft.com")


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


@dataclass(frozen=True)
class WorkerLimits:
    """How many accounts one `calendar` worker syncs at once, in all and per server.

    `per_host` keeps one CalDAV or feed server from being flooded by the accounts it
    hosts; the provider APIs (`PROVIDER_HOSTS`: Google, Microsoft Graph) serve every
    customer of theirs and limit each user with HTTP 429, which backs off, so they get
    the whole `concurrency`.
    """

    concurrency: int = 32
    per_host: int = 8
    batch: int = 100

    def __post_init__(self) -> None:
        for name in ("concurrency", "per_host", "batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"calendar worker {name} must be at least 1")

    def host_limit(self, host: str) -> int:
        """The syncs at once against `host`."""
        if any(host == known or host.endswith("." + known) for known in PROVIDER_HOSTS):
            return self.concurrency
        return min(self.per_host, self.concurrency)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> WorkerLimits:
        """CARCLOUD_CALENDAR_CONCURRENCY (32) and CARCLOUD_CALENDAR_PER_HOST (8)."""
        values = {}
        for name, variable in (
            ("concurrency", "CARCLOUD_CALENDAR_CONCURRENCY"),
            ("per_host", "CARCLOUD_CALENDAR_PER_HOST"),
        ):
            raw = environ.get(variable, "").strip()
            if not raw:
                continue
            try:
                values[name] = int(raw)
            except ValueError:
                raise ConfigError(f"{variable} must be a whole number, not {raw!r}") from None
            if values[name] < 1:
                raise ConfigError(f"{variable} must be at least 1, not {raw}")
        return cls(**values)


def http_client(
    settings: SourceSettings, connections: int = 8, ssl_context: ssl.SSLContext | None = None
) -> httpx.AsyncClient:
    """The HTTP client of calendar requests (redirects followed, as feeds often move)."""
    return httpx.AsyncClient(
        timeout=settings.timeout_s,
        follow_redirects=True,
        verify=ssl_context if ssl_context is not None else True,
        headers={"User-Agent": "carcloud-calendar/0.1"},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


def agenda_events(
    account: CalendarAccount, changes: ItemChanges, report: SyncReport
) -> list[NewEvent]:
    """The `agenda.changed` event of a sync that changed something (none otherwise)."""
    if not (changes.upserts or changes.deletes or changes.replace_all):
        return []
    changed = [item.href for item in changes.upserts]
    data = {
        "driver_id": account.driver_id,
        "account_id": account.id,
        "account_kind": account.kind,
        "mode": report.mode,
        "replaced": changes.replace_all,
        "changed_count": len(changed),
        "removed_count": len(changes.deletes),
        "changed": changed[:EVENT_HREFS],
        "removed": list(changes.deletes[:EVENT_HREFS]),
    }
    return [NewEvent("agenda.changed", brand=account.brand, data=data)]


class CalendarSyncer:
    """Syncs one account: opens its credentials, asks its source, stores the outcome."""

    def __init__(
        self,
        store: CalendarStore,
        box: CredentialBox,
        settings: SourceSettings,
        policy: SyncPolicy,
        providers: Mapping[str, OAuthProvider] | None = None,
        locator: Locator | None = None,
    ) -> None:
        self.store = store
        self.locator = locator
        self.box = box
        self.settings = settings
        self.policy = policy
        self.providers = providers or {"google": google.provider(), "graph": graph.provider()}
        self.tokens = TokenCache()

    async def fetch(
        self, client: httpx.AsyncClient, account: CalendarAccount
    ) -> tuple[ItemChanges, SyncReport]:
        """What changed at the source since the stored objects; errors name the problem."""
        credentials = self.box.open(account.secret)

        async def stored() -> dict[str, str]:
            return await self.store.item_etags(account.id)

        last = account.state.report
        held = last.fetched + last.unchanged if last is not None else 0
        token = account.state.sync_token
        if account.kind == "ics":
            items = await fetch_feed(client, credentials["url"], self.settings)
            return feed_changes(items, await stored())
        if account.kind in OAUTH_KINDS:
            grant = Grant(account.id, credentials.get("refresh_token", ""))
            api = self.providers[account.kind]
            source = google.sync if account.kind == "google" else graph.sync
            try:
                return await source(
                    client, account.url, grant, api, self.tokens, token, self.settings, held
                )
            finally:
                if grant.rotated:  # kept even when the sync then failed: the old one is void
                    sealed = self.box.seal({**credentials, "refresh_token": grant.refresh_token})
                    await self.store.save_secret(account.id, sealed)
        auth = httpx.BasicAuth(account.username or "", credentials.get("password", ""))
        return await caldav.sync(client, account.url, auth, token, stored, self.settings, held)

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
        return await self.succeeded(account, started, changes, report, client)

    async def succeeded(
        self,
        account: CalendarAccount,
        started: int,
        changes: ItemChanges,
        report: SyncReport,
        client: httpx.AsyncClient | None = None,
    ) -> SyncState:
        """Store a sync's changes with the account's new state (new locations geocoded
        first, so the agenda rarely waits for the geocoder; that never fails the sync)."""
        if self.locator is not None:
            await self.locator.locate_new(account.driver_id, changes.upserts, client)
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
        await self.store.save_sync(
            account.id, changes, new, agenda_events(account, changes, report)
        )
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
    """Claims due accounts and syncs them until stopped: at most `limits.concurrency` at
    once, and at most `limits.per_host` against one server.

    A pipeline, not batches: as soon as one sync ends another account is claimed, so a
    slow or silent server (up to the time out) holds one slot, not a whole batch. An
    account is claimed only when a slot is free, so its lease starts when its sync can.
    """

    def __init__(
        self,
        syncer: CalendarSyncer,
        limits: WorkerLimits | None = None,
        idle_s: float = 1.0,
    ) -> None:
        self.syncer = syncer
        self.limits = limits or WorkerLimits.from_env()
        self.idle_s = idle_s
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._free: list[int] = []

    def _host_slot(self, account: CalendarAccount) -> asyncio.Semaphore:
        host = (urlsplit(account.url).hostname or "").lower()
        if host not in self._hosts:
            self._hosts[host] = asyncio.Semaphore(self.limits.host_limit(host))
        return self._hosts[host]

    async def _one(self, clients: list[httpx.AsyncClient], account: CalendarAccount) -> None:
        slot = self._free.pop()
        try:
            async with self._host_slot(account):
                try:
                    await self.syncer.sync(clients[slot // CLIENT_CONNECTIONS], account)
                except StorageError as exc:  # the lease runs out: it is tried again
                    log.warning("calendar account %s: state not saved: %s", account.id, exc)
        finally:
            self._free.append(slot)

    async def run(self, stop: asyncio.Event) -> None:
        """Sync until `stop` is set; syncs under way then finish (each within its time out)."""
        running: set[asyncio.Task[None]] = set()
        ended = asyncio.Event()
        concurrency = self.limits.concurrency
        # Slot n of the running syncs uses client n // CLIENT_CONNECTIONS: httpcore looks at
        # every connection of a pool for every request it places, so one pool of 32
        # connections cost 3x the CPU per sync of pools of 8 (docs/benchmarks.md).
        self._free = list(range(concurrency))

        def done(task: asyncio.Task[None]) -> None:
            running.discard(task)
            ended.set()

        async with contextlib.AsyncExitStack() as stack:
            tls = httpx.create_ssl_context()  # the CA roots loaded once, not per client
            clients: list[httpx.AsyncClient] = []
            for _ in range(0, concurrency, CLIENT_CONNECTIONS):
                client = http_client(self.syncer.settings, CLIENT_CONNECTIONS, tls)
                clients.append(await stack.enter_async_context(client))
            group = await stack.enter_async_context(asyncio.TaskGroup())
            while not stop.is_set():
                wanted = min(concurrency - len(running), self.limits.batch)
                claimed = await self.claim(wanted) if wanted else []
                for account in claimed:
                    task = group.create_task(self._one(clients, account))
                    running.add(task)
                    task.add_done_callback(done)
                full = len(running) >= concurrency
                if claimed and len(claimed) == wanted and not full:
                    continue  # slots left and perhaps more due
                ended.clear()  # done-callbacks run only at an await: no end is missed
                # Full: until a sync ends. Nothing (more) due: a while, as before.
                await _first(stop, ended if full else None, None if full else self.idle_s)

    async def claim(self, limit: int) -> list[CalendarAccount]:
        """Due accounts, leased to this worker (none while the database is down)."""
        now = now_us()
        lease = now + int(self.syncer.policy.lease_s * SECOND)
        try:
            return await self.syncer.store.claim_due(now, lease, limit)
        except StorageError as exc:
            log.warning("calendar sync cannot claim accounts: %s", exc)
            return []


async def _first(stop: asyncio.Event, other: asyncio.Event | None, wait_s: float | None) -> None:
    """Wait until `stop` or `other` is set, or `wait_s` passes."""
    waiters = [asyncio.ensure_future(event.wait()) for event in (stop, other) if event]
    try:
        await asyncio.wait(waiters, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
