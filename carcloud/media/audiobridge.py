"""carcloud's client of Janus's AudioBridge, over the Janus HTTP API (with its API secret).

One Janus session per process: a control handle for room requests (create, destroy,
list, mute, kick) and one handle per participant that joined through this process,
which carries that participant's WebRTC connection. A long poll on the session
receives Janus's asynchronous events (join answers, hangups) and keeps the session
alive; if Janus forgets the session (it restarted), the client makes a new one.

With several API processes, a participant's handle lives in the session of the
process that signalled its join; `hangup` ends a connection from any of them (its
own handle is detached, another process's participant is kicked from the room by
its id, and that process sees the hangup and detaches the handle).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from carcloud.errors import CarcloudError, MessagingError, NotFoundError, ValidationError
from carcloud.media.janus import MediaEndpoint

log = logging.getLogger(__name__)

PLUGIN = "janus.plugin.audiobridge"
REQUEST_TIMEOUT_S = 10.0
POLL_S = 30.0


class MediaError(MessagingError):
    """The media server refused a request or cannot be reached."""


@dataclass(frozen=True, slots=True)
class BridgeParticipant:
    """A participant as Janus sees it."""

    id: str
    display: str
    muted: bool
    talking: bool
    connected: bool


# Called with the handle id when a participant's connection ends (hangup or detach).
HangupHandler = Callable[[int], Awaitable[None]]


class AudioBridge:
    """Requests to AudioBridge rooms; an async context manager around its session."""

    def __init__(self, endpoint: MediaEndpoint, on_hangup: HangupHandler | None = None) -> None:
        self.endpoint = endpoint
        self.on_hangup = on_hangup
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(REQUEST_TIMEOUT_S, read=POLL_S + 10))
        self._session: int | None = None
        self._control: int | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._handles: set[int] = set()  # participants' handles in this process's session
        self._poller: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"AudioBridge({self.endpoint!r}, session={self._session})"

    async def __aenter__(self) -> AudioBridge:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Destroy the session (every participant handle of this process goes with it)."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._session is not None:
            with contextlib.suppress(CarcloudError, httpx.HTTPError):
                await self._post(f"/{self._session}", {"janus": "destroy"})
        await self._http.aclose()

    # ---- the Janus API ----------------------------------------------------------------

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "transaction": body.get("transaction") or secrets.token_hex(8)}
        if self.endpoint.secret:
            body["apisecret"] = self.endpoint.secret
        try:
            response = await self._http.post(self.endpoint.url + path, json=body)
        except httpx.HTTPError as exc:
            raise MediaError(
                f"the media server at {self.endpoint.url} does not answer: {exc}"
            ) from exc
        answer: dict[str, Any] = response.json()
        if answer.get("janus") == "error":
            error = answer.get("error", {})
            if error.get("code") in (458, 459):  # no such session / handle
                self._session = None if error.get("code") == 458 else self._session
            raise MediaError(f"media server: {error.get('reason', 'error')}")
        return answer

    async def _ensure_session(self) -> int:
        async with self._lock:
            if self._session is None:
                created = await self._post("", {"janus": "create"})
                self._session = int(created["data"]["id"])
                self._control = await self._attach()
                if self._poller is None or self._poller.done():
                    self._poller = asyncio.create_task(self._poll())
            return self._session

    async def _attach(self) -> int:
        answer = await self._post(f"/{self._session}", {"janus": "attach", "plugin": PLUGIN})
        return int(answer["data"]["id"])

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous AudioBridge request on the control handle; its answer's data."""
        for attempt in (1, 2):
            session = await self._ensure_session()
            try:
                answer = await self._post(
                    f"/{session}/{self._control}", {"janus": "message", "body": body}
                )
            except MediaError:
                if self._session is None and attempt == 1:
                    continue  # Janus lost our session (restarted): once more on a new one
                raise
            data: dict[str, Any] = answer.get("plugindata", {}).get("data", {})
            if "error" in data:
                code = data.get("error_code")
                if code == 485:  # no such room
                    raise NotFoundError(f"media room {body.get('room')!r} not found")
                raise MediaError(f"media server: {data['error']}")
            return data
        raise MediaError("media server: no session")

    async def _poll(self) -> None:
        while True:
            session = self._session
            if session is None:
                await asyncio.sleep(0.5)
                continue
            params = {"maxev": "10", "rid": secrets.token_hex(4)}
            if self.endpoint.secret:
                params["apisecret"] = self.endpoint.secret
            try:
                response = await self._http.get(f"{self.endpoint.url}/{session}", params=params)
                events = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("media server long poll failed: %s", exc)
                await asyncio.sleep(1.0)
                continue
            for event in events if isinstance(events, list) else [events]:
                await self._dispatch(event)

    async def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("janus")
        if kind == "error" and event.get("error", {}).get("code") == 458:
            self._session = None
            return
        transaction = event.get("transaction")
        waiter = self._waiting.get(str(transaction)) if transaction else None
        if kind == "event" and waiter is not None and not waiter.done():
            waiter.set_result(event)
        elif kind in ("hangup", "detached"):
            handle = int(event.get("sender", 0))
            if self.on_hangup is not None:
                try:
                    await self.on_hangup(handle)
                except CarcloudError as exc:
                    log.warning("media server hangup not recorded: %s", exc)
            if kind == "hangup" and handle in self._handles:
                # Ended from elsewhere (kicked, the link dropped): free the handle too.
                await self.leave(handle)
            self._handles.discard(handle)

    # ---- rooms --------------------------------------------------------------------------

    async def create_room(self, room: str, description: str) -> None:
        """A room that reports who talks; only carcloud may change it (the admin key)."""
        await self.request(
            {
                "request": "create",
                "room": room,
                "description": description[:100],
                "admin_key": self.endpoint.secret,
                "secret": self.endpoint.secret,
                "is_private": True,
                "sampling_rate": 48000,
                "audiolevel_event": True,
                "audio_active_packets": 50,
                "audio_level_average": 40,
                "allow_rtp_participants": False,
            }
        )

    async def destroy_room(self, room: str) -> None:
        """Close a room; everyone in it is disconnected. A room already gone is fine."""
        with contextlib.suppress(NotFoundError):
            await self.request({"request": "destroy", "room": room, "secret": self.endpoint.secret})

    async def participants(self, room: str) -> list[BridgeParticipant]:
        """Who is in a room now, as Janus sees it."""
        data = await self.request({"request": "listparticipants", "room": room})
        return [
            BridgeParticipant(
                str(entry["id"]),
                str(entry.get("display", "")),
                bool(entry.get("muted", False)),
                bool(entry.get("talking", False)),
                bool(entry.get("setup", False)),
            )
            for entry in data.get("participants", [])
        ]

    async def mute(self, room: str, participant_id: str, muted: bool) -> None:
        """Mute or unmute a participant for everyone."""
        await self.request(
            {
                "request": "mute" if muted else "unmute",
                "room": room,
                "id": participant_id,
                "secret": self.endpoint.secret,
            }
        )

    async def kick(self, room: str, participant_id: str) -> None:
        """Remove a participant from a room."""
        await self.request(
            {"request": "kick", "room": room, "id": participant_id, "secret": self.endpoint.secret}
        )

    async def hangup(self, room: str, participant_id: str, handle: int) -> None:
        """End a participant's connection, whichever process's session holds its handle.

        A handle of this process is detached; another process's participant is kicked
        from its room by id (Janus closes its connection, and the process that holds
        the handle hears the hangup). A participant already gone is fine.
        """
        if handle in self._handles:
            await self.leave(handle)
            return
        try:
            await self.kick(room, participant_id)
        except (NotFoundError, MediaError) as exc:
            log.debug("hangup of %s in %s: already gone (%s)", participant_id, room, exc)

    # ---- participants -------------------------------------------------------------------

    @staticmethod
    def one_fingerprint(sdp: str) -> str:
        """The SDP with one DTLS fingerprint per section, sha-256 where offered.

        aiortc offers sha-256, sha-384 and sha-512 fingerprints; Janus keeps the last it
        reads but checks with sha-256, and refuses the DTLS handshake (measured here).
        """
        lines = sdp.splitlines()
        prints = [line for line in lines if line.startswith("a=fingerprint:")]
        if len({line.split()[0] for line in prints}) <= 1:
            return sdp
        kept = [
            line
            for line in lines
            if not line.startswith("a=fingerprint:")
            or line.lower().startswith("a=fingerprint:sha-256 ")
        ]
        return "\r\n".join(kept) + "\r\n"

    async def join(self, room: str, display: str, offer_sdp: str) -> tuple[int, str, str]:
        """Join a room with a WebRTC offer: (handle id, participant id, answer SDP)."""
        if "m=audio" not in offer_sdp:
            raise ValidationError("the SDP offer has no audio (m=audio); rooms carry audio")
        session = await self._ensure_session()
        handle = await self._attach()
        self._handles.add(handle)
        transaction = secrets.token_hex(8)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[transaction] = waiter
        try:
            await self._post(
                f"/{session}/{handle}",
                {
                    "janus": "message",
                    "transaction": transaction,
                    "body": {"request": "join", "room": room, "display": display[:64]},
                    "jsep": {"type": "offer", "sdp": self.one_fingerprint(offer_sdp)},
                },
            )
            event = await asyncio.wait_for(waiter, REQUEST_TIMEOUT_S)
        except (TimeoutError, MediaError):
            await self.leave(handle)
            raise
        finally:
            self._waiting.pop(transaction, None)
        data = event.get("plugindata", {}).get("data", {})
        if "error" in data:
            await self.leave(handle)
            raise MediaError(f"media server refused the join: {data['error']}")
        jsep = event.get("jsep") or {}
        if jsep.get("type") != "answer":
            await self.leave(handle)
            raise MediaError("media server answered the join without an SDP answer")
        return handle, str(data["id"]), str(jsep["sdp"])

    async def leave(self, handle: int) -> None:
        """Hang up a participant's handle (it leaves its room)."""
        self._handles.discard(handle)
        if self._session is None:
            return
        with contextlib.suppress(MediaError):
            await self._post(f"/{self._session}/{handle}", {"janus": "detach"})
