"""Reconnect storm: N connected cars, the platform restarted, time until all are online again.

    python bench/reconnect.py [--cars 1000,5000] [--flood-rate 100] [--json out.json]

For each N: starts a real `carcloud up` on a fresh data dir, registers N cars through
the batch API, and connects them from a separate process (carcloud's own asyncio
MQTT client) holding their link as the simulator does (`carcloud/sim/link.py`):
clean sessions, subscribed QoS 0 to their commands and desired properties, and
reconnecting with full jitter up to 15 s. `--session`, `--qos` and `--backoff
before` measure the earlier choices (persistent sessions, QoS 1, 0.5 s doubling up
to 60 s times a random 0.5-1). Then, twice:

1. the platform is stopped (Ctrl-C, as an operator does) and started again on the
   same data dir and ports;
2. the bench polls the API every 0.5 s until every car is online with a
   `connected_at` later than the moment the new platform was launched (a stale
   `online` flag from before the restart does not count). It reports when the API
   first showed all of them, and the newest `connected_at` (when the server
   accepted the last car).

The second time, another process tries 100 connects per second with wrong secrets
for registered VINs (each a fresh random secret, so no cache can answer it), from
before the restart until the end. Both runs are reported: seconds from the launch
of the new platform (and from the stop) until the last car was online, how long
nats-server took from its start to "ready" (its own log), and the distribution of
the cars' reconnect times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from ingest import cpu_seconds, nats_server_pid  # bench/ingest.py

from carcloud.errors import CarcloudError
from carcloud.runtime.launcher import PlatformProcess
from carcloud.sim import link
from carcloud_agent.mqtt import ConnectRefused, MqttClient, MqttError
from carcloud_agent.protocol.backoff import full_jitter

HOST = "127.0.0.1"


# ---- the cars (a child process) ---------------------------------------------------------


@dataclass(frozen=True)
class CarLink:
    """How the bench's cars hold their link (default: as the simulator does)."""

    clean_session: bool = link.CLEAN_SESSION
    qos: int = link.CONTROL_QOS
    backoff: str = "sim"  # or "before": 0.5 s doubling to 60 s, times a random 0.5-1
    max_backoff_s: float = link.RECONNECT_MAX_S  # the cap of "sim"

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds before the next connect attempt."""
        if self.backoff == "before":
            return min(60.0, 0.5 * 2 ** min(failures, 7)) * rng.uniform(0.5, 1)
        if self.max_backoff_s != link.RECONNECT_MAX_S:
            return full_jitter(link.RECONNECT_MIN_S, self.max_backoff_s, failures, rng)
        return link.reconnect_delay(failures, rng)


async def run_cars(
    mqtt_port: int, creds: list[list[str]], ready: Path, how: CarLink, stats: Path
) -> None:
    """Connect every car, keep it connected, reconnect it with backoff when it drops."""
    # One process plays every car; it must not open 10,000 sockets in the same instant.
    in_flight = asyncio.Semaphore(500)
    online: set[str] = set()
    announced = asyncio.Event()
    # Why connect attempts failed: the bench reports them per restart.
    counts = {"connected": 0, "refused": 0, "timeout": 0, "socket": 0, "mqtt": 0}

    async def car(vin: str, password: str, rng: random.Random) -> None:
        failures = 0
        subscribed = False
        while True:
            client = MqttClient(
                HOST, mqtt_port, vin, vin, password, keepalive_s=60,
                clean_session=how.clean_session,
            )  # fmt: skip
            try:
                async with in_flight:
                    await client.connect(timeout_s=10)
                    # A persistent session keeps its subscriptions; a clean one does not.
                    if how.qos >= 0 and (how.clean_session or not subscribed):
                        # As the simulator's cars: commands and desired properties.
                        await client.subscribe(f"vehicles/{vin}/commands/+", qos=how.qos)
                        await client.subscribe(f"vehicles/{vin}/twin/desired", qos=how.qos)
                        subscribed = True
            except (MqttError, OSError, TimeoutError) as exc:
                await client.disconnect()
                counts[_failure_kind(exc)] += 1
                failures += 1
                await asyncio.sleep(how.delay(failures, rng))
                continue
            counts["connected"] += 1
            failures = 0
            online.add(vin)
            if len(online) == len(creds):
                announced.set()
            await client.closed.wait()
            online.discard(vin)
            await client.disconnect()
            failures = 1
            await asyncio.sleep(how.delay(0, rng))

    async def report() -> None:
        while True:
            write_json(stats, counts)
            await asyncio.sleep(0.5)

    tasks = [asyncio.create_task(car(vin, password, random.Random(vin))) for vin, password in creds]
    tasks.append(asyncio.create_task(report()))
    await announced.wait()
    ready.write_text(str(len(online)))  # noqa: ASYNC240 - once, tiny
    await asyncio.gather(*tasks)


def write_json(path: Path, counts: dict[str, int]) -> None:
    """Replace `path` at once: the bench reads it while this process writes it."""
    part = path.with_suffix(".part")
    part.write_text(json.dumps(counts))
    part.replace(path)


def _failure_kind(exc: BaseException) -> str:
    if isinstance(exc, ConnectRefused):
        return "refused"  # CONNACK "not authorized": also when the callout did not answer in time
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError):
        return "socket"
    return "mqtt"


async def run_flood(mqtt_port: int, vins: list[str], rate: float, stats: Path) -> None:
    """`rate` connects per second with wrong secrets for registered VINs."""
    counts = {"attempts": 0, "refused": 0, "accepted": 0, "errors": 0}
    pending: set[asyncio.Task[None]] = set()

    async def attempt(vin: str) -> None:
        client = MqttClient(
            HOST, mqtt_port, vin, vin, secrets.token_urlsafe(24), clean_session=True
        )
        try:
            await client.connect(timeout_s=10)
            counts["accepted"] += 1  # must stay 0
        except ConnectRefused:
            counts["refused"] += 1
        except (MqttError, OSError, TimeoutError):
            counts["errors"] += 1
        await client.disconnect()

    began = time.monotonic()
    while True:
        counts["attempts"] += 1
        task = asyncio.create_task(attempt(random.choice(vins)))
        pending.add(task)
        task.add_done_callback(pending.discard)
        if counts["attempts"] % int(rate) == 0:
            write_json(stats, counts)
        next_at = began + counts["attempts"] / rate
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


# ---- the bench --------------------------------------------------------------------------


def register(platform: PlatformProcess, count: int, path: Path) -> float:
    """Register `count` cars through the batch API; seconds it took."""
    platform.ensure_brand("bench")
    creds: list[tuple[str, str]] = []
    began = time.perf_counter()
    with httpx.Client(
        base_url=f"{platform.url}/api/v1",
        headers={"Authorization": f"Bearer {platform.operator_key}"},
        timeout=120,
    ) as api:
        for start in range(0, count, 1000):
            rows = [
                {"vin": f"RECBENCH{index:09d}", "brand": "bench", "model": "B1"}
                for index in range(start, min(count, start + 1000))
            ]
            answer = api.post("/vehicles/batch", json={"vehicles": rows}).json()
            creds += [(r["vin"], r["mqtt_password"]) for r in answer["results"]]
    took = time.perf_counter() - began
    path.write_text(json.dumps(creds))
    return took


def _parse(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def connected_since(platform: PlatformProcess, since: float) -> list[float]:
    """`connected_at` of every online car that connected after `since` (epoch seconds)."""
    found: list[float] = []
    with httpx.Client(
        base_url=f"{platform.url}/api/v1",
        headers={"Authorization": f"Bearer {platform.operator_key}"},
        timeout=60,
    ) as api:
        offset = 0
        while True:
            page = api.get(
                "/vehicles", params={"online": "true", "limit": 1000, "offset": offset}
            ).json()["vehicles"]
            found += [
                at
                for vehicle in page
                if vehicle["connected_at"] and (at := _parse(vehicle["connected_at"])) > since
            ]
            if len(page) < 1000:
                return found
            offset += 1000


def online_count(platform: PlatformProcess) -> int:
    try:
        answer = httpx.get(
            f"{platform.url}/api/v1/status",
            headers={"Authorization": f"Bearer {platform.operator_key}"},
            timeout=10,
        )
        return int(answer.json()["vehicles"]["online"])
    except (httpx.HTTPError, ValueError, KeyError):
        return -1


def wait_all_online(
    platform: PlatformProcess, count: int, since: float, limit_s: float
) -> list[float]:
    """Poll until every car connected after `since`; their connect times (epoch seconds)."""
    deadline = time.time() + limit_s
    while time.time() < deadline:
        if online_count(platform) >= count:
            times = connected_since(platform, since)
            if len(times) >= count:
                return times
        time.sleep(0.5)
    raise TimeoutError(f"not all {count} cars were online within {limit_s:.0f} s")


def nats_start_s(platform: PlatformProcess) -> float | None:
    """Seconds from nats-server's last "Starting" to its "Server is ready", from its log."""
    started = ready = None
    log_path = platform.data_dir / "nats.log"
    for line in log_path.read_text(errors="replace").splitlines() if log_path.exists() else []:
        parts = line.split(" ", 3)
        if len(parts) < 4:
            continue
        try:
            at = datetime.strptime(f"{parts[1]} {parts[2]}", "%Y/%m/%d %H:%M:%S.%f").timestamp()
        except ValueError:
            continue
        if "Starting nats-server" in parts[3]:
            started, ready = at, None
        elif "Server is ready" in parts[3]:
            ready = at
    return None if started is None or ready is None else round(ready - started, 1)


def restart(
    platform: PlatformProcess, count: int, cars: Path, cars_pid: int, flood: Path | None
) -> dict[str, Any]:
    """Stop and start the platform; measure until every car is back."""
    cars_before = json.loads(cars.read_text())
    stop_at = time.time()
    platform.stop(signal.SIGINT, timeout=300)
    launch_at = time.time()
    before = json.loads(flood.read_text()) if flood and flood.exists() else None
    cars_cpu = cpu_seconds([cars_pid])
    platform.start(timeout=120)
    ready_at = time.time()
    assert platform.process is not None
    up_pid, nats_pids = platform.process.pid, nats_server_pid(platform)
    times = wait_all_online(platform, count, launch_at, limit_s=900)
    seen_at = time.time()
    # CPU seconds each process spent from the launch until all were online (on a
    # machine whose 2 cores other work shares: this says who did the work).
    cpu = {
        "carcloud_up": round(cpu_seconds([up_pid]), 1),
        "nats_server": round(cpu_seconds(nats_pids), 1),
        "cars": round(cpu_seconds([cars_pid]) - cars_cpu, 1),
    }
    after = json.loads(flood.read_text()) if flood and flood.exists() else None
    back = sorted(at - launch_at for at in times)
    result: dict[str, Any] = {
        "stop_s": round(launch_at - stop_at, 1),
        "start_until_api_ready_s": round(ready_at - launch_at, 1),
        "nats_server_start_s": nats_start_s(platform),
        # When the API showed every car with a fresh connected_at (polled every 0.5 s).
        "api_shows_all_online_after_launch_s": round(seen_at - launch_at, 1),
        # The newest connected_at (the server's connect time of the last car).
        "last_connect_after_launch_s": round(back[-1], 1),
        "api_shows_all_online_after_stop_s": round(seen_at - stop_at, 1),
        "reconnect_p50_s": round(statistics.median(back), 1),
        "reconnect_p90_s": round(back[int(0.9 * (len(back) - 1))], 1),
    }
    cars_after = json.loads(cars.read_text())
    result["car_connects"] = {key: cars_after[key] - cars_before[key] for key in cars_after}
    result["cpu_s"] = cpu
    if before is not None and after is not None:
        span = max(1e-6, time.time() - launch_at)
        result["flood"] = {
            "wrong_connects_per_s": round((after["attempts"] - before["attempts"]) / span, 1),
            "refused": after["refused"] - before["refused"],
            "accepted": after["accepted"],
            "errors": after["errors"] - before["errors"],
        }
    return result


def run_size(count: int, args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="carcloud-reconnect-"))
    platform = PlatformProcess(root / "data")
    platform.start()
    children: list[subprocess.Popen[bytes]] = []
    result: dict[str, Any] = {"cars": count}
    try:
        creds = root / "creds.json"
        result["register_s"] = round(register(platform, count, creds), 1)
        print(f"{count} cars registered in {result['register_s']} s (batch API)", flush=True)
        ready = root / "ready"
        began = time.perf_counter()
        how = CarLink(
            clean_session=args.session == "clean",
            qos=args.qos if args.subscribe else -1,
            backoff=args.backoff,
            max_backoff_s=args.max_backoff,
        )
        result["link"] = asdict(how)
        cars_cmd = [sys.executable, __file__, "--play-cars", str(platform.mqtt_port), str(creds),
                    str(ready), json.dumps(asdict(how)), str(root / "cars.json")]  # fmt: skip
        children.append(cars_process := subprocess.Popen(cars_cmd))
        deadline = time.time() + 900
        while not ready.exists() and time.time() < deadline:
            time.sleep(0.2)
        wait_all_online(platform, count, 0.0, limit_s=300)
        result["first_connect_s"] = round(time.perf_counter() - began, 1)
        print(f"{count} cars connected in {result['first_connect_s']} s", flush=True)
        time.sleep(3)

        try:
            result["restart"] = restart(platform, count, root / "cars.json", cars_process.pid, None)
        except (CarcloudError, TimeoutError) as exc:
            # A platform that does not come back is a result too (nats-server's
            # JetStream restore can outlast carcloud's start-up limit).
            result["restart"] = {"failed": str(exc).splitlines()[-1]}
            print(f"restart failed: {result['restart']['failed']}", flush=True)
            return result
        print(f"restart:            {json.dumps(result['restart'])}", flush=True)
        if not args.flood:
            return result
        time.sleep(3)

        stats = root / "flood.json"
        flood_cmd = [sys.executable, __file__, "--flood", str(platform.mqtt_port), str(creds),
                     str(args.flood_rate), str(stats)]  # fmt: skip
        children.append(subprocess.Popen(flood_cmd))
        time.sleep(5)  # the flood is under way before the restart
        result["restart_under_flood"] = restart(
            platform, count, root / "cars.json", cars_process.pid, stats
        )
        print(f"restart with flood: {json.dumps(result['restart_under_flood'])}", flush=True)
    finally:
        for child in children:
            child.kill()
            child.wait()
        platform.stop()
        if args.keep_data:
            print(f"data kept in {root}", flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cars", default="1000,5000", help="fleet sizes, comma-separated")
    parser.add_argument("--flood-rate", type=float, default=100.0, help="wrong connects per s")
    parser.add_argument(
        "--subscribe",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="cars subscribe to commands and desired properties (default: yes)",
    )
    parser.add_argument(
        "--qos",
        type=int,
        choices=[0, 1],
        default=link.CONTROL_QOS,
        help="QoS of the cars' subscriptions (default %(default)s, as the simulator)",
    )
    parser.add_argument(
        "--session",
        choices=["clean", "persistent"],
        default="clean" if link.CLEAN_SESSION else "persistent",
        help="the cars' MQTT sessions (default %(default)s, as the simulator)",
    )
    parser.add_argument(
        "--backoff",
        choices=["sim", "before"],
        default="sim",
        help="sim: the simulator's reconnect backoff (full jitter up to "
        f"{link.RECONNECT_MAX_S:.0f} s); before: 0.5 s doubling to 60 s times 0.5-1",
    )
    parser.add_argument(
        "--max-backoff",
        type=float,
        default=link.RECONNECT_MAX_S,
        help="the cap of the sim backoff, to compare others (default %(default)s s)",
    )
    parser.add_argument(
        "--flood",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also restart under a flood of wrong secrets (default: yes)",
    )
    parser.add_argument("--keep-data", action="store_true", help="keep data dirs and logs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = [run_size(int(count), args) for count in args.cars.split(",")]
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--play-cars":
        cars = json.loads(Path(sys.argv[3]).read_text())
        how = CarLink(**json.loads(sys.argv[5]))
        asyncio.run(run_cars(int(sys.argv[2]), cars, Path(sys.argv[4]), how, Path(sys.argv[6])))
    elif len(sys.argv) == 6 and sys.argv[1] == "--flood":
        vins = [vin for vin, _ in json.loads(Path(sys.argv[3]).read_text())]
        asyncio.run(run_flood(int(sys.argv[2]), vins, float(sys.argv[4]), Path(sys.argv[5])))
    else:
        main()
