"""A PostgreSQL database of its own for a test, on the server the machine runs.

The server is $CARCLOUD_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432/postgres,
the one CI machines run with trust auth). A missing server fails the test with a
message that says so; it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

ADMIN_URL = os.environ.get(
    "CARCLOUD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    name = f"carcloud_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(ADMIN_URL)
    except (OSError, asyncpg.PostgresError) as exc:
        raise AssertionError(
            f"PostgreSQL is needed for this test and is not reachable at {ADMIN_URL} "
            f"(set CARCLOUD_TEST_POSTGRES): {exc}"
        ) from exc
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = ADMIN_URL.rsplit("/", 1)[0]
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
