"""Coordinates for meeting locations given as free text: the demo cities' places built
in, then a Nominatim-compatible geocoder, with every answer kept in the store.

A location with neither the event's own coordinates (GEO, Apple's structured location,
Graph's coordinates) nor a place of the driver by that name is looked up here:

1. the places of the simulator's cities (`carcloud.sim`: offices, shops, chargers of
   Berlin, Munich and Stuttgart), matched by name ("Office Mitte", or "Office Mitte,
   Munich" where a name is in several cities), with no network at all, for the demo;
2. the answers kept in the store (`CalendarStore.geocodes`): a location text is sent
   to the geocoder once, whatever its answer, a place or none;
3. the geocoder at `CARCLOUD_GEOCODER_URL` (a Nominatim server: its
   `/search?format=jsonv2`), when one is configured. The outbound-address policy
   applies (`carcloud.outbound`: public addresses only unless
   `CARCLOUD_GEOCODER_ALLOW_PRIVATE=1`), and requests are spaced by
   `CARCLOUD_GEOCODER_INTERVAL_S` (1 s by default, the public Nominatim's usage policy;
   the spacing is per process).

The calendar worker looks up the new locations of each sync (at most
`CARCLOUD_GEOCODER_PER_SYNC` of them, 10 by default), so the agenda rarely waits for
the network; the agenda asks for what is still missing (a few at a time). A location
that gets no coordinates has a reason instead, shown with the agenda entry; a geocoder
that fails never fails a sync or an agenda.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
import icalendar

from carcloud.calendars.agenda import AgendaEntry
from carcloud.calendars.ics import parse_calendar
from carcloud.calendars.models import CalendarItem, Geocode
from carcloud.calendars.places import Coordinates, event_coordinates, place_coordinates
from carcloud.calendars.sources import SourceSettings, request
from carcloud.calendars.store import CalendarStore
from carcloud.drivers.service import DriverService
from carcloud.errors import ConfigError, SourceError, UnreachableError
from carcloud.outbound import RefusedTarget, TargetPolicy
from carcloud.timeutil import now_us

log = logging.getLogger(__name__)
USER_AGENT = "carcloud-geocoder/0.1 (+https://github.com/carcloud)"
# Location texts longer than this are not sent (a pasted agenda is no address).
MAX_QUERY = 200
# After a failure, the geocoder is not asked for this long (its texts get the failure).
RETRY_AFTER_S = 60.0


def query_of(text: str) -> str:
    """The cache key of a location text: white space folded, case ignored."""
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class GeocoderSettings:
    """Where the geocoder is, and how gently it is asked."""

    url: str | None = None
    allow_private: bool = False
    interval_s: float = 1.0
    timeout_s: float = 10.0
    per_sync: int = 10
    per_agenda: int = 3

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> GeocoderSettings:
        """CARCLOUD_GEOCODER_URL (none: the built-in places only),
        CARCLOUD_GEOCODER_ALLOW_PRIVATE, CARCLOUD_GEOCODER_INTERVAL_S (1.0),
        CARCLOUD_GEOCODER_PER_SYNC (10)."""
        raw = environ.get("CARCLOUD_GEOCODER_URL", "").strip()
        url = search_url(raw) if raw else None
        allow = environ.get("CARCLOUD_GEOCODER_ALLOW_PRIVATE", "").strip().lower()
        numbers: dict[str, float] = {}
        for name, variable in (
            ("interval_s", "CARCLOUD_GEOCODER_INTERVAL_S"),
            ("per_sync", "CARCLOUD_GEOCODER_PER_SYNC"),
        ):
            text = environ.get(variable, "").strip()
            if not text:
                continue
            try:
                numbers[name] = float(text)
            except ValueError:
                raise ConfigError(f"{variable} must be a number, not {text!r}") from None
            if numbers[name] < 0:
                raise ConfigError(f"{variable} must not be negative, not {text}")
        return cls(
            url=url,
            allow_private=allow in ("1", "true", "yes", "on"),
            interval_s=numbers.get("interval_s", 1.0),
            per_sync=int(numbers.get("per_sync", 10)),
        )


def search_url(raw: str) -> str:
    """The `/search` URL of a Nominatim base URL (or of its `/search` URL itself)."""
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"CARCLOUD_GEOCODER_URL {raw!r} is not an http(s) URL of a Nominatim server"
        )
    path = parts.path.rstrip("/")
    if not path.endswith("/search"):
        path += "/search"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


@functools.lru_cache(maxsize=1)
def builtin_places() -> Mapping[str, Coordinates]:
    """The simulator's cities' places by name (and by "name, city"), with no network."""
    from carcloud.sim.citygen import network_for  # the road networks are built on first use
    from carcloud.sim.roads import CITIES

    found: dict[str, Coordinates] = {}
    seen: dict[str, int] = {}
    for slug, city in CITIES.items():
        network = network_for(slug)
        for place in network.places:
            where = Coordinates(
                network.node_lat[place.node], network.node_lon[place.node], f"demo:{slug}"
            )
            found[query_of(f"{place.name}, {city.name}")] = where
            key = query_of(place.name)
            seen[key] = seen.get(key, 0) + 1
            found.setdefault(key, where)
    # A bare name that is in several cities is no place: it needs its city.
    return {key: where for key, where in found.items() if seen.get(key, 1) == 1}


def missing_reason(text: str, configured: bool) -> str:
    """Why a location not yet looked up has no coordinates."""
    if not configured:
        return (
            f"no coordinates for {text!r}: not a place of the driver or of the demo cities, "
            "and no geocoder is configured (CARCLOUD_GEOCODER_URL)"
        )
    return f"{text!r} is not geocoded yet (the geocoder is asked a few texts at a time)"


class Locator:
    """Coordinates of location texts: built-in places, the store's answers, the geocoder."""

    def __init__(
        self,
        store: CalendarStore,
        drivers: DriverService | None = None,
        settings: GeocoderSettings | None = None,
        memory: int = 10_000,
    ) -> None:
        self.store = store
        self.drivers = drivers
        self.settings = settings or GeocoderSettings.from_env()
        self._memory: OrderedDict[str, Geocode] = OrderedDict()
        self._capacity = memory
        self._spacing = asyncio.Lock()
        self._last = 0.0
        # After a failure the geocoder rests a while: a server that is down must not
        # make every agenda read wait for its time out.
        self._down_until = 0.0
        self._down_error = ""
        self.asked = 0  # requests sent to the geocoder, for tests and benches

    def builtin(self, text: str) -> Coordinates | None:
        """A demo city's place of this name."""
        return builtin_places().get(query_of(text))

    async def known(self, texts: Iterable[str]) -> dict[str, Geocode]:
        """The answers kept for these texts, by query (memory first, then the store)."""
        queries = {query_of(text) for text in texts}
        found = {q: self._memory[q] for q in queries if q in self._memory}
        wanted = sorted(queries - found.keys())
        if wanted:
            stored = await self.store.geocodes(wanted)
            for answer in stored.values():
                self._remember(answer)
            found.update(stored)
        return found

    def _remember(self, answer: Geocode) -> None:
        self._memory[answer.query] = answer
        self._memory.move_to_end(answer.query)
        while len(self._memory) > self._capacity:
            self._memory.popitem(last=False)

    async def resolve(
        self, texts: Iterable[str], budget: int, client: httpx.AsyncClient | None = None
    ) -> dict[str, Coordinates | str]:
        """For each text (by query): its coordinates, or the reason it has none.

        At most `budget` texts are sent to the geocoder; the others not known yet get
        a reason. Never raises for the geocoder: its failures become reasons.
        """
        by_query: dict[str, str] = {}
        for text in texts:
            if text.strip():
                by_query.setdefault(query_of(text), " ".join(text.split()))
        result: dict[str, Coordinates | str] = {}
        for query, text in by_query.items():
            where = self.builtin(text)
            if where is not None:
                result[query] = where
        open_ = [text for query, text in by_query.items() if query not in result]
        if not open_:
            return result
        known = await self.known(open_)
        ask = []
        for text in open_:
            answer = known.get(query_of(text))
            if answer is not None:
                result[query_of(text)] = answer.coordinates() or answer.reason or "no place"
            elif len(text) > MAX_QUERY:
                result[query_of(text)] = f"the location is longer than {MAX_QUERY} characters"
            elif self.settings.url is None:
                result[query_of(text)] = missing_reason(text, False)
            else:
                ask.append(text)
        if not ask:
            return result
        answers: list[Geocode] = []
        owned = client is None
        http = client or httpx.AsyncClient(follow_redirects=True)
        try:
            for index, text in enumerate(ask):
                if index >= budget:
                    result[query_of(text)] = missing_reason(text, True)
                    continue
                try:
                    if time.monotonic() < self._down_until:
                        raise UnreachableError(self._down_error)
                    answer = await self.ask(http, text)
                except (SourceError, UnreachableError) as exc:
                    if time.monotonic() >= self._down_until:
                        self._down_until = time.monotonic() + RETRY_AFTER_S
                        self._down_error = str(exc)
                    result[query_of(text)] = (
                        f"no coordinates for {text!r}: the geocoder failed ({exc}); "
                        "it is asked again later"
                    )
                    continue
                answers.append(answer)
                self._remember(answer)
                result[answer.query] = answer.coordinates() or answer.reason or "no place"
        finally:
            if owned:
                await http.aclose()
        if answers:
            await self.store.save_geocodes(answers)
        return result

    async def locate_new(
        self,
        driver_id: str,
        items: Sequence[CalendarItem],
        client: httpx.AsyncClient | None = None,
    ) -> dict[str, Coordinates | str]:
        """Look up the locations of a sync's new objects that are no place of the driver
        (with a geocoder configured; the built-in places need no look-up); never raises."""
        if self.settings.url is None or not items:
            return {}
        try:
            texts = unplaced_locations(items)
            if texts and self.drivers is not None:
                driver = await self.drivers.get(driver_id, None)
                texts = [text for text in texts if place_coordinates(text, driver) is None]
            if not texts:
                return {}
            return await self.resolve(texts, self.settings.per_sync, client)
        except Exception:  # the geocoder or its store must never fail the sync
            log.exception("geocoding the new locations of driver %s failed", driver_id)
            return {}

    async def place(self, entries: list[AgendaEntry]) -> list[AgendaEntry]:
        """The entries, those with a location but no coordinates given coordinates from
        here or the reason they have none."""
        texts = [e.location for e in entries if e.location and e.coordinates is None]
        if not texts:
            return entries
        try:
            found = await self.resolve(texts, self.settings.per_agenda)
        except Exception:  # the agenda is shown without them
            log.exception("geocoding agenda locations failed")
            found = {}
        placed = []
        for entry in entries:
            if entry.location and entry.coordinates is None:
                where = found.get(query_of(entry.location), "the geocoder could not be asked")
                if isinstance(where, Coordinates):
                    entry = dataclasses.replace(entry, coordinates=where)
                else:
                    entry = dataclasses.replace(entry, coordinates_reason=where)
            placed.append(entry)
        return placed

    async def ask(self, client: httpx.AsyncClient, text: str) -> Geocode:
        """The geocoder's answer for `text` (a place, or none); errors name the problem."""
        url = self.settings.url
        assert url is not None
        try:
            await TargetPolicy(self.settings.allow_private).check(url)
        except RefusedTarget:
            raise SourceError(
                f"{urlsplit(url).hostname} is not a public address; the operator may allow "
                "a private geocoder with CARCLOUD_GEOCODER_ALLOW_PRIVATE=1"
            ) from None
        except OSError as exc:
            raise UnreachableError(f"{urlsplit(url).hostname} does not resolve: {exc}") from None
        async with self._spacing:
            wait = self._last + self.settings.interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self.asked += 1
            try:
                answer = await request(
                    client, "GET", url, "the geocoder search",
                    SourceSettings(True, self.settings.timeout_s, 2_000_000),
                    params={"q": text, "format": "jsonv2", "limit": "1"},
                    headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                )  # fmt: skip
            finally:
                self._last = time.monotonic()
        return parse_search(text, answer.body)


def parse_search(text: str, body: bytes) -> Geocode:
    """A Nominatim `/search?format=jsonv2` answer as the Geocode of `text`."""
    try:
        found = json.loads(body)
    except ValueError:
        raise SourceError("the geocoder's answer is not JSON") from None
    if not isinstance(found, list):
        raise SourceError("the geocoder's answer is not a list of places")
    now = now_us()
    for place in found:
        try:
            lat, lon = float(place["lat"]), float(place["lon"])
        except (TypeError, KeyError, ValueError):
            continue
        if -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0:
            label = str(place.get("display_name") or "")[:300] or None
            return Geocode(query_of(text), lat, lon, label, None, now)
    return Geocode(query_of(text), None, None, None, f"the geocoder knows no place {text!r}", now)


def unplaced_locations(items: Sequence[CalendarItem]) -> list[str]:
    """The location texts of events in `items` that carry no coordinates of their own."""
    texts: dict[str, None] = {}
    for item in items:
        if "LOCATION" not in item.ics:
            continue
        try:
            calendar = parse_calendar(item.ics, item.href)
        except SourceError:
            continue
        for event in calendar.walk("VEVENT"):
            if not isinstance(event, icalendar.Event):
                continue
            location = str(event.get("LOCATION") or "").strip()
            if location and event_coordinates(event) is None:
                texts[location] = None
    return list(texts)
