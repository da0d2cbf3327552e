"""The driver's OAuth consent for a Google or Microsoft 365 calendar (authorization code
flow with PKCE, RFC 7636), ending in an account whose refresh token is sealed like every
other credential.

1. `start`: carcloud makes a PKCE verifier and an authorization URL for the driver to
   open (offline access: the provider gives a refresh token; read-only calendar scope).
   The `state` parameter is the sealed (encrypted and authenticated with the credential
   key) record of whom the consent is for: driver, brand, provider, the verifier, the
   redirect URI, Google's calendar id, and when it expires (`STATE_TTL_S`). Nothing is
   stored: the state can only have been made by this platform, and the verifier never
   leaves it in clear text.
2. `finish` (the provider redirects the browser to the callback with `code` and
   `state`): the state is opened and checked, the code is exchanged at the provider's
   token endpoint with the verifier, and the refresh token becomes a calendar account of
   the driver (synced once, as any added account).

Authorization endpoints are Google's and Microsoft's (common tenant) unless
CARCLOUD_GOOGLE_AUTHORIZE_URL / CARCLOUD_GRAPH_AUTHORIZE_URL say otherwise; token
endpoints and clients are those of `oauth.OAuthProvider` (CARCLOUD_{KIND}_*).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import orjson

from carcloud.calendars.models import CalendarAccount
from carcloud.calendars.oauth import OAuthProvider
from carcloud.calendars.service import AccountDraft, CalendarService
from carcloud.calendars.sources import request
from carcloud.calendars.sync import http_client
from carcloud.errors import ConfigError, SourceError, ValidationError

STATE_TTL_S = 600
_PURPOSE = "carcloud calendar consent v1"
AUTHORIZE_URLS = {
    "google": "https://accounts.google.com/o/oauth2/v2/auth",
    "graph": "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
}
SCOPES = {
    "google": "https://www.googleapis.com/auth/calendar.readonly",
    "graph": "offline_access Calendars.Read",
}


def authorize_url(kind: str, environ: Mapping[str, str] = os.environ) -> str:
    """The provider's authorization endpoint (CARCLOUD_{KIND}_AUTHORIZE_URL overrides)."""
    return environ.get(f"CARCLOUD_{kind.upper()}_AUTHORIZE_URL", AUTHORIZE_URLS[kind])


def pkce_pair() -> tuple[str, str]:
    """A code verifier (43 URL-safe characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class ConsentStart:
    """Where to send the driver, and until when the consent may come back."""

    authorization_url: str
    provider: str
    redirect_uri: str
    expires_at: float

    def document(self) -> dict[str, object]:
        """The JSON form of the API."""
        return {
            "provider": self.provider,
            "authorization_url": self.authorization_url,
            "redirect_uri": self.redirect_uri,
            "expires_in_s": max(0, round(self.expires_at - time.time())),
        }


class ConsentFlow:
    """Consent start and finish over a calendar service (its providers, box and settings)."""

    def __init__(self, calendars: CalendarService, environ: Mapping[str, str] = os.environ) -> None:
        self.calendars = calendars
        self.environ = environ

    def _provider(self, kind: str) -> OAuthProvider:
        if kind not in AUTHORIZE_URLS:
            raise ValidationError(f"provider must be google or graph, not {kind!r}")
        provider = self.calendars.syncer.providers[kind]
        if not provider.client_id:
            raise ValidationError(
                f"{kind} calendars are not set up on this platform: the operator sets "
                f"CARCLOUD_{kind.upper()}_CLIENT_ID and _CLIENT_SECRET"
            )
        return provider

    async def start(
        self,
        driver_id: str,
        brand: str | None,
        kind: str,
        redirect_uri: str,
        calendar_id: str | None = None,
        now: float | None = None,
    ) -> ConsentStart:
        """The authorization URL of a consent for the driver (NotFoundError for a driver
        the caller cannot see)."""
        provider = self._provider(kind)
        driver = await self.calendars.drivers.get(driver_id, brand)
        if urlsplit(redirect_uri).scheme not in ("https", "http"):
            raise ValidationError(f"redirect_uri {redirect_uri!r} is not an http(s) URL")
        if calendar_id is not None and kind != "google":
            raise ValidationError("calendar_id is for google accounts only")
        verifier, challenge = pkce_pair()
        expires = (time.time() if now is None else now) + STATE_TTL_S
        state = self.calendars.box.seal({
            "purpose": _PURPOSE, "driver_id": driver.id, "brand": driver.brand,
            "provider": kind, "verifier": verifier, "redirect_uri": redirect_uri,
            "calendar_id": calendar_id or "", "expires_at": f"{expires:.0f}",
            "nonce": secrets.token_urlsafe(8),
        })  # fmt: skip
        query = {
            "client_id": provider.client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": SCOPES[kind],
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if kind == "google":  # a refresh token only with offline access and a fresh consent
            query |= {"access_type": "offline", "prompt": "consent"}
        base = authorize_url(kind, self.environ)
        joiner = "&" if "?" in base else "?"
        return ConsentStart(f"{base}{joiner}{urlencode(query)}", kind, redirect_uri, expires)

    def _state(self, state: str, now: float) -> dict[str, str]:
        try:
            opened = self.calendars.box.open(state)
        except (ConfigError, ValueError, TypeError):
            opened = {}
        if opened.get("purpose") != _PURPOSE:
            raise ValidationError("state is not one of this platform's consents")
        if float(opened["expires_at"]) < now:
            raise ValidationError(
                f"the consent took longer than {STATE_TTL_S // 60} min: start it again"
            )
        return opened

    async def finish(
        self,
        code: str | None,
        state: str | None,
        error: str | None = None,
        now: float | None = None,
    ) -> CalendarAccount:
        """The driver's new account from the provider's redirect (code and state)."""
        if not state:
            raise ValidationError("the redirect has no state")
        record = self._state(state, time.time() if now is None else now)
        kind = record["provider"]
        if error:
            raise SourceError(f"the driver did not give {kind} access ({error[:80]})")
        if not code:
            raise ValidationError("the redirect has no code")
        provider = self._provider(kind)
        refresh_token = await self._exchange(provider, code, record)
        draft = AccountDraft(
            kind, refresh_token=refresh_token, calendar_id=record["calendar_id"] or None
        )
        return await self.calendars.add_account(record["driver_id"], record["brand"], draft)

    async def _exchange(self, provider: OAuthProvider, code: str, record: dict[str, str]) -> str:
        """The refresh token the code gives (with the PKCE verifier)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": record["redirect_uri"],
            "client_id": provider.client_id,
            "client_secret": provider.client_secret,
            "code_verifier": record["verifier"],
        }
        what = f"the {provider.name} token endpoint"
        settings = self.calendars.settings
        async with http_client(settings) as client:
            answer = await request(
                client, "POST", provider.token_url, what, settings, allow=(400, 401),
                data=form, headers={"Accept": "application/json"},
            )  # fmt: skip
        try:
            body = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            raise SourceError(f"{what} did not answer with JSON (HTTP {answer.status})") from None
        if not isinstance(body, dict):
            raise SourceError(f"{what} answered JSON that is not an object")
        if answer.status != 200:
            code_name = str(body.get("error") or f"HTTP {answer.status}")
            detail = str(body.get("error_description") or "").split("\r\n")[0][:200]
            raise SourceError(
                f"{what} refused the code ({code_name}{': ' + detail if detail else ''}); "
                "start the consent again"
            )
        token = body.get("refresh_token")
        if not isinstance(token, str) or not token:
            raise SourceError(
                f"{what} sent no refresh_token: the consent must include offline access"
            )
        return token
