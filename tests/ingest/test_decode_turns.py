"""Ingest decodes a batch in turns: other tasks of the process run between its parts.

A platform process runs ingest beside derive, the API and commands on one event loop;
a batch of a thousand messages decoded in one go would hold every one of them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from carcloud.catalog import default_catalog
from carcloud.ingest.worker import DECODE_TURN, IngestWorker
from carcloud.messaging import topics
from carcloud.storage.sqlite import sqlite_stores
from carcloud.timeutil import format_us

START = 1_790_000_000_000_000
VIN = "WVWZZZ1JZXW000001"


def _message(index: int) -> Msg:
    subject = topics.nats_subject(VIN, topics.TELEMETRY)
    if index % 97 == 0:
        return Msg(None, subject=subject, data=b"{not json")  # type: ignore[arg-type]
    if index % 89 == 0:
        subject = "vehicles.not-a-vin.telemetry"
    signals: dict[str, object] = {"Vehicle.Speed": float(index % 120)}
    if index % 83 == 0:
        signals["Vehicle.NoSuchSignal"] = 1
    body = {"seq": index, "ts": format_us(START + index * 1_000_000), "signals": signals}
    return Msg(None, subject=subject, data=json.dumps(body).encode())  # type: ignore[arg-type]


def test_a_batch_decoded_in_turns_is_decoded_the_same_and_lets_other_tasks_run(
    tmp_path: Path,
) -> None:
    batch = [_message(index) for index in range(1, 1001)]

    async def scenario() -> None:
        stores = sqlite_stores(tmp_path / "carcloud.db")
        try:
            # Decoding needs no connection: a client that is never connected.
            worker = IngestWorker(NATS(), stores.telemetry, default_catalog())
            turns = 0
            decoding = True

            async def other_task() -> None:
                nonlocal turns
                while decoding:
                    turns += 1
                    await asyncio.sleep(0)

            other = asyncio.create_task(other_task())
            await asyncio.sleep(0)
            turns = 0
            messages, letters, receipted = await worker.decode_in_turns(batch)
            decoding = False
            await other
            assert turns >= len(batch) // DECODE_TURN - 1

            # One receipt time for the whole batch, as when it is decoded at once.
            assert {message.received_at for message in messages} == {messages[0].received_at}
            at_once = worker.decode_batch(batch, messages[0].received_at)
            assert messages == at_once[0]
            assert [(letter.subject, letter.reason) for letter in letters] == [
                (letter.subject, letter.reason) for letter in at_once[1]
            ]
            assert receipted == at_once[2]
            # What was valid is all there; what was not says why.
            assert len(messages) == 1000 - 10 - 11  # bad JSON (10), wrong subject (11)
            assert any("Vehicle.NoSuchSignal" in letter.reason for letter in letters)
            assert sum("vehicles.not-a-vin" in letter.subject for letter in letters) == 11
        finally:
            await stores.close()

    asyncio.run(scenario())
