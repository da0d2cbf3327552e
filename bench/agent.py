"""Agent benchmark: its own footprint, and how fast it drains a day of buffered data.

    python bench/agent.py [--backlog 86400] [--signals-per-s 200] [--seconds 30]

1. Footprint: `carcloud agent` (a real process, simulator source) connected to a
   real `carcloud up`, with one time-based campaign asking for every signal at the
   period that makes about `--signals-per-s` signal values per second; its
   resident memory (peak) and CPU share of one core over `--seconds` of steady
   state.
2. Drain: an outbox holding `--backlog` telemetry messages (a day at one message a
   second, each with the simulator's full signal set), then the agent starts
   and connects; the time until the server has acknowledged all of them, and
   until the platform has them stored.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from carcloud.runtime.launcher import PlatformProcess
from carcloud.sim.fleet import build_fleet
from carcloud.sim.runner import next_sample
from carcloud_agent.buffer import Outbox

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int, key: str = "VmRSS:") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return 0.0


def write_config(path: Path, vin: str, secret: str, port: int, interval_s: float) -> None:
    path.write_text(
        f'vin = "{vin}"\nsecret = "{secret}"\n[cloud]\nport = {port}\n'
        f'[buffer]\npath = "outbox.db"\nmax_mb = 1024\n'
        f'[source]\nkind = "simulator"\nbrand = "volta"\ninterval_s = {interval_s}\n'
    )


def stored(db: Path, vin: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute(
            # Samples, not messages: a backlog travels in batch messages.
            "SELECT COUNT(*) FROM telemetry t JOIN vehicles v ON v.id = t.vehicle_id "
            "WHERE v.vin = ?",
            (vin,),
        ).fetchone()
    return int(row[0])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backlog", type=int, default=86_400)
    parser.add_argument("--signals-per-s", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="carcloud-agentbench-"))
    platform = PlatformProcess(root / "data")
    platform.start()
    results: dict[str, object] = {}
    try:
        with platform.api() as api:
            api.post("/brands", {"slug": "bench", "name": "Bench"})
            vins = ["AGENTBENCH0000001", "AGENTBENCH0000002"]
            secrets = [
                api.post("/vehicles", {"vin": v, "brand": "bench", "model": "A"})["mqtt_password"]
                for v in vins
            ]

        # 1. footprint at the asked signal rate, with one campaign asking for every signal
        vehicle = build_fleet(1, 1, ["volta"])[0]
        every_signal = sorted(next_sample(vehicle, 1.0)[1])
        per_sample = len(every_signal)
        interval = per_sample / args.signals_per_s
        with platform.api() as api:
            api.post("/campaigns", {
                "name": "everything", "target": {"brand": "bench"}, "signals": every_signal,
                "trigger": "time", "period_ms": int(interval * 1000),
            })  # fmt: skip
        live = root / "live"
        live.mkdir()
        write_config(live / "agent.toml", vins[0], secrets[0], platform.mqtt_port, interval)
        agent = subprocess.Popen(
            [sys.executable, "-m", "carcloud.cli", "agent", "--config", str(live / "agent.toml")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(5.0)  # start-up and connect
        cpu0, t0 = cpu_seconds(agent.pid), time.perf_counter()
        peak = 0.0
        while time.perf_counter() - t0 < args.seconds:
            time.sleep(1.0)
            peak = max(peak, rss_mb(agent.pid))
        share = (cpu_seconds(agent.pid) - cpu0) / (time.perf_counter() - t0)
        agent.terminate()
        agent.wait(20)
        with platform.api() as api:
            running = api.get("/campaigns/everything")["status"]["running"]
        results.update(
            campaign_running_on_agents=running,
            signals_per_sample=per_sample,
            sample_interval_s=round(interval, 3),
            signals_per_s=round(per_sample / interval),
            cpu_share_of_one_core=round(share, 4),
            rss_mb=round(peak, 1),
        )
        print(
            f"footprint  {per_sample / interval:.0f} signal values/s: "
            f"{share * 100:.2f} % of one core, {peak:.1f} MB resident"
        )

        # 2. drain of a day's backlog
        day = root / "day"
        day.mkdir()
        write_config(day / "agent.toml", vins[1], secrets[1], platform.mqtt_port, 3600.0)
        box = Outbox(day / "outbox.db", max_bytes=2 * 1024**3)
        topic = f"vehicles/{vins[1]}/telemetry"
        began = time.perf_counter()
        for start in range(0, args.backlog, 5000):
            chunk = []
            for _ in range(start, min(start + 5000, args.backlog)):
                ts, signals = next_sample(vehicle, 1.0)
                chunk.append(
                    (
                        topic,
                        orjson.dumps({"seq": box.next_sequence(), "ts": ts, "signals": signals}),
                    )
                )
            box.put_many(chunk)
        backlog_mb = box.stats().bytes / 1e6
        box.close()
        print(
            f"backlog    {args.backlog} messages, {backlog_mb:.0f} MB, written in "
            f"{time.perf_counter() - began:.0f} s"
        )
        agent = subprocess.Popen(
            [sys.executable, "-m", "carcloud.cli", "agent", "--config", str(day / "agent.toml")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        started = time.perf_counter()
        drained_at = None
        db = platform.data_dir / "carcloud.db"
        while time.perf_counter() - started < 900:
            time.sleep(0.5)
            with sqlite3.connect(f"file:{day / 'outbox.db'}?mode=ro", uri=True) as conn:
                depth = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            if drained_at is None and depth == 0:
                drained_at = time.perf_counter() - started
            if drained_at is not None and stored(db, vins[1]) >= args.backlog:
                break
        stored_at = time.perf_counter() - started
        agent.terminate()
        agent.wait(20)
        results.update(
            backlog_messages=args.backlog,
            backlog_mb=round(backlog_mb),
            drained_seconds=round(drained_at or -1, 1),
            drain_msgs_per_s=round(args.backlog / drained_at) if drained_at else None,
            stored_seconds=round(stored_at, 1),
            stored=stored(db, vins[1]),
        )
        print(
            f"drain      acknowledged by the server in {drained_at:.1f} s "
            f"({args.backlog / (drained_at or 1):.0f} msg/s); all stored after {stored_at:.1f} s"
        )
    finally:
        platform.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
