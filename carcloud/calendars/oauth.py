"""OAuth 2 for the calendar APIs (Google, Microsoft Graph): refresh tokens in, access
tokens out, and API requests that refresh once when the API says 401.

An account stores only its refresh token (sealed, `credentials.py`); access tokens live
in the worker's memory until shortly before they expire. A provider that rotates
refresh tokens (Microsoft does) answers a refresh with a new one, which the syncer
seals and stores. `invalid_grant` means the user revoked the access or the token
expired: the account fails with an error that says so, until it is connected again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from carcloud.calendars.sources import Answer, SourceSettings, request
from carcloud.errors import ConfigError, SourceError, UnreachableError

# Refreshed this long before the provider's expiry, so no request carries a dying token.
EXPIRY_MARGIN_S = 120.0


@dataclass(frozen=True)
class OAuthProvider:
    """One calendar API: its name, the operator's OAuth client, its token and API URLs."""

    name: str
    api_url: str
    token_url: str
    client_id: str = field(default="", repr=False)
    client_secret: str = field(default="", repr=False)

    @classmethod
    def from_env(
        cls, kind: str, api_url: str, token_url: str, environ: Mapping[str, str] = os.environ
    ) -> OAuthProvider:
        """CARCLOUD_{KIND}_CLIENT_ID, _CLIENT_SECRET, _TOKEN_URL and _API_URL."""
        prefix = f"CARCLOUD_{kind.upper()}_"
        return cls(
            name=kind,
            api_url=environ.get(prefix + "API_URL", api_url).rstrip("/"),
            token_url=environ.get(prefix + "TOKEN_URL", token_url),
            client_id=environ.get(prefix + "CLIENT_ID", ""),
            client_secret=environ.get(prefix + "CLIENT_SECRET", ""),
        )


@dataclass
class _Access:
    token: str
    expires_at: float


@dataclass
class Grant:
    """An account's tokens while it syncs; `rotated` is set when the provider sent a new
    refresh token (to be stored)."""

    account_id: str
    refresh_token: str
    rotated: bool = False


class TokenCache:
    """Access tokens of accounts, refreshed when expired or refused."""

    def __init__(self) -> None:
        self._access: dict[str, _Access] = {}

    def forget(self, account_id: str) -> None:
        """Drop an account's access token (it was refused)."""
        self._access.pop(account_id, None)

    async def access_token(
        self,
        client: httpx.AsyncClient,
        provider: OAuthProvider,
        grant: Grant,
        settings: SourceSettings,
    ) -> str:
        """A valid access token for the account, refreshed when needed."""
        held = self._access.get(grant.account_id)
        if held is not None and held.expires_at > time.monotonic():
            return held.token
        if not provider.client_id:
            raise ConfigError(
                f"no OAuth client for {provider.name}: set CARCLOUD_{provider.name.upper()}"
                "_CLIENT_ID and _CLIENT_SECRET"
            )
        form = {
            "grant_type": "refresh_token",
            "refresh_token": grant.refresh_token,
            "client_id": provider.client_id,
            "client_secret": provider.client_secret,
        }
        answer = await request(
            client, "POST", provider.token_url, f"the {provider.name} token endpoint", settings,
            allow=(400, 401), data=form, headers={"Accept": "application/json"},
        )  # fmt: skip
        body = _json(answer, f"the {provider.name} token endpoint")
        if answer.status != 200:
            raise _refused(provider, answer.status, body)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise SourceError(f"the {provider.name} token endpoint sent no access_token")
        lifetime = float(body.get("expires_in") or 3600)
        self._access[grant.account_id] = _Access(
            token, time.monotonic() + max(lifetime - EXPIRY_MARGIN_S, 0.0)
        )
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != grant.refresh_token:
            grant.refresh_token, grant.rotated = rotated, True
        return token


def _refused(provider: OAuthProvider, status: int, body: dict[str, Any]) -> Exception:
    code = str(body.get("error") or f"HTTP {status}")
    detail = str(body.get("error_description") or "").split("\r\n")[0][:200]
    if code == "invalid_grant":
        return SourceError(
            f"the {provider.name} refresh token was revoked or has expired (invalid_grant"
            f"{': ' + detail if detail else ''}); connect the calendar again"
        )
    if code in ("invalid_client", "unauthorized_client"):
        return ConfigError(f"the {provider.name} OAuth client was refused ({code}): {detail}")
    return SourceError(f"the {provider.name} token endpoint refused the refresh ({code})")


def _json(answer: Answer, what: str) -> dict[str, Any]:
    try:
        body = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        raise SourceError(f"{what} did not answer with JSON (HTTP {answer.status})") from None
    if not isinstance(body, dict):
        raise SourceError(f"{what} answered JSON that is not an object")
    return body


async def api_get(
    client: httpx.AsyncClient,
    url: str,
    what: str,
    provider: OAuthProvider,
    grant: Grant,
    tokens: TokenCache,
    settings: SourceSettings,
    allow: tuple[int, ...] = (),
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """GET a JSON document of the API with the account's token; a 401 refreshes the
    token once and tries again. Statuses in `allow` are returned, not raised."""
    for attempt in (1, 2):
        token = await tokens.access_token(client, provider, grant, settings)
        answer = await request(
            client, "GET", url, what, settings, allow=(401, *allow), params=params,
            headers={**(headers or {}), "Authorization": f"Bearer {token}",
                     "Accept": "application/json"},
        )  # fmt: skip
        if answer.status == 401:
            tokens.forget(grant.account_id)
            if attempt == 1:
                continue
            raise SourceError(f"{provider.name} refused a fresh access token (HTTP 401) for {what}")
        return answer.status, _json(answer, what)
    raise UnreachableError(f"{what}: no answer")  # not reached: the loop returns or raises
