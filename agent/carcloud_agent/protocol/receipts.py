"""Commit receipts, cloud → car on `vehicles/{vin}/receipts`: which telemetry is stored.

    {"ranges": [[1, 40], [42, 42]]}

Sorted inclusive ranges of the `seq`s of this car that the cloud has committed since
its previous receipt (docs/protocol.md, "Commit receipts"). Not cumulative: a car
forgets exactly what a receipt names. Ingest sends them (carcloud/ingest/receipts.py);
the agent and the simulator read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson

from carcloud_agent.errors import ProtocolError
from carcloud_agent.protocol._json import is_int, json_object

__all__ = ["SeqRange", "covered", "decode_receipt", "encode_receipt", "seq_ranges"]

SeqRange = tuple[int, int]


def seq_ranges(seqs: Iterable[int]) -> list[SeqRange]:
    """Sorted inclusive ranges covering exactly `seqs` (duplicates allowed)."""
    ranges: list[list[int]] = []
    for seq in sorted(set(seqs)):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return [(first, last) for first, last in ranges]


def encode_receipt(ranges: Sequence[SeqRange]) -> bytes:
    """The receipt's JSON body."""
    return orjson.dumps({"ranges": [[first, last] for first, last in ranges]})


def decode_receipt(payload: bytes) -> list[SeqRange]:
    """The ranges of a receipt; ProtocolError for anything else (a car ignores it then)."""
    body = json_object(payload, "receipt")
    raw = body.get("ranges")
    if not isinstance(raw, list):
        raise ProtocolError("receipt needs ranges: [[first, last], ...]")
    ranges: list[SeqRange] = []
    for pair in raw:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(is_int(seq) for seq in pair)
            or pair[0] > pair[1]
        ):
            raise ProtocolError(f"receipt range {pair!r} is not [first, last] with first <= last")
        ranges.append((pair[0], pair[1]))
    return ranges


def covered(seq: int, ranges: Sequence[SeqRange]) -> bool:
    """Whether a receipt's ranges name `seq`."""
    return any(first <= seq <= last for first, last in ranges)
