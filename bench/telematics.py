"""Trip and charging-session detection measured against the simulator's ground truth.

    python bench/telematics.py [--vehicles 50] [--hours 24] [--speedup 288]
                               [--sample-s 10] [--offline-rate 0.5] [--seed 3]
                               [--saturate [--load-cars 20] [--load-rate 3000]]
                               [--ingest-processes 1] [--json out.json]

Starts a real `carcloud up` (nats-server, SQLite, every role including `derive`)
on free ports (with `--ingest-processes N`, N > 0, ingest runs in N `carcloud worker
ingest` processes of their own instead, so that the derive role has the platform
process to itself and the API), and drives a simulated fleet against it with `carcloud simulate
--ground-truth FILE` for HOURS of simulated time at SPEEDUP (each car sends one
message every SAMPLE_S simulated seconds, so `--rate` is SPEEDUP / SAMPLE_S),
with connectivity gaps (their backlog arrives late). When the simulator is done
and the platform has derived everything, it compares the API's trips and charging
sessions with the ground truth:

- matching: per vehicle, a detected and a true trip (session) match when their
  times overlap; pairs are taken by largest overlap first, one to one, so a trip
  detected in two pieces gives one match and one false positive, and two trips
  detected as one give one match and one miss;
- recall: matched / true trips that began and ended while the simulator was
  recording and ended at least MARGIN before it stopped; precision: matched /
  completed detections, leaving out those that overlap only what the simulator
  saw begin before it started or end after it stopped;
- median and p95 relative error of distance and energy over matched pairs;
- derivation lag: for each trip (session) completed, the `trip.completed`
  (`charging.session_completed`) event's time minus the time ingest received
  the telemetry row that completed it (power OFF at its end, or the first row
  `stop_s` after the car came to rest; the session's row with the cable out).
  Ingest stamps `received_at` just before its commit, so this includes ingest's
  own commit; p50/p99/max.

With `--saturate`, extra publishers (LOAD_CARS parked cars, 20 signals a
message, one vehicle second each) add LOAD_RATE messages/s during the middle half
of the fleet's run: the lag is then reported separately for the completions
inside that window (ingest near its full rate) and outside it (the fleet's own
rate), measured in the same run. Throughout the run the bench samples, once a
second, the messages stored and ingest's backlog (`/status`), and reports the
stored rate and the largest backlog inside and outside the window: ingest runs at
its full rate when its backlog grows (it stores less than it is offered).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from carcloud.runtime.launcher import PlatformProcess
from carcloud.sim.truth import read_ground_truth
from carcloud.timeutil import parse_rfc3339_us
from carcloud_agent.mqtt import MqttClient, MqttError

# The machine-speed baseline of the end-to-end bench, measured first.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import jetstream_baseline  # noqa: E402

SECOND = 1_000_000
MARGIN_S = 900  # true items ending this close to the simulator's stop are not counted
STOP_S = 180  # the derive role's default `stop_s`

Item = dict[str, Any]


# ---- matching ---------------------------------------------------------------------------


def span(item: Item) -> tuple[int, int]:
    """(start, end) in epoch microseconds, from the API's or the ground truth's fields."""
    start = item.get("start_at", item.get("start"))
    end = item.get("end_at", item.get("end"))
    return parse_rfc3339_us(str(start), "start"), parse_rfc3339_us(str(end), "end")


def match(truth: list[Item], detected: list[Item]) -> list[tuple[int, int]]:
    """One-to-one pairs (truth index, detected index) by largest time overlap first."""
    pairs = []
    for i, true_item in enumerate(truth):
        t0, t1 = span(true_item)
        for j, found in enumerate(detected):
            d0, d1 = span(found)
            overlap = min(t1, d1) - max(t0, d0)
            if overlap > 0 or (overlap == 0 and t0 == t1 == d0 == d1):
                pairs.append((overlap, i, j))
    pairs.sort(reverse=True)
    used_truth: set[int] = set()
    used_found: set[int] = set()
    matched = []
    for _, i, j in pairs:
        if i not in used_truth and j not in used_found:
            used_truth.add(i)
            used_found.add(j)
            matched.append((i, j))
    return matched


def relative_error(measured: float | None, true: float | None) -> float | None:
    if measured is None or true is None or abs(true) < 1e-6:
        return None
    return abs(measured - true) / abs(true)


def score(
    kind: str,
    truth: dict[str, list[Item]],
    detected: dict[str, list[Item]],
    recorded_until: int,
    value_keys: tuple[tuple[str, str, str], ...],
) -> dict[str, Any]:
    """Precision, recall and figure errors of one kind over the fleet."""
    counted_truth = found_total = matched_total = true_positive = 0
    errors: dict[str, list[float]] = defaultdict(list)
    misses: list[Item] = []
    false_positives: list[Item] = []
    horizon = recorded_until - MARGIN_S * SECOND
    for vin in sorted(set(truth) | set(detected)):
        true_items = truth.get(vin, [])
        found = [d for d in detected.get(vin, []) if d["status"] == "completed"]
        pairs = match(true_items, found)
        by_truth = {i: j for i, j in pairs}
        by_found = {j: i for i, j in pairs}
        for i, item in enumerate(true_items):
            if not item["complete"] or span(item)[1] > horizon:
                continue
            counted_truth += 1
            if i in by_truth:
                matched_total += 1
                pick = found[by_truth[i]]
                for name, true_key, found_key in value_keys:
                    error = relative_error(pick.get(found_key), item.get(true_key))
                    if error is not None and (item.get(true_key) or 0) >= 0.05:
                        errors[name].append(error)
            else:
                misses.append(item)
        for j, item in enumerate(found):
            if j in by_found:
                partner = true_items[by_found[j]]
                if partner["complete"] and span(partner)[1] <= horizon:
                    found_total += 1
                    true_positive += 1
                continue
            if span(item)[1] > horizon or _overlaps_incomplete(item, true_items):
                continue
            found_total += 1
            false_positives.append(item)
    result: dict[str, Any] = {
        "true": counted_truth,
        "detected": found_total,
        "matched": matched_total,
        "recall": matched_total / counted_truth if counted_truth else None,
        "precision": true_positive / found_total if found_total else None,
        "misses": misses[:20],
        "false_positives": false_positives[:20],
    }
    for name, values in errors.items():
        values.sort()
        result[f"{name}_error_median"] = statistics.median(values)
        result[f"{name}_error_p95"] = values[min(len(values) - 1, int(0.95 * len(values)))]
        result[f"{name}_pairs"] = len(values)
    return result


def _overlaps_incomplete(item: Item, truth: list[Item]) -> bool:
    d0, d1 = span(item)
    for true_item in truth:
        t0, t1 = span(true_item)
        if not true_item["complete"] and min(t1, d1) >= max(t0, d0):
            return True
    return False


# ---- the platform's answers ---------------------------------------------------------------


def fetch_all(
    platform: PlatformProcess, vins: list[str], path: str, key: str
) -> dict[str, list[Item]]:
    """Every trip (session) of each vehicle through the API, paging newest first."""
    found: dict[str, list[Item]] = {}
    with platform.api() as api:
        for vin in vins:
            items: list[Item] = []
            before = None
            while True:
                page = api.get(f"/vehicles/{vin}/{path}", limit=1000, before=before)
                items += page[key]
                before = page["next_before"]
                if not before:
                    break
            found[vin] = items
    return found


def derivation_lags(db: Path) -> list[tuple[str, int, float]]:
    """(event type, event time, seconds from ingest receiving the completing row to the event)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        columns = dict(conn.execute("SELECT path, column_name FROM signals").fetchall())
        state = columns["Vehicle.LowVoltageSystemState"]
        ids = dict(conn.execute("SELECT vin, id FROM vehicles").fetchall())
        seen: set[str] = set()
        lags = []
        rows = conn.execute(
            "SELECT type, vin, at, data FROM events WHERE type IN "
            "('trip.completed', 'charging.session_completed') ORDER BY id"
        ).fetchall()
        for kind, vin, at, data in rows:
            document = json.loads(data)
            if document["id"] in seen:
                continue
            seen.add(document["id"])
            end = parse_rfc3339_us(document["end_at"], "end_at")
            vehicle = ids[vin]
            row = conn.execute(
                f"SELECT received_at, {state} FROM telemetry WHERE vehicle_id = ? AND ts = ?",
                (vehicle, end),
            ).fetchone()
            if kind == "trip.completed" and (row is None or row[1] != "OFF"):
                row = conn.execute(
                    "SELECT received_at FROM telemetry WHERE vehicle_id = ? AND ts >= ? "
                    "ORDER BY ts LIMIT 1",
                    (vehicle, end + STOP_S * SECOND),
                ).fetchone()
            if row is not None:
                lags.append((kind, int(at), (int(at) - int(row[0])) / SECOND))
        return lags
    finally:
        conn.close()


def quantiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50": round(statistics.median(ordered), 3),
        "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
        "max": round(ordered[-1], 3),
    }


def stored_messages(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM telemetry_messages").fetchone()[0])


def wait_derived(
    platform: PlatformProcess, db: Path, quiet_s: float = 10.0, max_s: float = 600.0
) -> float:
    """Wait until ingest has nothing pending and no event was written for `quiet_s`."""
    began = time.perf_counter()
    last_id, last_change = -1, time.perf_counter()
    while time.perf_counter() - began < max_s:
        with platform.api() as api:
            ingest = api.get("/status").get("ingest", {})
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            newest = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        if newest != last_id:
            last_id, last_change = newest, time.perf_counter()
        idle = not ingest.get("pending") and not ingest.get("ack_pending")
        if idle and time.perf_counter() - last_change >= quiet_s:
            break
        time.sleep(1.0)
    return time.perf_counter() - began


class IngestMonitor:
    """Samples, once a second, (time, messages stored, ingest backlog, how long the derive
    backlog's oldest vehicle has waited) from another thread."""

    def __init__(self, platform: PlatformProcess, db: Path) -> None:
        self.platform = platform
        self.db = db
        self.samples: list[tuple[int, int, int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                with self.platform.api() as api:
                    status = api.get("/status")
                ingest, derive = status.get("ingest", {}), status.get("derive", {})
                backlog = int(ingest.get("pending") or 0) + int(ingest.get("ack_pending") or 0)
                waited = float(derive.get("oldest_waiting_s") or 0.0)
                stored = stored_messages(self.db)
            except Exception:  # noqa: BLE001 - a missed sample is only a missed sample
                continue
            self.samples.append((time.time_ns() // 1000, stored, backlog, waited))

    def summary(self, window: tuple[int, int] | None) -> dict[str, Any]:
        """Stored messages/s and the largest backlog, inside and outside `window`."""

        def part(samples: list[tuple[int, int, int, float]]) -> dict[str, Any]:
            if len(samples) < 2:
                return {}
            seconds = (samples[-1][0] - samples[0][0]) / SECOND
            waits = sorted(sample[3] for sample in samples)
            return {
                "stored_msg_s": round((samples[-1][1] - samples[0][1]) / seconds),
                "backlog_max": max(sample[2] for sample in samples),
                # The derive backlog's oldest wait, sampled once a second: the share of
                # the lag spent waiting for derive (the rest is ingest's and the write's).
                "derive_wait_p50_s": waits[len(waits) // 2],
                "derive_wait_max_s": waits[-1],
            }

        if window is None:
            return {"ingest": part(self.samples)}
        inside = [s for s in self.samples if window[0] <= s[0] <= window[1]]
        before = [s for s in self.samples if s[0] < window[0]]
        return {"ingest_saturated": part(inside), "ingest_before_window": part(before)}


# ---- saturating load ------------------------------------------------------------------------

PARKED = {
    "Vehicle.Speed": 0.0,
    "Vehicle.CurrentLocation.Latitude": 52.5208,
    "Vehicle.CurrentLocation.Longitude": 13.4094,
    "Vehicle.TraveledDistance": 12345.6,
    "Vehicle.LowVoltageSystemState": "LOCK",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 64.2,
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed": 64.0,
    "Vehicle.Powertrain.TractionBattery.CurrentPower": 0.0,
    "Vehicle.Powertrain.Range": 251000,
    "Vehicle.Powertrain.TractionBattery.Charging.IsCharging": False,
    "Vehicle.Cabin.HVAC.AmbientAirTemperature": 21.5,
    "Vehicle.Exterior.AirTemperature": 7.0,
    "Vehicle.IsMoving": False,
    "Vehicle.Powertrain.Transmission.CurrentGear": 0,
    "Vehicle.LowVoltageBattery.CurrentVoltage": 12.6,
    "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure": 250,
    "Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.Pressure": 251,
    "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure": 248,
    "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Pressure": 249,
    "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked": True,
}


async def saturate(
    port: int, creds: list[tuple[str, str]], rate: float, seconds: float, start_s: int
) -> int:
    """Parked cars publishing QoS 1 at `rate` messages/s in all, one vehicle second each."""
    signals = json.dumps(PARKED, separators=(",", ":"))
    clients = []
    for vin, password in creds:
        client = MqttClient("127.0.0.1", port, vin, vin, password)
        await client.connect()
        clients.append((vin, client))
    sent = skipped = 0
    began = time.perf_counter()
    pending: set[asyncio.Future[Any]] = set()
    reconnecting: dict[str, asyncio.Task[None]] = {}
    while time.perf_counter() - began < seconds:
        due = began + sent / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        vin, client = clients[sent % len(clients)]
        seq = sent // len(clients) + 1
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start_s + seq))
        body = f'{{"seq":{seq},"ts":"{stamp}.000Z","signals":{signals}}}'
        sent += 1
        if not client.connected:
            # Dropped (a missed keepalive on an overloaded machine): connect again aside.
            if vin not in reconnecting:
                reconnecting[vin] = asyncio.create_task(_reconnect(client, vin, reconnecting))
            skipped += 1
            continue
        try:
            future = client.publish_nowait(f"vehicles/{vin}/telemetry", body.encode())
        except MqttError:
            skipped += 1
            continue
        pending.add(future)
        future.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(set(pending), timeout=30)
    for task in list(reconnecting.values()):
        task.cancel()
    for _, client in clients:
        with contextlib.suppress(MqttError, OSError):
            await client.disconnect()
    return sent - skipped


async def _reconnect(
    client: MqttClient, vin: str, reconnecting: dict[str, asyncio.Task[None]]
) -> None:
    try:
        with contextlib.suppress(MqttError, OSError, TimeoutError):
            await client.connect()
    finally:
        reconnecting.pop(vin, None)


def register_load(platform: PlatformProcess, count: int) -> list[tuple[str, str]]:
    platform.ensure_brand("bench")
    creds = []
    with platform.api() as api:
        for index in range(count):
            vin = f"LDBENCH{index:010d}"
            created = api.post("/vehicles", {"vin": vin, "brand": "bench", "model": "B1"})
            creds.append((vin, created["mqtt_password"]))
    return creds


# ---- the run --------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    # The machine's speed now, measured first on a platform of its own: the lag is only
    # comparable between runs at a similar baseline.
    baseline = asyncio.run(jetstream_baseline())
    work = Path(tempfile.mkdtemp(prefix="bench-telematics-"))
    extra = ["--ingest-workers", "0"] if args.ingest_processes else []
    platform = PlatformProcess(work / "data", extra_args=extra)
    platform.start(timeout=60)
    ingesters = [platform.spawn_worker("ingest") for _ in range(args.ingest_processes)]
    db = platform.data_dir / "carcloud.db"
    monitor = IngestMonitor(platform, db)
    truth_path = work / "truth.jsonl"
    sim_seconds = args.hours * 3600.0
    duration = sim_seconds / args.speedup
    rate = args.speedup / args.sample_s
    # The simulated day ends an hour before now: history lands in the past, not the future.
    start_s = int(time.time() - sim_seconds - 3600)
    results: dict[str, Any] = {
        "vehicles": args.vehicles,
        "simulated_hours": args.hours,
        "speedup": args.speedup,
        "sample_s": args.sample_s,
        "rate_per_car": rate,
        "offered_msg_s": rate * args.vehicles,
        "offline_rate": args.offline_rate,
        "seed": args.seed,
        "saturate": args.saturate,
        "ingest_processes": args.ingest_processes,
        "commit": _commit(),
        "load_average_start": os.getloadavg(),
        "baseline_jetstream_msgs_per_s": round(baseline),
    }
    try:
        load_creds = register_load(platform, args.load_cars) if args.saturate else []
        command = [
            sys.executable, "-m", "carcloud.cli", "simulate", "--data-dir", str(platform.data_dir),
            "--vehicles", str(args.vehicles), "--seed", str(args.seed),
            "--rate", str(rate), "--speedup", str(args.speedup), "--duration", str(duration),
            "--start", str(start_s), "--offline-rate", str(args.offline_rate),
            "--ground-truth", str(truth_path),
        ]  # fmt: skip
        log = (work / "simulate.log").open("wb")
        began = time.perf_counter()
        sim = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        monitor.start()
        window: tuple[int, int] | None = None
        if args.saturate:
            # Wait until the fleet is registered and sending, then load the middle half.
            while not truth_path.exists() or stored_messages(db) < args.vehicles:
                time.sleep(0.5)
            time.sleep(duration / 4)
            load_from = time.time_ns() // 1000
            sent = asyncio.run(
                saturate(platform.mqtt_port, load_creds, args.load_rate, duration / 2, start_s)
            )
            window = (load_from, time.time_ns() // 1000)
            results["saturating_messages"] = sent
            results["saturating_seconds"] = round((window[1] - window[0]) / SECOND, 1)
        code = sim.wait(timeout=duration + 600)
        results["simulate_exit"] = code
        results["simulate_wall_s"] = round(time.perf_counter() - began, 1)
        log.close()
        results["simulate_last_status"] = _last_status(work / "simulate.log")
        results["load_average_end"] = os.getloadavg()
        monitor.stop()
        results.update(monitor.summary(window))
        results["wait_for_derive_s"] = round(wait_derived(platform, db, max_s=args.max_wait_s), 1)
        results["stored_messages"] = stored_messages(db)

        results.update(evaluate(platform, db, truth_path, window))
        if args.keep:
            results["work_dir"] = str(work)
    finally:
        monitor.stop()
        # Ingest processes first, while their NATS is still there (a worker whose server is
        # gone keeps reconnecting); one that does not stop is killed, so a slow stop never
        # costs the run its results.
        for ingester in ingesters:
            ingester.terminate()
        for ingester in ingesters:
            try:
                ingester.wait(timeout=30)
            except subprocess.TimeoutExpired:
                ingester.kill()
                ingester.wait()
        platform.stop()
        if not args.keep:
            # A day of 500 cars leaves GBs (the TELEMETRY stream alone near its 8 GiB): a
            # disk filled by earlier runs made nats-server refuse streams.
            shutil.rmtree(work, ignore_errors=True)
    return results


def _commit() -> str:
    found = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return found.stdout.strip()


def evaluate(
    platform: PlatformProcess, db: Path, truth_path: Path, window: tuple[int, int] | None
) -> dict[str, Any]:
    """Detection against the ground truth, and the derivation lags."""
    results: dict[str, Any] = {}
    records = read_ground_truth(truth_path)
    recorded_until = max(span(r)[1] for r in records)
    vins = sorted({r["vin"] for r in records})
    truth_trips: dict[str, list[Item]] = defaultdict(list)
    truth_sessions: dict[str, list[Item]] = defaultdict(list)
    for record in records:
        (truth_trips if record["kind"] == "trip" else truth_sessions)[record["vin"]].append(record)
    trips = fetch_all(platform, vins, "trips", "trips")
    sessions = fetch_all(platform, vins, "charging-sessions", "sessions")
    results["trips"] = score(
        "trip",
        truth_trips,
        trips,
        recorded_until,
        (("distance", "distance_km", "distance_km"), ("energy", "energy_kwh", "energy_kwh")),
    )
    results["sessions"] = score(
        "charging",
        truth_sessions,
        sessions,
        recorded_until,
        (("energy", "energy_added_kwh", "energy_kwh"),),
    )
    lags = derivation_lags(db)
    for kind, label in (
        ("trip.completed", "trip_lag_s"),
        ("charging.session_completed", "session_lag_s"),
    ):
        values = [lag for k, _, lag in lags if k == kind]
        results[label] = quantiles(values)
        if window is not None:
            inside = [lag for k, at, lag in lags if k == kind and window[0] <= at <= window[1]]
            outside = [lag for k, at, lag in lags if k == kind and not window[0] <= at <= window[1]]
            results[label + "_saturated"] = quantiles(inside)
            results[label + "_fleet_only"] = quantiles(outside)
    return results


def rescore(work: Path) -> dict[str, Any]:
    """Score an earlier run's data dir again (a platform started on it, nothing sent)."""
    platform = PlatformProcess(work / "data")
    platform.start(timeout=60)
    try:
        db = platform.data_dir / "carcloud.db"
        results = {"work_dir": str(work), "wait_for_derive_s": wait_derived(platform, db)}
        results.update(evaluate(platform, db, work / "truth.jsonl", None))
        return results
    finally:
        platform.stop()


def _last_status(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if "vehicles" in line]
    # The last status line may be written over a shorter one ("... buffered 3vehicles 500").
    return lines[-1][lines[-1].rfind("vehicles ") :].strip() if lines else ""


def print_report(results: dict[str, Any]) -> None:
    print(
        f"{results['vehicles']} cars, {results['simulated_hours']} simulated hours at speedup "
        f"{results['speedup']} (a sample every {results['sample_s']} s, "
        f"{results['offered_msg_s']:.0f} msg/s offered), offline rate {results['offline_rate']}/h"
    )
    print(
        f"commit {results['commit']}, load average at start {results['load_average_start']}, "
        f"at the simulator's end {results['load_average_end']}, "
        f"ingest processes {results['ingest_processes']}"
    )
    if "baseline_jetstream_msgs_per_s" in results:  # runs before it was measured: none
        print(
            f"machine: raw JetStream QoS 1 store {results['baseline_jetstream_msgs_per_s']} msg/s "
            "(bench/ingest.py's baseline, measured first)"
        )
    print(f"simulator: {results['simulate_last_status']}")
    for label in ("ingest", "ingest_before_window", "ingest_saturated"):
        if label in results:
            print(f"{label}: {results[label]}")
    print(
        f"stored messages {results['stored_messages']}, derive caught up "
        f"{results['wait_for_derive_s']} s after the simulator"
    )
    for kind in ("trips", "sessions"):
        figures = results[kind]
        line = (
            f"{kind}: true {figures['true']}, detected {figures['detected']}, matched "
            f"{figures['matched']}, recall {_pct(figures['recall'])}, "
            f"precision {_pct(figures['precision'])}"
        )
        for name in ("distance", "energy"):
            if f"{name}_error_median" in figures:
                line += (
                    f", {name} error median {_pct(figures[f'{name}_error_median'], 2)} "
                    f"p95 {_pct(figures[f'{name}_error_p95'], 2)}"
                )
        print(line)
    for label in ("trip_lag_s", "session_lag_s"):
        for suffix in ("", "_fleet_only", "_saturated"):
            if label + suffix in results:
                print(f"{label}{suffix}: {results[label + suffix]}")
    if "saturating_messages" in results:
        rate = results["saturating_messages"] / results["saturating_seconds"]
        print(
            f"extra load: {results['saturating_messages']} messages in "
            f"{results['saturating_seconds']} s ({rate:.0f} msg/s)"
        )


def _pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vehicles", type=int, default=50)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--speedup", type=float, default=288.0)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--offline-rate", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--saturate", action="store_true")
    parser.add_argument("--load-cars", type=int, default=20)
    parser.add_argument("--load-rate", type=float, default=3000.0)
    parser.add_argument(
        "--ingest-processes", type=int, default=1, help="0: ingest in the platform process"
    )
    parser.add_argument(
        "--max-wait-s", type=float, default=600.0, help="longest wait for derive to catch up"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's data dir (for --rescore); else removed"
    )
    parser.add_argument("--rescore", type=Path, metavar="WORK_DIR", help="score an earlier run")
    args = parser.parse_args()
    if args.rescore is not None:
        results = rescore(args.rescore)
        print(json.dumps({k: v for k, v in results.items() if k not in ("trips", "sessions")}))
        for kind in ("trips", "sessions"):
            print(kind, {k: v for k, v in results[kind].items() if not isinstance(v, list)})
    else:
        results = run(args)
        print_report(results)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
