"""Fixtures that start real things on free ports: carcloud up (nats-server + SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from carcloud.runtime.launcher import free_port
from tests.platform import OPEN_CARS, Platform


def start_platform(data_dir: Path, *extra: str) -> Platform:
    platform = Platform(data_dir, free_port(), free_port(), free_port(), list(extra))
    platform.start()
    return platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One running platform shared by the tests of a module."""
    running = start_platform(tmp_path_factory.mktemp("carcloud"))
    yield running
    running.stop()


@pytest.fixture
def fresh_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(autouse=True)
def _close_cars() -> Iterator[None]:
    """Every MQTT car a test opened is closed when it ends."""
    yield
    while OPEN_CARS:
        OPEN_CARS.pop().close()
