"""What the iCalendar feed and CalDAV sources share: their URLs, the outside-address
policy, and HTTP failures translated into errors that name what is wrong.

A source's URL comes from an API caller and the platform fetches it from inside the
operator's network, so by default it must resolve to public addresses only (the
webhooks' policy); `CARCLOUD_CALENDAR_ALLOW_PRIVATE=1` allows private ones (a test
platform, a CalDAV server on the operator's own network).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from carcloud.errors import SourceError, UnreachableError, ValidationError
from carcloud.outbound import RefusedTarget, TargetPolicy

MAX_CALENDAR_BYTES = 20_000_000


@dataclass(frozen=True, slots=True)
class Answer:
    """A server's answer, read whole (within the size limit)."""

    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def text(self) -> str:
        """The body as text (UTF-8; a wrong byte does not stop a sync)."""
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class SourceSettings:
    """How sources are fetched: time out, size limit, private addresses allowed or not."""

    allow_private: bool = False
    timeout_s: float = 20.0
    max_bytes: int = MAX_CALENDAR_BYTES
    allowed_urls: tuple[str, ...] = ()  # private URLs allowed one by one (by prefix)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> SourceSettings:
        """CARCLOUD_CALENDAR_ALLOW_PRIVATE=1 allows private and loopback addresses;
        CARCLOUD_CALENDAR_ALLOW_URLS (comma-separated URL prefixes) allows only those."""
        allow = environ.get("CARCLOUD_CALENDAR_ALLOW_PRIVATE", "").strip().lower()
        urls = environ.get("CARCLOUD_CALENDAR_ALLOW_URLS", "")
        return cls(
            allow_private=allow in ("1", "true", "yes", "on"),
            allowed_urls=tuple(url.strip() for url in urls.split(",") if url.strip()),
        )


def source_url(raw: str, kind: str) -> str:
    """A feed (https, http, webcal, webcals) or CalDAV (https, http) URL, as fetched."""
    text = raw.strip() if isinstance(raw, str) else ""
    parts = urlsplit(text)
    schemes = ("https", "http", "webcal", "webcals") if kind == "ics" else ("https", "http")
    if parts.scheme.lower() not in schemes or not parts.hostname or any(c.isspace() for c in text):
        raise ValidationError(
            f"url {_shown(text)!r} is not a valid {kind} URL: expected "
            f"{' or '.join(s + '://HOST/…' for s in schemes)}"
        )
    scheme = "https" if parts.scheme.lower() in ("webcal", "webcals", "https") else "http"
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))


def redacted(url: str) -> str:
    """The URL without path, query and user: a feed's path often is its secret."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


async def check_target(url: str, settings: SourceSettings) -> None:
    """SourceError if the URL's host is not a public address (and private ones are not allowed)."""
    try:
        await TargetPolicy(settings.allow_private, settings.allowed_urls).check(url)
    except RefusedTarget:
        host = urlsplit(url).hostname
        raise SourceError(
            f"{host} is not a public address; the operator may allow private calendar servers "
            "with CARCLOUD_CALENDAR_ALLOW_PRIVATE=1"
        ) from None
    except OSError as exc:
        raise UnreachableError(f"{urlsplit(url).hostname} does not resolve: {exc}") from None


MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)


def _redirected(kwargs: dict[str, object], old: str, new: str, to_get: bool) -> dict[str, object]:
    """The request's arguments for a redirect's target: no body when it becomes a GET,
    no credentials when it goes to another origin."""
    out = dict(kwargs)
    if to_get:
        for name in ("data", "content", "json", "files"):
            out.pop(name, None)
    same = (urlsplit(old).scheme, urlsplit(old).netloc) == (
        urlsplit(new).scheme,
        urlsplit(new).netloc,
    )
    if not same:
        out.pop("auth", None)
        headers = out.get("headers")
        if isinstance(headers, Mapping | httpx.Headers):
            out["headers"] = {
                k: v for k, v in dict(headers).items() if str(k).lower() != "authorization"
            }
    return out


async def request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    what: str,
    settings: SourceSettings,
    allow: tuple[int, ...] = (),
    **kwargs: object,
) -> Answer:
    """One request; errors name `what` was asked and why it failed.

    A 207 and any 2xx is an answer, and so is a status in `allow`; 401/403/404 are
    SourceError (the account is wrong until someone fixes it); no answer, a 5xx or a 429
    are UnreachableError (try later).

    Redirects are followed here, each target checked against the address policy like
    the first (a public feed must not redirect the platform into its own network); the
    credentials do not follow a redirect to another origin.
    """
    for _ in range(MAX_REDIRECTS + 1):
        await check_target(url, settings)
        host = urlsplit(url).hostname
        location: str | None = None
        try:
            async with client.stream(
                method,
                url,
                follow_redirects=False,
                **kwargs,  # type: ignore[arg-type]
            ) as response:
                status, headers, body = response.status_code, response.headers, bytearray()
                if status in REDIRECTS and "location" in headers:
                    location = headers["location"]
                else:
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > settings.max_bytes:
                            raise SourceError(
                                f"{what} at {host} is larger than "
                                f"{settings.max_bytes // 1_000_000} MB"
                            )
        except httpx.TimeoutException:
            raise UnreachableError(f"{what} at {host} did not answer within the time out") from None
        except httpx.HTTPError as exc:
            detail = str(exc) or type(exc).__name__  # a ReadError has no message of its own
            raise UnreachableError(f"{what} at {host} failed: {detail}") from None
        if location is None:
            break
        target = urljoin(url, location)
        to_get = status == 303 or (status in (301, 302) and method == "POST")
        kwargs = _redirected(kwargs, url, target, to_get)
        method, url = ("GET" if to_get else method), target
    else:
        raise SourceError(f"{what}: more than {MAX_REDIRECTS} redirects")
    if status in allow:
        return Answer(status, headers, bytes(body))
    if status in (401, 403):
        raise SourceError(f"{host} refused the credentials (HTTP {status}) for {what}")
    if status == 404:
        raise SourceError(f"{what} not found at {host} (HTTP 404)")
    if status == 429 or status >= 500:
        raise UnreachableError(f"{host} answered HTTP {status} to {what}")
    if status >= 400:
        raise SourceError(f"{host} answered HTTP {status} to {what}")
    return Answer(status, headers, bytes(body))
