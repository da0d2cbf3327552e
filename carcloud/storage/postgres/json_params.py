"""A batch's rows as one JSON parameter of a statement, instead of an array per column.

    INSERT INTO t (a, b, doc) SELECT {json_fields("bigint", "bigint", "value")}
    FROM {JSONB_ELEMENTS} …          -- with json_rows([(1, 2, {...}), …]) as $1

asyncpg checks and encodes every element of an array parameter in Python (an
`isinstance` against `collections.abc` classes each): for a batch of 1,000 messages
that cost more than the rest of the write. One JSON string is encoded by orjson in C.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

# The elements `e` of the statement's first parameter, a `json_rows` array. As `json`
# PostgreSQL only checks the syntax, as `jsonb` it builds a binary tree with a numeric
# for every number (1,000 rows of 20 signals: 13 ms against 48 ms); so `json` unless the
# statement stores an element's JSON value in a `jsonb` column (which must parse it
# anyway, once).
JSON_ELEMENTS = "json_array_elements($1::json) AS e"
JSONB_ELEMENTS = "jsonb_array_elements($1::jsonb) AS e"


def json_rows(rows: Sequence[Any]) -> str:
    """Rows (or values) as one JSON array, the parameter of a statement that reads them
    back with `json_fields` from `JSON_ELEMENTS` or `JSONB_ELEMENTS`. One string instead
    of an array per column: asyncpg checks and encodes every element of an array
    parameter, which cost more Python time per batch than the whole merge."""
    return orjson.dumps(rows).decode()


def json_fields(*types: str) -> str:
    """The fields of `e`, an element of `json_rows`, in the given SQL types (`value`: the
    JSON value itself, of the elements' type)."""
    return ", ".join(
        f"e -> {index}" if kind == "value" else f"(e ->> {index})::{kind}"
        for index, kind in enumerate(types)
    )
