"""Fixtures that start real things on free ports: carcloud up (nats-server + SQLite or PostgreSQL).

The module-scoped `platform` runs every module that uses it twice: once on the embedded
default (SQLite) and once on PostgreSQL (a database of its own on the server the machine
runs, see tests/pg.py), so the end-to-end tests show the same behaviour on both backends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from carcloud.runtime.launcher import free_port
from tests.pg import create_database, drop_database
from tests.platform import OPEN_CARS, Platform

BACKENDS = ("sqlite", "postgresql")


def start_platform(data_dir: Path, *extra: str) -> Platform:
    platform = Platform(data_dir, free_port(), free_port(), free_port(), list(extra))
    platform.start()
    return platform


@pytest.fixture(scope="module", autouse=True)
def collect_garbage_after_each_module() -> Iterator[None]:
    """Collect reference cycles when a module's tests are done.

    A socket, transport or stream a module leaves open is found when its object is
    collected; ResourceWarning is an error here, so it fails the module that left it
    open instead of whichever later test the collector happened to run during.
    """
    yield
    gc.collect()


@pytest.fixture(scope="module", params=BACKENDS)
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """One running platform shared by the tests of a module, on each storage backend."""
    data_dir = tmp_path_factory.mktemp("carcloud")
    if request.param == "sqlite":
        running = start_platform(data_dir)
        yield running
        running.stop()
        return
    url = create_database()
    try:
        running = start_platform(data_dir, "--database", url)
        yield running
        running.stop()
    finally:
        drop_database(url)


@pytest.fixture(scope="module")
def sqlite_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform on SQLite only, for tests that read the embedded database file itself."""
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
