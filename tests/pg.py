"""A PostgreSQL database of its own for a test, on the server the machine runs.

The server is $CARCLOUD_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432/postgres,
the one CI machines run with trust auth). A missing server fails the test with a
message that says so; it is never skipped.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

ADMIN_URL = os.environ.get(
    "CARCLOUD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(ADMIN_URL)
    except (OSError, asyncpg.PostgresError) as exc:
        raise AssertionError(
            f"PostgreSQL is needed for this test and is not reachable at {ADMIN_URL} "
            f"(set CARCLOUD_TEST_POSTGRES): {exc}"
        ) from exc


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    name = f"carcloud_test_{uuid.uuid4().hex[:12]}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = ADMIN_URL.rsplit("/", 1)[0]
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def create_database() -> str:
    """A new empty database (for a fixture that outlives one event loop); its URL."""
    name = f"carcloud_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        admin = await _admin()
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    asyncio.run(create())
    return f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def drop_database(url: str) -> None:
    """Drop a database made by `create_database`."""
    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        admin = await _admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(drop())
