"""Calls from the car: a join action sent to the car now, and what the car reports.

A call joins a meeting of the car's driver (by agenda entry id: the best join link
of its provider and the dial-in `tel:` URI with its PIN as the fallback), a URL or
`tel:` URI given directly, or a carcloud audio room (an invite's join token). The
action travels as the `call_join` command (durable, re-sent to an offline car); the
car reports joined / left / failed on `vehicles/{vin}/events`, and the call shows it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re

from carcloud.calendars.agenda import AgendaEntry
from carcloud.calendars.joining import provider_of
from carcloud.calendars.service import CalendarService
from carcloud.calls.models import (
    FINAL_CALL_STATES,
    Call,
    CallState,
    InviteKind,
    check_join_uri,
    new_id,
)
from carcloud.calls.motion import MotionWatch
from carcloud.calls.rooms import IssuedInvite, RoomService
from carcloud.calls.store import CallStore
from carcloud.commands.service import CommandService
from carcloud.errors import NotFoundError, ValidationError
from carcloud.registry.service import RegistryService
from carcloud.timeutil import now_us
from carcloud_agent.protocol.calls import CallJoin, CallReport, RoomJoin

log = logging.getLogger(__name__)

AGENDA_BEHIND = dt.timedelta(hours=12)
AGENDA_AHEAD = dt.timedelta(days=7)
_ROOM_LINK = re.compile(r"/rooms/(room_[0-9a-f]{16})(?:[/?#]|$)")


class CallService:
    """Join actions to cars and their reports."""

    def __init__(
        self,
        store: CallStore,
        commands: CommandService,
        calendars: CalendarService,
        rooms: RoomService,
        registry: RegistryService,
        motion: MotionWatch,
    ) -> None:
        self.store = store
        self.commands = commands
        self.calendars = calendars
        self.rooms = rooms
        self.registry = registry
        self.motion = motion

    async def join(
        self,
        vin: str,
        brand: str | None,
        event_id: str | None = None,
        url: str | None = None,
        tel: str | None = None,
        title: str = "",
    ) -> Call:
        """Send the car a join action for a meeting (event id), a link or a tel: URI."""
        if (event_id is None) == (url is None and tel is None):
            raise ValidationError("give event_id, or url and/or tel (a link and its dial-in)")
        vehicle = await self.registry.get_vehicle(vin, brand)
        provider = None
        if event_id is not None:
            entry = await self._agenda_entry(vin, brand, event_id)
            best = entry.join.best
            url = best.url if best is not None else None
            provider = best.provider if best is not None else None
            tel = entry.join.dial_in[0].uri if entry.join.dial_in else None
            title = title or entry.title
            if url is None and tel is None:
                raise ValidationError(f"meeting {event_id} has no join link and no dial-in")
        else:
            if url is not None:
                url = check_join_uri(url)
                if url.lower().startswith("tel:"):
                    url, tel = None, tel or url
            if tel is not None and not check_join_uri(tel).lower().startswith("tel:"):
                raise ValidationError("tel: a tel: URI such as tel:+4930123456,,123456#")
        room_id = self._own_room(url)
        if room_id is not None:
            call, _ = await self.invite_vehicle(room_id, vehicle.brand, vin, title, event_id)
            return call
        if tel is None and url is None:
            raise ValidationError("nothing to join")
        if provider is None and url is not None:
            found = provider_of(url)
            provider = found.id if found is not None else "other"
        now = now_us()
        call = Call(
            new_id("call"), vin, vehicle.brand, CallState.REQUESTED, now, now,
            title=(title or "Meeting")[:80], url=url, tel=tel,
            provider=provider or ("phone" if tel else None), event_id=event_id,
        )  # fmt: skip
        await self.store.create_call(call)
        return await self._send(call, None)

    async def invite_vehicle(
        self,
        room_id: str,
        brand: str | None,
        vin: str,
        title: str = "",
        event_id: str | None = None,
    ) -> tuple[Call, IssuedInvite]:
        """Invite a car of the room's brand: a join token on a `call_join` action."""
        room = await self.rooms.get_room(room_id, brand)
        vehicle = await self.registry.get_vehicle(vin, room.brand)
        issued = await self.rooms.invite(room_id, brand, InviteKind.VEHICLE, vin, vin=vin)
        now = now_us()
        call = Call(
            new_id("call"), vin, vehicle.brand, CallState.REQUESTED, now, now,
            title=(title or room.name)[:80], provider="carcloud", event_id=event_id,
            room_id=room_id,
        )  # fmt: skip
        await self.store.create_call(call)
        signalling = f"{self.rooms.public_url}/api/v1/rooms/{room_id}/join"
        sent = await self._send(call, RoomJoin(room_id, issued.token, signalling))
        return sent, issued

    async def _send(self, call: Call, room: RoomJoin | None) -> Call:
        video = (await self.motion.motion(call.vin)).video_allowed
        join = CallJoin(call.id, call.title, call.provider, call.url, call.tel, room, video)
        command, _ = await self.commands.send(call.vin, call.brand, "call_join", join.params())
        command_id = command["id"] if isinstance(command, dict) else command.id
        sent = dataclasses.replace(call, command_id=str(command_id), updated_at=now_us())
        await self.store.save_call(sent)
        return sent

    def _own_room(self, url: str | None) -> str | None:
        """The carcloud room a link points to (a meeting created with a room), if any."""
        if url is None or not self.rooms.public_url or not url.startswith(self.rooms.public_url):
            return None
        match = _ROOM_LINK.search(url[len(self.rooms.public_url) :])
        return match.group(1) if match else None

    async def _agenda_entry(self, vin: str, brand: str | None, event_id: str) -> AgendaEntry:
        now = dt.datetime.now(dt.UTC)
        _, entries = await self.calendars.vehicle_agenda(
            vin, brand, now - AGENDA_BEHIND, now + AGENDA_AHEAD
        )
        for entry in entries:
            if entry.id == event_id:
                return entry
        raise NotFoundError(f"meeting {event_id} is not on the agenda of vehicle {vin}")

    async def list_calls(self, vin: str, brand: str | None, limit: int = 50) -> list[Call]:
        """A vehicle's calls, newest first."""
        await self.registry.get_vehicle(vin, brand)
        return await self.store.list_calls(vin, brand, limit)

    async def get_call(self, vin: str, call_id: str, brand: str | None) -> Call:
        """One call of a vehicle."""
        call = await self.store.get_call(call_id, brand)
        if call.vin != vin:
            raise NotFoundError(f"call {call_id} not found")
        return call

    async def record_report(self, vin: str, report: CallReport) -> Call | None:
        """A car's report: joined, left or failed; a report about another car's call is ignored."""
        try:
            call = await self.store.get_call(report.call_id, None)
        except NotFoundError:
            log.info("calls: %s reported on unknown call %s", vin, report.call_id)
            return None
        if call.vin != vin or call.state in FINAL_CALL_STATES:
            return None
        state = CallState(report.state)
        now = now_us()
        updated = dataclasses.replace(
            call,
            state=state,
            updated_at=now,
            reason=report.reason,
            joined_at=now if state == CallState.JOINED else call.joined_at,
            ended_at=now if state in FINAL_CALL_STATES else None,
        )
        await self.store.save_call(updated)
        return updated
