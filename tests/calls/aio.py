"""The room tests' asyncio helpers: the platform's API from a coroutine, and waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.platform import Platform


async def api(platform: Platform, method: str, path: str, body: Any = None) -> Any:
    """One API call with the operator key, off the event loop (the client is blocking)."""

    def call() -> Any:
        with platform.api() as client:
            if method == "GET":
                return client.get(path)
            return client.request(method, path, json=body)

    return await asyncio.to_thread(call)


async def wait_until(check: Callable[[], Awaitable[Any]], limit_s: float, what: str) -> Any:
    """The first truthy answer of `check`, asked every 0.2 s; AssertionError after `limit_s`."""
    deadline = asyncio.get_running_loop().time() + limit_s
    last = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {limit_s}s waiting for {what}; last {last!r}")
