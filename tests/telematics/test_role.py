"""The derive worker derives the vehicles of a batch side by side, and loses none."""

from __future__ import annotations

import asyncio

import pytest

from carcloud.errors import StorageError
from carcloud.telematics.role import derive_vehicles


class SlowDeriver:
    """A deriver that takes a while per vehicle (as a store round trip does)."""

    def __init__(self, seconds: float, fail_for: str | None = None) -> None:
        self.seconds = seconds
        self.fail_for = fail_for
        self.running = 0
        self.most_at_once = 0
        self.derived: list[tuple[str, int]] = []

    async def derive(self, vin: str, since: int) -> object:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(self.seconds)
            if vin == self.fail_for:
                raise StorageError(f"cannot derive {vin}")
            self.derived.append((vin, since))
            return None
        finally:
            self.running -= 1


def vins(count: int) -> dict[str, int]:
    return {f"WVWZZZ1JZXW{index:06d}": 1_000 * index for index in range(count)}


async def test_vehicles_of_a_batch_are_derived_side_by_side_within_the_limit() -> None:
    first, second = SlowDeriver(0.05), SlowDeriver(0.0)
    loop = asyncio.get_running_loop()
    began = loop.time()
    derived = await derive_vehicles([first, second], vins(40), concurrency=8)
    took = loop.time() - began
    assert derived == 40
    # One after another would take 40 x 0.05 s = 2 s; eight at a time about 0.25 s.
    assert took < 1.0
    assert first.most_at_once == 8
    # Every vehicle once, from its own time, by every deriver.
    assert sorted(first.derived) == sorted(second.derived) == sorted(vins(40).items())


async def test_one_vehicle_failing_lets_the_others_finish_then_raises() -> None:
    failing = SlowDeriver(0.01, fail_for="WVWZZZ1JZXW000003")
    with pytest.raises(StorageError, match="WVWZZZ1JZXW000003"):
        await derive_vehicles([failing], vins(10), concurrency=4)
    assert len(failing.derived) == 9  # the batch is derived again; nothing was left running
    assert failing.running == 0
