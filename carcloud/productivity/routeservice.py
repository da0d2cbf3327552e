"""A routing service over HTTP: OSRM (`/route/v1/driving/…`) or Valhalla (`/route`).

Configured with CARCLOUD_ROUTING_URL (and CARCLOUD_ROUTING_KIND osrm | valhalla, osrm
by default). A service that is down or answers garbage raises UnreachableError, and the
router chain moves on to the next router; "no route" answers None.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from carcloud.errors import ConfigError, UnreachableError
from carcloud.productivity.routing import Point, Travel

RoutingKind = Literal["osrm", "valhalla"]
ROUTING_KINDS: tuple[RoutingKind, ...] = ("osrm", "valhalla")


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    """Where the routing service is, if there is one."""

    url: str | None = None
    kind: RoutingKind = "osrm"
    timeout_s: float = 5.0
    detour_factor: float = 1.35

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> RoutingSettings:
        """CARCLOUD_ROUTING_URL, CARCLOUD_ROUTING_KIND, CARCLOUD_ROUTING_DETOUR_FACTOR."""
        url = environ.get("CARCLOUD_ROUTING_URL", "").strip() or None
        kind = environ.get("CARCLOUD_ROUTING_KIND", "osrm").strip().lower()
        if kind not in ROUTING_KINDS:
            raise ConfigError(f"CARCLOUD_ROUTING_KIND must be osrm or valhalla, not {kind!r}")
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"CARCLOUD_ROUTING_URL {url!r} is not an http(s) URL")
        raw = environ.get("CARCLOUD_ROUTING_DETOUR_FACTOR", "1.35").strip()
        try:
            detour = float(raw)
        except ValueError:
            detour = 0.0
        if not 1.0 <= detour <= 3.0:
            raise ConfigError(f"CARCLOUD_ROUTING_DETOUR_FACTOR must be 1 to 3, not {raw!r}")
        return cls(url.rstrip("/") if url else None, "valhalla" if kind == "valhalla" else "osrm",
                   detour_factor=detour)  # fmt: skip

    def __repr__(self) -> str:
        return f"RoutingSettings(url={self.url!r}, kind={self.kind!r})"


class RouteService:
    """An OSRM or Valhalla server; one HTTP client, closed with `aclose`."""

    def __init__(self, settings: RoutingSettings, client: httpx.AsyncClient | None = None):
        if settings.url is None:
            raise ConfigError("a routing service needs CARCLOUD_ROUTING_URL")
        self.url = settings.url
        self.kind = settings.kind
        self.name: str = settings.kind
        self.client = client or httpx.AsyncClient(
            timeout=settings.timeout_s, headers={"User-Agent": "carcloud-routing/0.1"}
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()

    async def travel(self, origin: Point, destination: Point) -> Travel | None:
        """The service's fastest route; None when it finds none."""
        try:
            if self.kind == "osrm":
                where = (
                    f"{origin.lon:.6f},{origin.lat:.6f};{destination.lon:.6f},{destination.lat:.6f}"
                )
                response = await self.client.get(
                    f"{self.url}/route/v1/driving/{where}", params={"overview": "false"}
                )
            else:
                response = await self.client.post(
                    f"{self.url}/route",
                    json={
                        "locations": [
                            {"lat": origin.lat, "lon": origin.lon},
                            {"lat": destination.lat, "lon": destination.lon},
                        ],
                        "costing": "auto",
                        "units": "kilometers",
                    },
                )
        except httpx.HTTPError as exc:
            raise UnreachableError(f"{self.kind} at {self.url}: {exc}") from exc
        if response.status_code >= 500:
            raise UnreachableError(f"{self.kind} at {self.url} answered {response.status_code}")
        try:
            body: Any = response.json()
        except ValueError as exc:
            raise UnreachableError(f"{self.kind} at {self.url} answered no JSON") from exc
        return self._osrm(body) if self.kind == "osrm" else self._valhalla(body)

    def _osrm(self, body: Any) -> Travel | None:
        if not isinstance(body, dict) or body.get("code") != "Ok":
            code = body.get("code") if isinstance(body, dict) else None
            if code in ("NoRoute", "NoSegment"):
                return None
            raise UnreachableError(f"osrm at {self.url} answered {code or 'no code'}")
        try:
            route = body["routes"][0]
            return Travel(float(route["duration"]), float(route["distance"]), self.name)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise UnreachableError(f"osrm at {self.url}: unexpected answer ({exc})") from exc

    def _valhalla(self, body: Any) -> Travel | None:
        if isinstance(body, dict) and "trip" not in body:
            # Valhalla's error 442: "No path could be found for input".
            if body.get("error_code") == 442:
                return None
            raise UnreachableError(
                f"valhalla at {self.url} answered {body.get('error') or 'no trip'}"
            )
        try:
            summary = body["trip"]["summary"]
            return Travel(float(summary["time"]), float(summary["length"]) * 1000.0, self.name)
        except (KeyError, TypeError, ValueError) as exc:
            raise UnreachableError(f"valhalla at {self.url}: unexpected answer ({exc})") from exc
