"""Keep the agent's long-running loops alive: restart one that fails, with backoff.

A car has nobody to restart a loop that died: an exception that ended the sampling
loop used to stop the car's data until the next reboot, without a word. Under a
Supervisor a loop that raises is logged (with its traceback the first time in a
row, one line after that), counted for the agent's health, and started again after
a delay that doubles from `min_delay_s` to at most `max_delay_s`; a loop that ran
for `healthy_after_s` before failing starts over from the shortest delay.

Only Exception is caught: cancellation (how the agent stops its loops),
KeyboardInterrupt and SystemExit go through. MemoryError is an Exception and is
retried: it usually comes from one oversized allocation that failed, not from
memory the loop still holds. A loop that returns is done and is not restarted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from carcloud_agent.protocol.backoff import backoff_ceiling

MAX_ERROR_CHARS = 300  # the last error travels in the reported twin


def describe(name: str, exc: BaseException) -> str:
    """One line naming the loop and its error, short enough for the twin."""
    detail = str(exc)
    text = f"{name}: {type(exc).__name__}" + (f": {detail}" if detail else "")
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


class Supervisor:
    """Runs loops under supervision and remembers how they failed."""

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        min_delay_s: float = 0.1,
        max_delay_s: float = 5.0,
        healthy_after_s: float = 30.0,
    ) -> None:
        self.log = logger or logging.getLogger(__name__)
        self.min_delay_s = min_delay_s
        self.max_delay_s = max_delay_s
        self.healthy_after_s = healthy_after_s
        self.failures = 0  # over every loop, since this agent started
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"Supervisor(failures={self.failures}, last_error={self.last_error!r})"

    def delay_s(self, streak: int) -> float:
        """The wait before restarting a loop that failed `streak` times in a row (1-based)."""
        return backoff_ceiling(self.min_delay_s, self.max_delay_s, streak - 1)

    async def run(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run `loop()` until it returns; start it again after a delay whenever it raises."""
        clock = asyncio.get_running_loop().time
        streak = 0
        while True:
            started = clock()
            try:
                await loop()
                return
            except Exception as exc:
                if clock() - started >= self.healthy_after_s:
                    streak = 0  # it had been healthy: this is a new run of failures
                streak += 1
                self.failures += 1
                self.last_error = describe(name, exc)
                delay = self.delay_s(streak)
                if streak == 1:
                    self.log.exception(
                        "agent: the %s loop failed; restarting it in %.1f s", name, delay
                    )
                else:
                    # The traceback was logged at the first failure of this run; a loop
                    # failing every few seconds for hours should not fill the car's disk.
                    self.log.warning(
                        "agent: the %s loop failed again (%d in a row): %s; restarting in %.1f s",
                        name,
                        streak,
                        self.last_error,
                        delay,
                    )
            # Outside the except block, so the traceback (and what its frames hold) is freed.
            await asyncio.sleep(delay)
