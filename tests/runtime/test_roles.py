"""Roles are declared once; a crash of one is logged once and stops its process."""

from __future__ import annotations

import asyncio
import logging

import pytest

from carcloud.errors import ConfigError
from carcloud.runtime.platform import RoleCrashed, _supervised
from carcloud.runtime.roles import ROLES, USER_ROLES, check_roles


def test_roles_start_in_declared_order_with_the_relay() -> None:
    assert check_roles(("api", "ingest")) == ("ingest", "events", "api")
    assert check_roles(USER_ROLES)[0] == "callout"  # our own MQTT connects need it first
    assert set(USER_ROLES) | {"events"} == set(ROLES)
    with pytest.raises(ConfigError, match="unknown role.*ingets.*roles: callout"):
        check_roles(("ingets",))


async def test_a_crashing_role_is_logged_once_and_stops_the_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()

    async def broken(stop: asyncio.Event) -> None:
        raise MemoryError("out of memory in a role")

    async def healthy(stop: asyncio.Event) -> None:
        await stop.wait()

    with caplog.at_level(logging.ERROR):
        other = asyncio.create_task(_supervised("ingest", healthy, stop))
        with pytest.raises(RoleCrashed, match="role control crashed: MemoryError"):
            await _supervised("control", broken, stop)
        await asyncio.wait_for(other, 5)  # the others were told to stop
    assert stop.is_set()
    crashes = [r for r in caplog.records if "role control crashed" in r.getMessage()]
    assert len(crashes) == 1 and crashes[0].exc_info is not None
