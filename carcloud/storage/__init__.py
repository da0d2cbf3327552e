"""Storage: one interface (`Storage`), with SQLite as the embedded backend."""

from __future__ import annotations

from pathlib import Path

from carcloud.errors import ConfigError
from carcloud.storage.base import Storage


def open_storage(url: str) -> Storage:
    """A storage backend for a URL: `sqlite:///path/to/file.db` (PostgreSQL comes later)."""
    if url.startswith("sqlite:///"):
        from carcloud.storage.sqlite import SqliteStorage

        return SqliteStorage(Path(url.removeprefix("sqlite:///")))
    raise ConfigError(f"unsupported database URL {url!r}; use sqlite:///PATH")


__all__ = ["Storage", "open_storage"]
