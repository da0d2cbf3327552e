"""The driver's OAuth consent for a Google calendar on a running platform: the start gives
an authorization URL (PKCE S256, offline access, a sealed state for this driver); the
provider's redirect to the callback exchanges the code at the token endpoint (a local
server replaying Google's answers) and adds the account, its refresh token encrypted."""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from carcloud.calendars.consent import ConsentFlow
from carcloud.calendars.credentials import CredentialBox, derive_key
from carcloud.calendars.oauth import OAuthProvider
from carcloud.calendars.service import CalendarService
from carcloud.calendars.sources import SourceSettings
from carcloud.calendars.sync import SyncPolicy
from carcloud.drivers.models import Driver
from carcloud.drivers.service import DriverService
from carcloud.errors import NotFoundError, ValidationError
from carcloud.storage import Stores
from tests.calendars.replay import ReplayServer
from tests.conftest import start_platform
from tests.platform import Platform

EVENTS = "/calendar/v3/calendars/primary/events"
PAGE_2 = "CigKGjRkcWZ2b3N2c2k1bmdwOGpxa2p0aGJqbDVuGAEggICA6J6R_hcaDAi1zqW6BhCAn5CkAw=="
REFRESH = "1//0gConsent-refresh-token-of-ada"
WEEK = {"from": "2026-12-01T00:00:00Z", "to": "2026-12-08T00:00:00Z"}


@pytest.fixture(scope="module")
def replay() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        server.on("POST", "/token", "oauth/code_exchange.json")
        server.on("GET", EVENTS, "google/full_page1.json")
        server.on("GET", EVENTS, "google/full_page2.json", pageToken=PAGE_2)
        yield server


@pytest.fixture(scope="module")
def platform(replay: ReplayServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform whose Google client talks to the replay server (and may: it is allowed
    by its URL, not by opening every private address)."""
    settings = {
        "CARCLOUD_GOOGLE_CLIENT_ID": "carcloud-test.apps.googleusercontent.com",
        "CARCLOUD_GOOGLE_CLIENT_SECRET": "GOCSPX-test-secret",
        "CARCLOUD_GOOGLE_TOKEN_URL": f"{replay.url}/token",
        "CARCLOUD_GOOGLE_API_URL": f"{replay.url}/calendar/v3",
        "CARCLOUD_GOOGLE_AUTHORIZE_URL": "https://accounts.example.test/o/oauth2/v2/auth",
        "CARCLOUD_CALENDAR_ALLOW_URLS": f"{replay.url}/",
    }
    os.environ.update(settings)
    try:
        running = start_platform(tmp_path_factory.mktemp("carcloud"))
    finally:
        for name in settings:
            del os.environ[name]
    yield running
    running.stop()


def test_a_driver_connects_a_google_calendar_through_the_consent(
    platform: Platform, replay: ReplayServer
) -> None:
    platform.register(brand="oauthalpha")
    platform.register(brand="oauthbeta")
    with platform.api() as api:
        ada = api.post("/drivers", {"name": "Ada", "brand": "oauthalpha",
                                    "timezone": "Europe/Berlin"})  # fmt: skip
        started = api.get(f"/drivers/{ada['id']}/calendar-accounts/oauth/start", provider="google")
        with pytest.raises(ValidationError, match="provider must be google or graph"):
            api.get(f"/drivers/{ada['id']}/calendar-accounts/oauth/start", provider="yahoo")
        with pytest.raises(ValidationError, match="graph calendars are not set up"):
            api.get(f"/drivers/{ada['id']}/calendar-accounts/oauth/start", provider="graph")
        beta_key = api.post("/api-keys", {"name": "beta app", "brand": "oauthbeta"})["key"]
    with platform.api(beta_key) as other, pytest.raises(NotFoundError):
        other.get(f"/drivers/{ada['id']}/calendar-accounts/oauth/start", provider="google")

    callback = f"{platform.url}/api/v1/calendar-accounts/oauth/callback"
    assert started["redirect_uri"] == callback and 590 <= started["expires_in_s"] <= 600
    url = urlsplit(started["authorization_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == (
        "https://accounts.example.test/o/oauth2/v2/auth"
    )
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["client_id"] == "carcloud-test.apps.googleusercontent.com"
    assert query["response_type"] == "code" and query["redirect_uri"] == callback
    assert query["scope"] == "https://www.googleapis.com/auth/calendar.readonly"
    assert (query["access_type"], query["prompt"]) == ("offline", "consent")
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    state = query["state"]
    assert ada["id"] not in state  # sealed, not readable

    # The driver refuses: the callback says so, nothing is added.
    refused = httpx.get(callback, params={"state": state, "error": "access_denied"})
    assert refused.status_code == 422 and "did not give google access" in refused.text
    # A state this platform did not make is refused.
    forged = httpx.get(callback, params={"state": "gAAAAAforged", "code": "4/0Ab"})
    assert forged.status_code == 422 and "not one of this platform's consents" in forged.text

    # A code the token endpoint refuses (here: a wrong verifier) adds nothing.
    replay.on("POST", "/token", "oauth/bad_verifier.json", status=400)
    bad = httpx.get(callback, params={"state": state, "code": "4/0Ab-stale"})
    replay.rules.pop(0)
    assert bad.status_code == 422
    assert "refused the code (invalid_grant: Invalid code verifier.)" in bad.text

    # The provider redirects the browser back (no API key): the code becomes an account.
    answer = httpx.get(callback, params={"state": state, "code": "4/0AbCD-code-of-the-consent"})
    assert answer.status_code == 201, answer.text
    account = answer.json()
    assert (account["kind"], account["driver_id"]) == ("google", ada["id"])
    assert account["sync"]["status"] == "ok", account
    exchange, refresh = replay.requests("/token")[-2:]
    assert exchange.form["grant_type"] == "authorization_code"
    assert exchange.form["code"] == "4/0AbCD-code-of-the-consent"
    assert exchange.form["redirect_uri"] == callback
    assert exchange.form["client_secret"] == "GOCSPX-test-secret"
    verifier = exchange.form["code_verifier"]
    digest = hashlib.sha256(verifier.encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == query["code_challenge"]
    assert (refresh.form["grant_type"], refresh.form["refresh_token"]) == (
        "refresh_token", REFRESH)  # fmt: skip

    with platform.api() as api:
        listed = api.get(f"/drivers/{ada['id']}/calendar-accounts")["accounts"]
        assert [a["kind"] for a in listed] == ["google"]
        agenda = api.get(f"/drivers/{ada['id']}/agenda", **WEEK)
        assert "Design review" in {event["title"] for event in agenda["events"]}
    # The refresh token is stored encrypted, like every other credential.
    with sqlite3.connect(platform.data_dir / "carcloud.db") as db:
        rows = db.execute("SELECT secret FROM calendar_accounts").fetchall()
    assert rows and all(REFRESH not in row[0] and row[0].startswith("gAAAAA") for row in rows)


async def test_a_consent_expires_and_is_bound_to_its_driver(stores: Stores, driver: Driver) -> None:
    google = OAuthProvider("google", "http://127.0.0.1:9/calendar/v3", "http://127.0.0.1:9/t",
                           "client", "secret")  # fmt: skip
    service = CalendarService(
        stores.calendars, DriverService(stores.drivers), CredentialBox(derive_key("t")),
        SourceSettings(timeout_s=2.0), SyncPolicy(), {"google": google, "graph": google},
    )  # fmt: skip
    flow = ConsentFlow(service)
    with pytest.raises(NotFoundError):
        await flow.start(driver.id, "another-brand", "google", "https://cc.example/cb")
    started = await flow.start(driver.id, "volta", "google", "https://cc.example/cb", now=1000.0)
    state = parse_qs(urlsplit(started.authorization_url).query)["state"][0]
    with pytest.raises(ValidationError, match="took longer than 10 min"):
        await flow.finish("code", state, now=1000.0 + 601)
    # Another platform's key cannot open it.
    elsewhere = ConsentFlow(CalendarService(
        stores.calendars, DriverService(stores.drivers), CredentialBox(derive_key("other")),
        SourceSettings(), SyncPolicy(), {"google": google, "graph": google},
    ))  # fmt: skip
    with pytest.raises(ValidationError, match="not one of this platform's consents"):
        await elsewhere.finish("code", state, now=1000.0)
