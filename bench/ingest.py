"""Ingest benchmark: MQTT QoS 1 telemetry of 20 signals per message, end to end.

    python bench/ingest.py [--vehicles 50] [--messages 40000] [--workers 1]
                           [--rate 2000] [--latency-seconds 20] [--receipts on|off|both]

Runs a real `carcloud up` (nats-server + SQLite) on free ports with its ingest
workers as separate processes, and K MQTT connections publishing QoS 1. Prints:

  baseline   raw NATS JetStream QoS 1 store rate: the same publishers, no carcloud
             workers; time until the TELEMETRY stream holds every message
  drain      ingest alone: the stored backlog, committed to SQLite by the workers
  end-to-end publish and ingest at once: first publish until the last message is
             committed and queryable
  latency    publish-to-queryable p50/p99 at a fixed offered load (default 2,000 msg/s)

--database postgresql://USER@HOST/DB compares backends in one run instead: for SQLite
and then PostgreSQL (a database of its own on that server, created and dropped by
the bench), a fresh platform, the raw JetStream baseline, then for each of
--worker-counts (default 1,2,4) ingest processes the drain of a backlog and end to
end (receipts on). No latency phase.

--receipts both runs the end-to-end phase without and with commit receipts
(`receipt_interval_ms` 0 and 1000 for the ingest workers, cars subscribed to their
receipts), alternating `--rounds` times, and prints both rates and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from carcloud.runtime.launcher import PlatformProcess
from carcloud_agent.mqtt import MqttClient

SIGNALS = {
    "Vehicle.Speed": 87.5,
    "Vehicle.CurrentLocation.Latitude": 52.5208,
    "Vehicle.CurrentLocation.Longitude": 13.4094,
    "Vehicle.CurrentLocation.Heading": 181.0,
    "Vehicle.CurrentLocation.Altitude": 34.0,
    "Vehicle.TraveledDistance": 12345.6,
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 64.2,
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed": 64.0,
    "Vehicle.Powertrain.Range": 251000,
    "Vehicle.Powertrain.TractionBattery.Charging.IsCharging": False,
    "Vehicle.Cabin.HVAC.AmbientAirTemperature": 21.5,
    "Vehicle.Exterior.AirTemperature": 7.0,
    "Vehicle.IsMoving": True,
    "Vehicle.Powertrain.Transmission.CurrentGear": 1,
    "Vehicle.LowVoltageBattery.CurrentVoltage": 14.1,
    "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure": 250,
    "Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.Pressure": 251,
    "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure": 248,
    "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Pressure": 249,
    "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked": True,
}
# Vehicle time near now, so that PostgreSQL rows land in today's history partition.
BASE_TIME = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


class LoadPublisher:
    """One vehicle connection publishing QoS 1 with a bounded window of unacknowledged messages."""

    def __init__(self, host: str, port: int, vin: str, password: str, window: int = 200) -> None:
        self.vin = vin
        self.client = MqttClient(host, port, vin, vin, password, on_message=self._on_message)
        self.window = asyncio.Semaphore(window)
        self.topic = f"vehicles/{vin}/telemetry"
        self.receipts = 0

    def _on_message(self, topic: str, payload: bytes) -> None:
        self.receipts += 1

    async def connect(self) -> None:
        await self.client.connect()
        # As a car does: receipts arrive whenever the ingest workers send them.
        await self.client.subscribe(f"vehicles/{self.vin}/receipts", qos=0)

    async def publish(self, payload: bytes) -> None:
        await self.window.acquire()
        done = self.client.publish_nowait(self.topic, payload)
        done.add_done_callback(lambda _: self.window.release())

    async def close(self) -> None:
        await self.client.disconnect()


def payload(seq: int) -> bytes:
    """A canonical message; the vehicle time is unique per (vehicle, seq)."""
    ts = (BASE_TIME + timedelta(milliseconds=seq)).isoformat().replace("+00:00", "Z")
    return b'{"seq":%d,"ts":"%s","signals":%s}' % (seq, ts.encode(), SIGNALS_JSON)


SIGNALS_JSON = json.dumps(SIGNALS, separators=(",", ":")).encode()


def spawn_ingest(
    platform: PlatformProcess, count: int, receipts: bool, database: str | None = None
) -> list[subprocess.Popen[bytes]]:
    """Ingest worker processes, with commit receipts or without."""
    env = {**os.environ, "CARCLOUD_RECEIPT_INTERVAL_MS": "1000" if receipts else "0"}
    command = [sys.executable, "-m", "carcloud.cli", "worker", "ingest"]
    if database is not None:
        command += ["--database", database]
    return [
        subprocess.Popen(
            [*command, "--data-dir", str(platform.data_dir)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes so far (Linux /proc): robust to a busy machine."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def nats_server_pid(platform: PlatformProcess) -> list[int]:
    """The embedded nats-server: the child of `carcloud up`."""
    assert platform.process is not None
    pid = platform.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in children.read_text().split()] if children.exists() else []


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGINT)
    for worker in workers:
        worker.wait(30)


def register(platform: PlatformProcess, count: int) -> list[tuple[str, str]]:
    platform.ensure_brand("bench")
    creds = []
    with platform.api() as api:
        for index in range(count):
            vin = f"BENCH{index:012d}"
            created = api.post("/vehicles", {"vin": vin, "brand": "bench", "model": "B1"})
            creds.append((vin, created["mqtt_password"]))
    return creds


def stored_messages(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM telemetry_messages").fetchone()[0])


class PostgresCount:
    """Committed messages in a PostgreSQL database, for polling from a thread."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn = self.loop.run_until_complete(asyncpg.connect(url))

    def __call__(self) -> int:
        query = self.conn.fetchval("SELECT COUNT(*) FROM telemetry_messages")
        return int(self.loop.run_until_complete(query))

    def backends(self) -> list[int]:
        """The server processes of this database (its backends and autovacuum workers):
        the CPU they spend is the database's cost. Other databases on the same server
        (other users' tests on a shared machine) and the server's shared processes (WAL
        writer, checkpointer) are not counted."""
        query = self.conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return [int(row[0]) for row in self.loop.run_until_complete(query)]

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


async def backend_run(args: argparse.Namespace, backend: str, url: str | None) -> dict[str, object]:
    """One backend: a fresh platform, its baseline, then drain and end to end per worker count."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"carcloud-bench-{backend}-")) / "data"
    extra = ["--ingest-workers", "0", *(["--database", url] if url else [])]
    platform = PlatformProcess(data_dir, extra_args=extra)
    platform.start()
    workers: list[subprocess.Popen[bytes]] = []
    count: PostgresCount | None = None
    result: dict[str, object] = {}
    try:
        publishers = await connect_all(platform, register(platform, args.vehicles))
        per_vehicle = args.messages // args.vehicles
        total = per_vehicle * args.vehicles
        stored: Callable[[], int]
        if url:
            count = await asyncio.to_thread(PostgresCount, url)
            stored = count
        else:
            stored = functools.partial(stored_messages, data_dir / "carcloud.db")

        first_seq = 1
        baseline = await stream_rate(platform, publishers, first_seq, per_vehicle)
        first_seq += per_vehicle
        result["baseline_jetstream_msgs_per_s"] = round(baseline)
        print(f"{backend:<10} baseline raw JetStream QoS 1 store: {baseline:9.0f} msg/s")
        committed = 0
        counts = [int(n) for n in args.worker_counts.split(",")]
        for processes in counts:
            started = time.perf_counter()
            workers = spawn_ingest(platform, processes, True, url)
            committed += total
            done = await asyncio.to_thread(wait_until, stored, committed, 600, 0.1)
            drain = total / (done - started)
            await asyncio.sleep(1.0)
            groups = {
                "worker": [worker.pid for worker in workers],
                "nats_server": nats_server_pid(platform),
                "postgres": await asyncio.to_thread(count.backends) if count else [],
                "platform": [platform.process.pid] if platform.process else [],
            }
            cpu_before = {name: cpu_seconds(pids) for name, pids in groups.items()}
            start = await blast(publishers, first_seq, per_vehicle)
            first_seq += per_vehicle
            committed += total
            done = await asyncio.to_thread(wait_until, stored, committed, 600, 0.1)
            e2e = total / (done - start)
            if count is not None:
                # Backends that connected during the phase: all their CPU is the phase's.
                started_pids = set(groups["postgres"])
                groups["postgres"] += [
                    pid
                    for pid in await asyncio.to_thread(count.backends)
                    if pid not in started_pids
                ]
            cpu_us = {
                name: round((cpu_seconds(pids) - cpu_before[name]) * 1e6 / total, 1)
                for name, pids in groups.items()
            }
            stop_workers(workers)
            workers = []
            result[f"workers_{processes}"] = {
                "drain_msgs_per_s": round(drain),
                "end_to_end_msgs_per_s": round(e2e),
                "end_to_end_signal_values_per_s": round(e2e * len(SIGNALS)),
                "end_to_end_vs_baseline": round(e2e / baseline, 3),
                "cpu_us_per_msg": cpu_us,
                "load_average": os.getloadavg()[0],
            }
            print(
                f"{backend:<10} {processes} ingest process(es): drain {drain:7.0f} msg/s "
                f"(with start-up), end to end {e2e:7.0f} msg/s ({e2e * len(SIGNALS):.0f} "
                f"values/s, {e2e / baseline:.2f} × baseline); CPU µs/msg {cpu_us}, "
                f"load average {os.getloadavg()[0]:.1f}"
            )
            if processes != counts[-1]:
                # The next worker count starts on a backlog of its own: publish it now.
                await blast(publishers, first_seq, per_vehicle)
                first_seq += per_vehicle
        for publisher in publishers:
            await publisher.close()
    finally:
        stop_workers(workers)
        if count is not None:
            await asyncio.to_thread(count.close)
        platform.stop()
    return result


async def compare(args: argparse.Namespace) -> dict[str, object]:
    """SQLite and PostgreSQL, each with 1, 2 and 4 ingest processes, in one run."""
    results: dict[str, object] = {
        "vehicles": args.vehicles,
        "messages_per_phase": args.messages,
        "signals_per_message": len(SIGNALS),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg()[0],
    }
    results["sqlite"] = await backend_run(args, "sqlite", None)
    name = f"carcloud_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(args.database)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"{args.database.rsplit('/', 1)[0]}/{name}"
        results["postgresql"] = await backend_run(args, "postgresql", url)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    results["load_average_at_end"] = os.getloadavg()[0]
    return results


async def jetstream_baseline(vehicles: int = 50, messages: int = 40_000) -> float:
    """This machine's raw JetStream QoS 1 store rate now (msg/s), on a platform of its own
    without ingest: the machine-speed yardstick other benches print beside their figures
    (these machines are shared, and a ratio holds where an absolute time does not)."""
    data_dir = Path(tempfile.mkdtemp(prefix="carcloud-baseline-")) / "data"
    platform = PlatformProcess(data_dir, extra_args=["--ingest-workers", "0"])
    platform.start()
    try:
        publishers = await connect_all(platform, register(platform, vehicles))
        rate = await stream_rate(platform, publishers, 1, messages // vehicles)
        for publisher in publishers:
            await publisher.close()
        return rate
    finally:
        platform.stop()
        shutil.rmtree(data_dir.parent, ignore_errors=True)


def stream_messages(platform: PlatformProcess) -> int:
    with platform.api() as api:
        return int(api.get("/status")["ingest"]["stream_messages"])


def wait_until(check: object, target: int, timeout: float, poll: float = 0.05) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if check() >= target:  # type: ignore[operator]
            return time.perf_counter()
        time.sleep(poll)
    raise TimeoutError(f"only {check()} of {target} after {timeout} s")  # type: ignore[operator]


async def connect_all(
    platform: PlatformProcess, creds: list[tuple[str, str]]
) -> list[LoadPublisher]:
    publishers = [LoadPublisher("127.0.0.1", platform.mqtt_port, vin, pw) for vin, pw in creds]
    for publisher in publishers:
        await publisher.connect()
    return publishers


async def stream_rate(
    platform: PlatformProcess, publishers: list[LoadPublisher], first_seq: int, per_vehicle: int
) -> float:
    """The raw JetStream QoS 1 store rate (msg/s): `per_vehicle` messages from each
    publisher, timed until the TELEMETRY stream holds them all (no ingest running)."""
    total = per_vehicle * len(publishers)
    start = await blast(publishers, first_seq, per_vehicle)
    done = await asyncio.to_thread(wait_until, lambda: stream_messages(platform), total, 300)
    return total / (done - start)


async def blast(publishers: list[LoadPublisher], first_seq: int, per_vehicle: int) -> float:
    """Publish as fast as the window allows; returns the start time."""
    start = time.perf_counter()

    async def one(publisher: LoadPublisher) -> None:
        for seq in range(first_seq, first_seq + per_vehicle):
            await publisher.publish(payload(seq))

    await asyncio.gather(*(one(p) for p in publishers))
    return start


async def paced(
    publishers: list[LoadPublisher], first_seq: int, rate: float, seconds: float
) -> dict[tuple[str, int], float]:
    """Publish at a fixed total rate, round-robin over vehicles; returns send times."""
    sent: dict[tuple[str, int], float] = {}
    total = int(rate * seconds)
    start = time.perf_counter()
    for index in range(total):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        publisher = publishers[index % len(publishers)]
        seq = first_seq + index // len(publishers)
        sent[(publisher.vin, seq)] = time.perf_counter()
        await publisher.publish(payload(seq))
    return sent


def poll_queryable(
    db: Path, vins: list[str], sent: dict[tuple[str, int], float], stop_after: float
) -> dict[tuple[str, int], float]:
    """Watch each vehicle's highest committed seq; record when each message became visible."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    ids = dict(conn.execute("SELECT vin, id FROM vehicles").fetchall())
    pending: dict[str, list[int]] = {vin: [] for vin in vins}
    for vin, seq in sorted(sent, key=lambda key: key[1]):
        pending[vin].append(seq)
    seen: dict[tuple[str, int], float] = {}
    deadline = time.perf_counter() + stop_after
    while any(pending.values()) and time.perf_counter() < deadline:
        for vin, seqs in pending.items():
            if not seqs:
                continue
            row = conn.execute(
                "SELECT MAX(seq) FROM telemetry_messages WHERE vehicle_id = ?", (ids[vin],)
            ).fetchone()
            top = row[0] or 0
            now = time.perf_counter()
            while seqs and seqs[0] <= top:
                seen[(vin, seqs.pop(0))] = now
        time.sleep(0.01)
    conn.close()
    return seen


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main(args: argparse.Namespace) -> dict[str, object]:
    data_dir = Path(tempfile.mkdtemp(prefix="carcloud-bench-")) / "data"
    platform = PlatformProcess(data_dir, extra_args=["--ingest-workers", "0"])
    platform.start()
    workers: list[subprocess.Popen[bytes]] = []
    results: dict[str, object] = {
        "vehicles": args.vehicles,
        "messages": args.messages,
        "signals_per_message": len(SIGNALS),
        "ingest_worker_processes": args.workers,
        "cpus": os.cpu_count(),
    }
    try:
        creds = register(platform, args.vehicles)
        publishers = await connect_all(platform, creds)
        per_vehicle = args.messages // args.vehicles
        total = per_vehicle * args.vehicles
        db = data_dir / "carcloud.db"

        # (b) baseline: raw JetStream QoS 1 store rate, no carcloud workers.
        baseline = await stream_rate(platform, publishers, 1, per_vehicle)
        results["baseline_jetstream_msgs_per_s"] = round(baseline)
        print(f"baseline   raw JetStream QoS 1 store: {baseline:9.0f} msg/s ({total} messages)")

        # drain: ingest alone commits the stored backlog.
        modes = {"on": [True], "off": [False], "both": [False, True] * args.rounds}[args.receipts]
        start = time.perf_counter()
        workers = spawn_ingest(platform, args.workers, modes[0])
        done = await asyncio.to_thread(wait_until, lambda: stored_messages(db), total, 600, 0.1)
        drain = total / (done - start)
        results["drain_msgs_per_s"] = round(drain)
        print(
            f"drain      ingest of the backlog:     {drain:9.0f} msg/s "
            f"({drain * len(SIGNALS):.0f} signal values/s, includes worker start-up)"
        )

        # (a) end to end: publish and ingest at the same time, per receipts mode.
        rates: dict[bool, list[float]] = {False: [], True: []}
        cpu: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        committed = total
        first_seq = per_vehicle + 1
        current = modes[0]
        for receipts in modes:
            if receipts != current:
                stop_workers(workers)
                workers = spawn_ingest(platform, args.workers, receipts)
                current = receipts
                await asyncio.sleep(2.0)  # worker start-up stays out of the measurement
            before = sum(publisher.receipts for publisher in publishers)
            worker_pids = [worker.pid for worker in workers]
            cpu_before = (cpu_seconds(worker_pids), cpu_seconds(nats_server_pid(platform)))
            start = await blast(publishers, first_seq, per_vehicle)
            committed += total
            first_seq += per_vehicle
            done = await asyncio.to_thread(wait_until, lambda: stored_messages(db), committed, 600)
            e2e = total / (done - start)
            rates[receipts].append(e2e)
            await asyncio.sleep(1.5)  # the last receipts arrive
            worker_ms = (cpu_seconds(worker_pids) - cpu_before[0]) * 1e6 / total
            server_ms = (cpu_seconds(nats_server_pid(platform)) - cpu_before[1]) * 1e6 / total
            cpu[receipts].append((worker_ms, server_ms))
            got = sum(publisher.receipts for publisher in publishers) - before
            label = "with receipts   " if receipts else "without receipts"
            print(
                f"end-to-end {label} publish → committed: {e2e:9.0f} msg/s "
                f"({e2e * len(SIGNALS):.0f} signal values/s), {e2e / baseline:.2f} × baseline, "
                f"{got} receipts received; CPU per message: worker {worker_ms:.1f} µs, "
                f"nats-server {server_ms:.1f} µs"
            )
        measured = rates[True] or rates[False]
        e2e = statistics.median(measured)
        results["end_to_end_msgs_per_s"] = round(e2e)
        results["end_to_end_signal_values_per_s"] = round(e2e * len(SIGNALS))
        results["end_to_end_vs_baseline"] = round(e2e / baseline, 3)
        if rates[True] and rates[False]:
            on, off = statistics.median(rates[True]), statistics.median(rates[False])
            results["end_to_end_receipts_msgs_per_s"] = [round(rate) for rate in rates[True]]
            results["end_to_end_no_receipts_msgs_per_s"] = [round(rate) for rate in rates[False]]
            results["receipts_cost"] = round(1 - on / off, 3)
            print(
                f"receipts   median {on:.0f} msg/s with, {off:.0f} msg/s without: "
                f"{on / off:.3f} × ({100 * (1 - on / off):+.1f} % cost)"
            )
            for index, name in enumerate(("worker", "nats_server")):
                with_cpu = statistics.median(sample[index] for sample in cpu[True])
                without_cpu = statistics.median(sample[index] for sample in cpu[False])
                results[f"{name}_cpu_us_per_msg"] = {
                    "with": round(with_cpu, 1),
                    "without": round(without_cpu, 1),
                }
                print(
                    f"receipts   {name} CPU per message: median {with_cpu:.1f} µs with, "
                    f"{without_cpu:.1f} µs without ({100 * (with_cpu / without_cpu - 1):+.1f} %)"
                )
        per_vehicle_used = first_seq - 1

        # (c) latency at a fixed offered load.
        first = per_vehicle_used + 1
        vins = [vin for vin, _ in creds]
        expected = {
            (vins[i % len(vins)], first + i // len(vins)): 0.0
            for i in range(int(args.rate * args.latency_seconds))
        }
        watcher = asyncio.create_task(
            asyncio.to_thread(poll_queryable, db, vins, expected, args.latency_seconds + 30)
        )
        sent_holder = await paced(publishers, first, args.rate, args.latency_seconds)
        seen = await watcher
        latencies = [
            (seen[key] - sent_at) * 1000 for key, sent_at in sent_holder.items() if key in seen
        ]
        missing = len(sent_holder) - len(latencies)
        results["latency_offered_msgs_per_s"] = args.rate
        results["latency_p50_ms"] = round(statistics.median(latencies), 1)
        results["latency_p99_ms"] = round(percentile(latencies, 0.99), 1)
        results["latency_max_ms"] = round(max(latencies), 1)
        results["latency_not_seen"] = missing
        print(
            f"latency    at {args.rate:.0f} msg/s offered: p50 {results['latency_p50_ms']} ms, "
            f"p99 {results['latency_p99_ms']} ms, max {results['latency_max_ms']} ms, "
            f"{missing} not seen"
        )
        for publisher in publishers:
            await publisher.close()
    finally:
        stop_workers(workers)
        platform.stop()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--vehicles", type=int, default=50, help="MQTT connections (default %(default)s)"
    )
    parser.add_argument(
        "--messages", type=int, default=40_000, help="messages per throughput phase"
    )
    parser.add_argument("--workers", type=int, default=1, help="ingest worker processes")
    parser.add_argument(
        "--rate", type=float, default=2000, help="offered load for the latency phase"
    )
    parser.add_argument(
        "--latency-seconds", type=float, default=20, help="length of the latency phase"
    )
    parser.add_argument(
        "--receipts",
        choices=("on", "off", "both"),
        default="on",
        help="commit receipts in the end-to-end phase: on, off, or both compared",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="with --receipts both: off/on pairs to run"
    )
    parser.add_argument(
        "--database",
        help="compare SQLite with PostgreSQL on this server (postgresql://USER@HOST/DB; "
        "the bench creates and drops a database of its own)",
    )
    parser.add_argument(
        "--worker-counts", default="1,2,4", help="with --database: ingest processes to try"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    arguments = parser.parse_args()
    outcome = asyncio.run(compare(arguments) if arguments.database else main(arguments))
    print(json.dumps(outcome, indent=2))
    if arguments.json:
        arguments.json.write_text(json.dumps(outcome, indent=2))
