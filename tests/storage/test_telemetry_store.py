"""TelemetryStore contract: idempotent writes, latest state, history, dead letters."""

from __future__ import annotations

import pytest

from carcloud.errors import NotFoundError
from carcloud.ingest.models import DeadLetter, Sample, TelemetryMessage
from carcloud.ingest.store import TelemetryStore
from carcloud.ingest.worker import INGEST_POLICY
from carcloud.storage import Stores
from tests.storage.conftest import SECOND, VIN


def message(seq: int, ts: int, speed: float, **more: object) -> TelemetryMessage:
    samples = [Sample("Vehicle.Speed", ts, speed)]
    samples += [Sample(path.replace("_", "."), ts, value) for path, value in more.items()]  # type: ignore[arg-type]
    return TelemetryMessage(VIN, seq, ts, ts + 5, tuple(samples))


async def test_redelivered_message_creates_no_duplicate(telemetry: TelemetryStore) -> None:
    batch = [message(1, 10 * SECOND, 50.0), message(2, 11 * SECOND, 52.0)]
    first = await telemetry.write_telemetry(batch, [])
    again = await telemetry.write_telemetry(batch, [])
    assert (first.messages_stored, first.samples_stored) == (2, 2)
    assert (again.messages_stored, again.duplicates, again.samples_stored) == (0, 2, 0)
    assert await telemetry.count_samples(VIN) == 2


async def test_latest_state_keeps_the_newest_vehicle_time(telemetry: TelemetryStore) -> None:
    await telemetry.write_telemetry([message(5, 20 * SECOND, 80.0)], [])
    await telemetry.write_telemetry([message(4, 19 * SECOND, 70.0)], [])  # late arrival, older
    latest = {v.path: v for v in (await telemetry.latest_state(VIN)).values}
    assert latest["Vehicle.Speed"].value == 80.0 and latest["Vehicle.Speed"].ts == 20 * SECOND
    history = await telemetry.history(VIN, "Vehicle.Speed", None, None, 10)
    assert [p.value for p in history] == [70.0, 80.0]


async def test_values_keep_their_types(telemetry: TelemetryStore) -> None:
    msg = TelemetryMessage(
        VIN,
        1,
        SECOND,
        SECOND,
        (
            Sample("Vehicle.IsMoving", SECOND, True),
            Sample("Vehicle.Powertrain.Transmission.CurrentGear", SECOND, 3),
            Sample("Vehicle.LowVoltageSystemState", SECOND, "ON"),
            Sample("Vehicle.Diagnostics.DTCList", SECOND, ["P0A80", "U0100"]),
        ),
    )
    await telemetry.write_telemetry([msg], [])
    latest = {v.path: v.value for v in (await telemetry.latest_state(VIN)).values}
    assert latest == {
        "Vehicle.IsMoving": True,
        "Vehicle.Powertrain.Transmission.CurrentGear": 3,
        "Vehicle.LowVoltageSystemState": "ON",
        "Vehicle.Diagnostics.DTCList": ["P0A80", "U0100"],
    }


async def test_latest_values_reads_only_the_signals_asked_for(telemetry: TelemetryStore) -> None:
    gear, brake = "Vehicle.Powertrain.Transmission.CurrentGear", "Vehicle.Chassis.ParkingBrake"
    first = message(1, 10 * SECOND, 50.0, Vehicle_Powertrain_Transmission_CurrentGear=3)
    await telemetry.write_telemetry([first], [])
    later = TelemetryMessage(VIN, 2, 12 * SECOND, 12 * SECOND + 5, (
        Sample("Vehicle.Speed", 12 * SECOND, 0.0), Sample(f"{brake}.IsEngaged", 12 * SECOND, True),
        Sample("Vehicle.LowVoltageSystemState", 12 * SECOND, "ON"),
    ))  # fmt: skip
    await telemetry.write_telemetry([later], [])
    await telemetry.write_telemetry([message(0, 9 * SECOND, 99.0)], [])  # late, older
    paths = [
        f"{brake}.IsEngaged",
        "Vehicle.Speed",
        "Vehicle.Cabin.Unknown",
        gear,
        "Vehicle.IsMoving",
    ]
    state = await telemetry.latest_values(VIN, paths)
    # Newest of each, in the order asked, with its own time; never reported or unknown: absent.
    assert [(v.path, v.ts, v.value) for v in state.values] == [
        (f"{brake}.IsEngaged", 12 * SECOND, True),
        ("Vehicle.Speed", 12 * SECOND, 0.0),
        (gear, 10 * SECOND, 3),
    ]
    assert state.received_at == (await telemetry.latest_state(VIN)).received_at
    assert (await telemetry.latest_values(VIN, [])).values == ()
    nothing = await telemetry.latest_values("ZZZZZZZZZZZZ99999", ["Vehicle.Speed"])
    assert (nothing.values, nothing.received_at) == ((), None)


async def test_history_range_limit_and_downsampling(telemetry: TelemetryStore) -> None:
    await telemetry.write_telemetry([message(i, i * SECOND, float(i)) for i in range(120)], [])
    window = await telemetry.history(VIN, "Vehicle.Speed", 10 * SECOND, 20 * SECOND, 1000)
    assert [p.value for p in window] == [float(i) for i in range(10, 20)]
    assert len(await telemetry.history(VIN, "Vehicle.Speed", None, None, 5)) == 5
    minutes = await telemetry.history(VIN, "Vehicle.Speed", None, None, 100, bucket_us=60 * SECOND)
    assert [(p.value, p.count) for p in minutes] == [(29.5, 60), (89.5, 60)]


async def test_samples_of_one_instant_in_two_messages_merge(telemetry: TelemetryStore) -> None:
    await telemetry.write_telemetry([message(1, SECOND, 10.0)], [])
    other = TelemetryMessage(VIN, 2, SECOND, SECOND, (Sample("Vehicle.IsMoving", SECOND, True),))
    await telemetry.write_telemetry([other], [])
    assert await telemetry.count_samples(VIN) == 1
    assert [p.value for p in await telemetry.history(VIN, "Vehicle.Speed", None, None, 9)] == [10.0]
    assert [p.value for p in await telemetry.history(VIN, "Vehicle.IsMoving", None, None, 9)] == [
        True
    ]


async def test_unknown_vin_and_dead_letters_are_kept_with_reasons(
    telemetry: TelemetryStore,
) -> None:
    stranger = TelemetryMessage(
        "ZZZZZZZZZZZZ99999", 1, SECOND, SECOND, (Sample("Vehicle.Speed", SECOND, 1.0),)
    )
    letter = DeadLetter(SECOND, f"vehicles.{VIN}.telemetry", VIN, "malformed JSON: x", b"{oops")
    result = await telemetry.write_telemetry(
        [stranger, message(1, SECOND, 3.0)], [letter], INGEST_POLICY
    )
    assert result.messages_stored == 1 and result.unknown_vins == ("ZZZZZZZZZZZZ99999",)
    letters = await telemetry.list_dead_letters(None, None, 10)
    assert {d.reason.split(":")[0] for d in letters} == {
        "malformed JSON",
        "unknown VIN ZZZZZZZZZZZZ99999",
    }
    assert [d.payload for d in await telemetry.list_dead_letters(VIN, "volta", 10)] == [b"{oops"]


async def test_delete_vehicle_removes_its_data(stores: Stores, telemetry: TelemetryStore) -> None:
    await telemetry.write_telemetry([message(1, SECOND, 3.0)], [])
    await stores.registry.delete_vehicle(VIN, "volta")
    assert await telemetry.count_samples() == 0
    with pytest.raises(NotFoundError):
        await stores.registry.get_vehicle(VIN)


async def test_a_backlog_out_of_time_order_keeps_every_time_and_the_newest_value(
    telemetry: TelemetryStore,
) -> None:
    # One message of a car's backlog: samples at 3 s, 1 s, 2 s, then 1 s again with
    # another signal; the same signals at several times.
    backlog = TelemetryMessage(
        VIN,
        7,
        SECOND,
        4 * SECOND,
        (
            Sample("Vehicle.Speed", 3 * SECOND, 30.0),
            Sample("Vehicle.IsMoving", 3 * SECOND, True),
            Sample("Vehicle.Speed", SECOND, 10.0),
            Sample("Vehicle.IsMoving", SECOND, False),
            Sample("Vehicle.Speed", 2 * SECOND, 20.0),
            Sample("Vehicle.Powertrain.Transmission.CurrentGear", SECOND, 2),
        ),
    )
    result = await telemetry.write_telemetry([backlog], [])
    assert (result.messages_stored, result.samples_stored) == (1, 6)
    latest = {v.path: (v.ts, v.value) for v in (await telemetry.latest_state(VIN)).values}
    assert latest == {
        "Vehicle.Speed": (3 * SECOND, 30.0),
        "Vehicle.IsMoving": (3 * SECOND, True),
        "Vehicle.Powertrain.Transmission.CurrentGear": (SECOND, 2),
    }
    speeds = await telemetry.history(VIN, "Vehicle.Speed", None, None, 9)
    assert [(p.ts, p.value) for p in speeds] == [
        (SECOND, 10.0),
        (2 * SECOND, 20.0),
        (3 * SECOND, 30.0),
    ]
    moving = await telemetry.history(VIN, "Vehicle.IsMoving", None, None, 9)
    assert [(p.ts, p.value) for p in moving] == [(SECOND, False), (3 * SECOND, True)]
    assert await telemetry.count_samples(VIN) == 3  # one history row per vehicle time
    minute = await telemetry.history(VIN, "Vehicle.Speed", None, None, 9, bucket_us=60 * SECOND)
    assert [(p.value, p.count) for p in minute] == [(20.0, 3)]
    last = await telemetry.history(VIN, "Vehicle.IsMoving", None, None, 9, bucket_us=60 * SECOND)
    assert [(p.value, p.count) for p in last] == [(True, 2)]
