"""Simulator benchmark: how many vehicles one simulator process sustains at 1 message/s.

    python bench/simulator.py [--counts 500,1000,2000,3000] [--duration 30] [--ingest]

Starts a real `carcloud up` on free ports (by default without ingest workers, so
that the simulator has a core to itself and the platform only stores the
messages in JetStream), registers the fleet once, then runs `carcloud simulate`
as one process per fleet size and reads its own status lines. A message is late
when it is sent more than one period (1 s) after it was due. Prints, per fleet
size: late %, messages sent and acknowledged, CPU of the simulator process as a
share of one core, and its peak resident memory; then the largest fleet with at
most 1 % late messages, and CPU and memory per 1,000 vehicles there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from carcloud.runtime.launcher import PlatformProcess
from carcloud.sim.session import SimulationOptions, prepare

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_size(
    platform: PlatformProcess, credentials: Path, count: int, duration: float, start: float
) -> dict[str, float]:
    command = [
        sys.executable, "-m", "carcloud.cli", "simulate",
        "--api", platform.url, "--key", platform.operator_key,
        "--mqtt", f"127.0.0.1:{platform.mqtt_port}", "--vehicles", str(count),
        "--rate", "1", "--duration", str(duration), "--seed", "1", "--start", str(start),
        "--credentials", str(credentials), "--status-json",
    ]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, bufsize=1)
    assert child.stdout is not None
    last: dict[str, int] = {}
    started_at = cpu_at = None
    peak = 0.0
    for line in child.stdout:
        try:
            last = json.loads(line)
        except ValueError:
            continue
        peak = max(peak, peak_rss_mb(child.pid))
        if started_at is None and last.get("connected", 0) >= count:
            # Steady state: every car connected; CPU from here on is the publishing cost.
            started_at, cpu_at = time.perf_counter(), cpu_seconds(child.pid)
            ticks_at, late_at = last["ticks"], last["late"]
        if started_at is not None:
            wall = time.perf_counter() - started_at
            cpu = cpu_seconds(child.pid) - (cpu_at or 0.0)
    child.wait()
    if started_at is None:
        raise RuntimeError(f"{count} vehicles never all connected: {last}")
    ticks = last["ticks"] - ticks_at
    late = last["late"] - late_at
    return {
        "vehicles": count,
        "late_percent": round(100.0 * late / ticks, 3) if ticks else 100.0,
        "messages_sent": last["sent"],
        "messages_acked": last["acked"],
        "errors": last["errors"],
        "cpu_share_of_one_core": round(cpu / wall, 3),
        "peak_rss_mb": round(peak, 1),
        "measured_seconds": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", default="500,1000,2000,3000", help="fleet sizes to try")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per fleet size")
    parser.add_argument("--ingest", action="store_true", help="also run the ingest worker")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    counts = sorted(int(c) for c in args.counts.split(","))
    root = Path(tempfile.mkdtemp(prefix="carcloud-simbench-"))
    extra = [] if args.ingest else ["--ingest-workers", "0"]
    platform = PlatformProcess(root / "data", extra_args=extra)
    platform.start()
    results = []
    try:
        start = float(int(time.time()))
        credentials = root / "credentials.json"
        print(f"registering {counts[-1]} vehicles (each secret is hashed with scrypt)…")
        begun = time.perf_counter()
        prepare(
            SimulationOptions(
                api_url=platform.url, api_key=platform.operator_key, mqtt_host="127.0.0.1",
                mqtt_port=platform.mqtt_port, vehicles=counts[-1], seed=1,
                start_epoch_s=start, credentials_file=credentials,
            )
        )  # fmt: skip
        print(f"registered in {time.perf_counter() - begun:.0f} s")
        for count in counts:
            result = run_size(platform, credentials, count, args.duration, start)
            results.append(result)
            print(
                f"{count:6d} vehicles: late {result['late_percent']:6.2f} %  "
                f"cpu {result['cpu_share_of_one_core'] * 100:5.1f} % of a core  "
                f"rss {result['peak_rss_mb']:6.1f} MB  sent {result['messages_sent']}  "
                f"acked {result['messages_acked']}  errors {result['errors']}"
            )
    finally:
        platform.stop()
        shutil.rmtree(root, ignore_errors=True)
    sustained = [r for r in results if r["late_percent"] <= 1.0 and r["errors"] == 0]
    summary: dict[str, object] = {"runs": results}
    if sustained:
        best = max(sustained, key=lambda r: r["vehicles"])
        per_thousand = 1000.0 / best["vehicles"]
        summary.update(
            sustained_vehicles=best["vehicles"],
            cpu_per_1000_vehicles=round(best["cpu_share_of_one_core"] * per_thousand, 3),
            rss_mb_per_1000_vehicles=round(best["peak_rss_mb"] * per_thousand, 1),
        )
        print(
            f"sustained: {best['vehicles']} vehicles at 1 msg/s with ≤1 % late; per 1,000 "
            f"vehicles {summary['cpu_per_1000_vehicles']} of a core and "
            f"{summary['rss_mb_per_1000_vehicles']} MB"
        )
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
