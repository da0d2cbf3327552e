"""The agent's outbox: durable, bounded, ordered, and honest about what it dropped."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carcloud_agent.buffer import PRIORITY_CONTROL, Outbox


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_drains_in_order_and_forgets_only_what_was_acknowledged(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    for n in range(10):
        box.put("vehicles/V/telemetry", f"m{n}".encode())
    first = box.peek(4)
    assert [m.payload for m in first] == [b"m0", b"m1", b"m2", b"m3"]
    box.acknowledge([m.id for m in first[:2]])
    assert [m.payload for m in box.peek(3)] == [b"m2", b"m3", b"m4"]
    assert box.stats().depth == 8


def test_control_messages_drain_before_telemetry(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    box.put("t", b"telemetry-1")
    box.put("r", b"result", priority=PRIORITY_CONTROL)
    box.put("t", b"telemetry-2")
    assert [m.payload for m in box.peek(3)] == [b"result", b"telemetry-1", b"telemetry-2"]


def test_size_bound_drops_the_oldest_first_and_counts_it(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", max_bytes=1000)
    for n in range(30):
        box.put("t", f"{n:03d}".encode() * 25)  # 75 bytes each
    stats = box.stats()
    assert stats.bytes <= 1000
    assert stats.dropped_for_size == 30 - stats.depth
    kept = [int(m.payload[:3]) for m in box.peek(100)]
    assert kept == list(range(30 - stats.depth, 30))  # the newest survive, in order


def test_size_bound_spares_control_messages(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", max_bytes=300)
    box.put("r", b"R" * 100, priority=PRIORITY_CONTROL)
    for _ in range(10):
        box.put("t", b"T" * 100)
    assert b"R" * 100 in [m.payload for m in box.peek(10)]


def test_age_bound_drops_old_messages_and_counts_them(tmp_path: Path) -> None:
    clock = Clock()
    box = Outbox(tmp_path / "outbox.db", max_age_s=3600, clock=clock)
    box.put("t", b"old")
    clock.now += 7200
    box.put("t", b"new")
    assert [m.payload for m in box.peek(10)] == [b"new"]
    assert box.stats().dropped_for_age == 1
    assert box.stats().oldest_age_s == 0


def test_everything_survives_a_reopen_with_counters(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", max_bytes=200)
    for n in range(5):
        box.put("t", bytes([n]) * 60)
    seq = [box.next_sequence() for _ in range(3)]
    before = box.stats()
    box.close()
    again = Outbox(tmp_path / "outbox.db", max_bytes=200)
    after = again.stats()
    assert (after.depth, after.bytes, after.dropped_for_size) == (
        before.depth,
        before.bytes,
        before.dropped_for_size,
    )
    assert before.dropped_for_size == 2
    assert again.next_sequence() == seq[-1] + 1
    again.close()


WRITER = """
import sys
from pathlib import Path
from carcloud_agent.buffer import Outbox
box = Outbox(Path(sys.argv[1]))
n = 0
while True:
    box.put("vehicles/V/telemetry", b"%08d" % n + b"x" * 200)
    print(n, flush=True)
    n += 1
"""


def test_a_kill_9_mid_write_loses_nothing_that_was_accepted(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    time.sleep(1.5)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    accepted = [int(line) for line in writer.stdout.read().split()]
    writer.stdout.close()
    assert len(accepted) > 50
    box = Outbox(path)
    stored = [int(m.payload[:8]) for m in box.peek(1_000_000)]
    # Every put that returned is there, in order; at most the one in flight is extra.
    assert stored[: len(accepted)] == accepted
    assert len(stored) - len(accepted) in (0, 1)
    box.close()


def test_a_backlog_travels_in_batches_that_keep_order_and_size() -> None:
    import gzip

    import orjson

    from carcloud_agent.buffer import Outgoing
    from carcloud_agent.runtime import BATCH_MAX_BYTES, batch_payload, group_backlog

    topic = "vehicles/V/telemetry"

    def telemetry(n: int, pad: int = 0) -> Outgoing:
        body = {"seq": n, "ts": f"2026-01-01T00:00:{n:02d}Z", "signals": {"Vehicle.Speed": n}}
        raw = orjson.dumps({**body, "pad": "x" * pad}) if pad else orjson.dumps(body)
        return Outgoing(n, topic, gzip.compress(raw) if n % 2 else raw, 0, 0.0)

    live = group_backlog([telemetry(1), telemetry(2)], topic)
    assert [[m.id for m in g] for g in live] == [[1], [2]]  # live data goes as it is
    result = Outgoing(99, "vehicles/V/commands/c/result", b"{}", 10, 0.0)
    messages = (
        [telemetry(n) for n in range(1, 21)] + [result] + [telemetry(n) for n in range(21, 25)]
    )
    groups = group_backlog(messages, topic)
    assert [[m.id for m in g] for g in groups] == [list(range(1, 21)), [99], [21], [22], [23], [24]]
    body = orjson.loads(batch_payload(groups[0], seq=1000))
    assert body["seq"] == 1000
    assert [s["signals"]["Vehicle.Speed"] for s in body["samples"]] == list(range(1, 21))
    big = [telemetry(n, pad=10_000) for n in range(1, 21)]
    for group in group_backlog(big, topic):
        assert len(batch_payload(group, 1)) <= BATCH_MAX_BYTES + 1024


def test_live_data_goes_ahead_of_a_backlog(tmp_path: Path) -> None:
    from carcloud_agent.config import AgentConfig
    from carcloud_agent.runtime import Agent

    config = AgentConfig(
        vin="WVWZZZ1JZXW000001", secret="x", buffer_path=tmp_path / "outbox.db",
        source={"kind": "simulator", "interval_s": 1.0},
    )  # fmt: skip
    agent = Agent(config)
    for _ in range(3):
        agent.sample()  # offline: the backlog
    agent.connected.set()
    agent.sample()  # live
    order = [m.priority for m in agent.outbox.peek(10)]
    assert order == [1, 0, 0, 0]
    agent.outbox.close()


def test_memos_are_kept_with_their_messages_or_not_at_all(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", max_bytes=100)
    box.put_many([("t", b"a")], memos={"clock_ms": 1})
    box.put_many([], memos={"clock_ms": 2})  # a sample that no campaign sends
    assert box.recall("clock_ms") == 2

    def fail() -> None:
        raise OSError("disk full")

    box._enforce_bounds = fail  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk full"):
        box.put_many([("t", b"b")], memos={"clock_ms": 3})
    assert box.recall("clock_ms") == 2  # neither the memo nor the message
    assert [m.payload for m in box.peek(10)] == [b"a"]
    assert box.stats().bytes == 1
    box.close()


def test_a_power_loss_while_keeping_a_sample_resumes_the_clock_without_a_gap(
    tmp_path: Path,
) -> None:
    import gzip

    import orjson

    from carcloud.timeutil import parse_rfc3339_us
    from carcloud_agent.config import AgentConfig
    from carcloud_agent.runtime import Agent

    config = AgentConfig(
        vin="WVWZZZ1JZXW000001", secret="x", buffer_path=tmp_path / "outbox.db",
        source={"kind": "simulator", "interval_s": 1.0, "speedup": 60.0},
    )  # fmt: skip
    agent = Agent(config)
    for _ in range(3):
        agent.sample()

    def power_loss(*args: object, **kwargs: object) -> None:
        raise SystemExit("the car lost power")

    agent.outbox.put_many = power_loss  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        agent.sample()  # the source moved on, but nothing of this sample was kept
    agent.outbox.close()
    again = Agent(config)
    for _ in range(2):
        again.sample()
    times = [
        parse_rfc3339_us(
            orjson.loads(gzip.decompress(m.payload) if m.payload[:2] == b"\x1f\x8b" else m.payload)[
                "ts"
            ]
        )
        for m in again.outbox.peek(10)
    ]
    again.outbox.close()
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [60_000_000] * 4


def test_telemetry_waits_for_its_receipt_not_its_puback(tmp_path: Path) -> None:
    clock = Clock()
    box = Outbox(tmp_path / "outbox.db", clock=clock)
    for n in range(6):
        box.put("vehicles/V/telemetry", f"m{n}".encode())
    sent = box.peek(6)
    # m0 and m1 went alone under their own seqs; m2..m5 as one batch under seq 40.
    box.mark_sent([(1, [sent[0].id]), (2, [sent[1].id]), (40, [m.id for m in sent[2:]])])
    assert box.peek(10) == []  # sent: out of the drain, still kept
    assert box.stats().depth == 6
    assert box.oldest_unreceipted() == clock.now
    assert box.receipted([(2, 2), (40, 41)]) == 5
    assert box.stats().depth == 1
    assert box.receipted([(7, 9)]) == 0
    clock.now += 30
    assert box.requeue(sent_before=clock.now - 60) == 0  # not overdue yet
    assert box.requeue(sent_before=clock.now - 10) == 1  # overdue: drained again
    assert [m.payload for m in box.peek(10)] == [b"m0"]
    assert box.oldest_unreceipted() is None
    # A late receipt of the seq it was sent under still counts.
    assert box.receipted([(1, 1)]) == 1
    assert box.stats().depth == 0 and box.stats().bytes == 0


def test_everything_unreceipted_goes_again_after_a_reconnect(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    box.put("vehicles/V/telemetry", b"m0")
    box.put("vehicles/V/telemetry", b"m1")
    box.mark_sent([(1, [m.id for m in box.peek(2)])])
    box.close()
    box = Outbox(tmp_path / "outbox.db")  # a restart keeps what is sent but unreceipted
    assert box.peek(2) == []
    assert box.requeue() == 2
    assert [m.payload for m in box.peek(2)] == [b"m0", b"m1"]


def test_an_outbox_from_before_receipts_gains_its_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "outbox.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, priority INTEGER NOT "
            "NULL, created_at REAL NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL)"
        )
        conn.execute("INSERT INTO outbox VALUES (1, 0, 1.0, 't', x'6d30')")
    conn.close()
    box = Outbox(path, max_age_s=10**12)
    assert [m.payload for m in box.peek(1)] == [b"m0"]
    box.mark_sent([(5, [1])])
    assert box.receipted([(5, 5)]) == 1


def test_unreceipted_telemetry_goes_again_after_15_30_60_120_s_like_the_simulator(
    tmp_path: Path,
) -> None:
    """A platform that is behind gets the window again less and less often, not every 15 s;
    a receipt that names something starts the wait over."""
    from carcloud_agent.config import AgentConfig
    from carcloud_agent.runtime import Agent

    config = AgentConfig(
        vin="WVWZZZ1JZXW000001", secret="x", buffer_path=tmp_path / "outbox.db",
        source={"kind": "simulator", "interval_s": 1.0}, receipt_timeout_s=15.0,
    )  # fmt: skip
    agent = Agent(config)
    clock = Clock()
    agent.outbox.close()
    agent.outbox = Outbox(tmp_path / "outbox.db", clock=clock)
    agent.outbox.put("vehicles/V/telemetry", b"m0")

    def send() -> None:
        agent.outbox.mark_sent([(1, [m.id for m in agent.outbox.peek(10)])])

    send()
    start = clock.now
    resends = []
    for second in range(1, 400):
        now = start + second
        agent._requeue_overdue(now)
        if agent.outbox.peek(10):  # queued again: the drain sends it at once
            resends.append(second)
            clock.now = now
            send()
    assert [b - a for a, b in zip([0, *resends], resends, strict=False)] == [16, 31, 61, 121, 121]
    agent.on_receipt([(1, 1)])  # the platform caught up
    assert agent.receipt_wait_s() == 15.0
    agent.outbox.close()
