"""Storage: per-slice store protocols, implemented by each backend over a shared engine."""

from __future__ import annotations

from pathlib import Path

from carcloud.catalog import SignalCatalog
from carcloud.errors import ConfigError
from carcloud.storage.stores import Stores


def open_storage(url: str, catalog: SignalCatalog | None = None) -> Stores:
    """The stores of a database URL: `sqlite:///path/to/file.db` (PostgreSQL comes later)."""
    if url.startswith("sqlite:///"):
        from carcloud.storage.sqlite import sqlite_stores

        return sqlite_stores(Path(url.removeprefix("sqlite:///")), catalog)
    raise ConfigError(f"unsupported database URL {url!r}; use sqlite:///PATH")


__all__ = ["Stores", "open_storage"]
