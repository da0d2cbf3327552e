"""Rows of the productivity tables, shared by both backends: cards and pre-conditioning."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import orjson

from carcloud.productivity.models import (
    CardPurpose,
    Precondition,
    PreconditionKind,
    PreconditionStatus,
    SentCard,
    decode_card,
    encode_card,
)

CARD_COLUMNS = "c.key, c.purpose, c.meeting_id, c.fingerprint, c.card, c.sent_at"
PRECONDITION_COLUMNS = (
    "p.id, p.meeting_id, p.kind, p.params, p.due_at, p.reason, p.status, p.command_id, "
    "p.created_at, p.updated_at"
)


def card_values(card: SentCard) -> tuple[Any, ...]:
    """(key, id, purpose, meeting_id, fingerprint, card, sent_at) as stored."""
    return (
        card.key,
        card.notification.id,
        card.purpose,
        card.meeting_id,
        card.fingerprint,
        encode_card(card.notification).decode(),
        card.sent_at,
    )


def card_of(vin: str, row: Sequence[Any]) -> SentCard:
    """A card from a row of CARD_COLUMNS."""
    return SentCard(
        vin=vin,
        key=row[0],
        purpose=cast(CardPurpose, row[1]),
        meeting_id=row[2],
        fingerprint=row[3],
        notification=decode_card(row[4]),
        sent_at=int(row[5]),
    )


def precondition_of(vin: str, row: Sequence[Any]) -> Precondition:
    """A pre-conditioning from a row of PRECONDITION_COLUMNS."""
    return Precondition(
        id=row[0],
        vin=vin,
        meeting_id=row[1],
        kind=cast(PreconditionKind, row[2]),
        params=orjson.loads(row[3]),
        due_at=int(row[4]),
        reason=row[5],
        status=cast(PreconditionStatus, row[6]),
        command_id=row[7],
        created_at=int(row[8]),
        updated_at=int(row[9]),
    )


def params_json(precondition: Precondition) -> str:
    """The command parameters as stored."""
    return orjson.dumps(precondition.params).decode()
