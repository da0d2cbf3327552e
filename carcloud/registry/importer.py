"""Bulk onboarding: vehicles from a CSV file, registered through the batch API.

The file has a header row with the columns `vin, brand, model, year, tags` (in any
order; `year` and `tags` may be empty or left out); tags within the cell are
separated by `;`:

    vin,brand,model,year,tags
    WVWZZZ1JZXW000001,volta,E1,2025,fleet:berlin;lease
    WVWZZZ1JZXW000002,volta,E1,,

Rows go to `POST /api/v1/vehicles/batch` in batches of up to 1,000. A bad row (one
the file itself gets wrong, or one the server refuses: invalid VIN, unknown brand,
a duplicate, a VIN already registered) is reported with its line number and the
others are registered. The secrets are written once, as each batch returns, to a
file created with mode 0600 that must not exist yet: they are shown nowhere else,
and a second import must not overwrite the first one's.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from carcloud.client import ApiClient
from carcloud.errors import ConfigError, ValidationError

BATCH_SIZE = 1000
TAG_SEPARATOR = ";"
COLUMNS = ("vin", "brand", "model", "year", "tags")
REQUIRED = ("vin", "brand", "model")


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One vehicle of the file, with the line it came from."""

    line: int
    vin: str
    brand: str
    model: str
    model_year: int | None
    tags: tuple[str, ...]

    def body(self) -> dict[str, Any]:
        """The row as the batch API takes it."""
        return {
            "vin": self.vin,
            "brand": self.brand,
            "model": self.model,
            "model_year": self.model_year,
            "tags": list(self.tags),
        }


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that was not registered, and why."""

    line: int
    vin: str
    error: str
    message: str


@dataclass
class ImportReport:
    """What an import did: how many rows were registered, and every row that was not."""

    rows: int = 0
    registered: int = 0
    errors: list[RowError] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "rows": self.rows,
            "registered": self.registered,
            "failed": len(self.errors),
            "errors": [
                {"line": e.line, "vin": e.vin, "error": e.error, "message": e.message}
                for e in self.errors
            ],
        }


def read_vehicle_csv(path: Path) -> tuple[list[CsvRow], list[RowError]]:
    """The rows of a vehicle CSV file, and the rows it gets wrong itself.

    ConfigError when the file cannot be read or has no usable header; a bad row
    (a year that is no number, a missing field, a VIN twice in the file) is an
    error of that row only.
    """
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        try:
            reader = csv.reader(handle)
            header = [name.strip().lower() for name in next(reader, [])]
            position = _columns(header, path)
            rows: list[CsvRow] = []
            errors: list[RowError] = []
            first_line: dict[str, int] = {}
            for cells in reader:
                if not any(cell.strip() for cell in cells):
                    continue
                line = reader.line_num
                cell = {name: cells[i].strip() if i < len(cells) else "" for name, i in position}
                vin = cell["vin"].upper()
                problem = _row_problem(cell)
                if problem is None and vin in first_line:
                    problem = ("duplicate", f"VIN {vin} is also on line {first_line[vin]}")
                if problem is not None:
                    errors.append(RowError(line, vin, *problem))
                    continue
                first_line[vin] = line
                year = cell.get("year", "")
                tags = tuple(t.strip() for t in cell.get("tags", "").split(TAG_SEPARATOR))
                rows.append(
                    CsvRow(line, vin, cell["brand"], cell["model"],
                           int(year) if year else None, tuple(t for t in tags if t))
                )  # fmt: skip
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not a readable CSV file: {exc}") from exc
    return rows, errors


def _columns(header: list[str], path: Path) -> list[tuple[str, int]]:
    """(column, position) of a header; ConfigError naming what is missing or unknown."""
    missing = [name for name in REQUIRED if name not in header]
    unknown = [name for name in header if name not in COLUMNS]
    if missing or unknown:
        what = f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(unknown)}"
        raise ConfigError(
            f"{path}: the header must name the columns {', '.join(COLUMNS)} "
            f"(year and tags may be left out); {what}"
        )
    return [(name, header.index(name)) for name in header]


def _row_problem(cell: dict[str, str]) -> tuple[str, str] | None:
    for name in REQUIRED:
        if not cell[name]:
            return "invalid", f"the {name} is empty"
    year = cell.get("year", "")
    if year and not year.isdigit():
        return "invalid", f"year {year!r} is not a number"
    return None


@contextmanager
def private_new_file(path: Path) -> Iterator[IO[str]]:
    """A new file readable only by its owner (0600); ConfigError if it exists already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            f"{path} exists already; the secrets of an earlier import must not be overwritten, "
            "choose another --secrets-out"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        yield handle


def import_vehicles(
    client: ApiClient,
    rows: list[CsvRow],
    secrets_out: IO[str],
    progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Register `rows` through the batch API; secrets go to `secrets_out` as CSV.

    Each batch's secrets are written and flushed to disk before the next batch is
    sent, so an interrupted import keeps every secret of what it registered.
    """
    if not 1 <= batch_size <= BATCH_SIZE:
        raise ValidationError(f"batch size must be 1 to {BATCH_SIZE}")
    report = ImportReport(rows=len(rows))
    writer = csv.writer(secrets_out)
    writer.writerow(["vin", "mqtt_username", "mqtt_client_id", "mqtt_password"])
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        answer = client.post("/vehicles/batch", {"vehicles": [row.body() for row in batch]})
        for result in answer["results"]:
            row = batch[int(result["row"])]
            if result["registered"]:
                writer.writerow([row.vin, row.vin, row.vin, result["mqtt_password"]])
                report.registered += 1
            else:
                report.errors.append(
                    RowError(row.line, row.vin, result["error"], result["message"])
                )
        secrets_out.flush()
        os.fsync(secrets_out.fileno())
        if progress is not None:
            progress(len(batch))
    return report
