"""Storage: per-slice store protocols, implemented by each backend over a shared engine."""

from __future__ import annotations

from pathlib import Path

from carcloud.catalog import SignalCatalog
from carcloud.errors import ConfigError
from carcloud.storage.stores import Stores


def open_storage(url: str, catalog: SignalCatalog | None = None) -> Stores:
    """The stores of a database URL: `sqlite:///path/to/file.db` or `postgresql://…`."""
    if url.startswith("sqlite:///"):
        from carcloud.storage.sqlite import sqlite_stores

        return sqlite_stores(Path(url.removeprefix("sqlite:///")), catalog)
    if url.startswith(("postgresql://", "postgres://")):
        from carcloud.storage.postgres import postgres_stores

        return postgres_stores(url, catalog)
    raise ConfigError(
        f"unsupported database URL {url!r}; use sqlite:///PATH or postgresql://USER@HOST/DB"
    )


__all__ = ["Stores", "open_storage"]
