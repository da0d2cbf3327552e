"""Command round-trip benchmark: API call → car → result → final state seen by the caller.

    python bench/commands.py [--cars 1000] [--commands 2000] [--concurrency 1,8,16,32]

Starts a real `carcloud up` on free ports, registers and connects N cars (real MQTT
connections, each its own credentials, persistent sessions, subscribed to their
commands and desired properties as carcloud's car sides are), in a separate process
that answers every command at once. The caller posts a command and asks for it
with `?wait=`, which returns when the command is final: the time between the two is
the round trip. Run closed-loop at each concurrency: p50/p99 of the round trip and
completed commands per second. A baseline in the same run: the MQTT round trip alone
(cloud publish → car → result back to a plain NATS subscriber), without carcloud's
API, database and dispatcher in the path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from carcloud.auth.callout import DISPATCH_USER, dispatch_client_id
from carcloud.messaging.accounts import vehicle_shard
from carcloud.runtime.launcher import PlatformProcess
from carcloud_agent.mqtt import MqttClient


def register(platform: PlatformProcess, count: int, path: Path) -> list[tuple[str, str]]:
    platform.ensure_brand("bench")
    creds: list[tuple[str, str]] = []
    with httpx.Client(
        base_url=f"{platform.url}/api/v1",
        headers={"Authorization": f"Bearer {platform.operator_key}"},
        timeout=60,
    ) as api:
        for index in range(count):
            vin = f"CMDBENCH{index:09d}"
            body = {"vin": vin, "brand": "bench", "model": "B1"}
            creds.append((vin, api.post("/vehicles", json=body).json()["mqtt_password"]))
    path.write_text(json.dumps(creds))
    return creds


async def respond(mqtt_port: int, creds: list[tuple[str, str]], ready: Path) -> None:
    """The cars: answer every command with 'succeeded' at once."""
    clients: list[MqttClient] = []

    def handler_for(client_box: list[MqttClient]) -> object:
        def on_message(topic: str, payload: bytes) -> None:
            if "/commands/" in topic:
                client_box[0].publish_nowait(f"{topic}/result", b'{"status":"succeeded"}')

        return on_message

    limit = asyncio.Semaphore(50)

    async def connect(vin: str, password: str) -> None:
        box: list[MqttClient] = []
        client = MqttClient("127.0.0.1", mqtt_port, vin, vin, password, on_message=handler_for(box))  # type: ignore[arg-type]
        box.append(client)
        async with limit:
            for attempt in range(20):
                try:
                    await client.connect()
                    break
                except Exception:
                    await asyncio.sleep(0.5 + attempt * 0.2)
            # As carcloud's own car sides do: commands and desired properties, both QoS 1
            # (each is a JetStream consumer inside nats-server).
            await client.subscribe(f"vehicles/{vin}/commands/+", qos=1)
            await client.subscribe(f"vehicles/{vin}/twin/desired", qos=1)
        clients.append(client)

    await asyncio.gather(*(connect(vin, pw) for vin, pw in creds))
    ready.write_text(str(len(clients)))  # noqa: ASYNC240 - once, tiny
    await asyncio.Event().wait()


class LeanHttp:
    """One keep-alive HTTP/1.1 connection; the load generator must cost less than the server."""

    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def round_trips(
    platform: PlatformProcess, vins: list[str], total: int, concurrency: int
) -> tuple[list[float], float, int]:
    """Closed loop: each caller posts a command with ?wait and measures until it returns."""
    latencies: list[float] = []
    failures = 0
    remaining = total
    body = b'{"kind":"lock"}'

    async def caller() -> None:
        nonlocal remaining, failures
        http = LeanHttp(platform.http_port, platform.operator_key)
        try:
            while remaining > 0:
                remaining -= 1
                vin = random.choice(vins)
                began = time.perf_counter()
                code, answer = await http.post(f"/api/v1/vehicles/{vin}/commands?wait=10s", body)
                if code == 202 and json.loads(answer)["status"] == "succeeded":
                    latencies.append((time.perf_counter() - began) * 1000)
                else:
                    failures += 1
        finally:
            await http.close()

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return latencies, time.perf_counter() - began, failures


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> dict[str, int]:
    """The child processes of `pid` by name (carcloud up's child is nats-server)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid:
                found[(stat.parent / "comm").read_text().strip()] = int(stat.parent.name)
        except OSError:
            continue
    return found


class CpuShares:
    """Where the CPU went during a run: seconds of CPU per named process."""

    def __init__(self, named: dict[str, int]) -> None:
        self.named = named
        self.start = {name: _cpu_seconds(pid) for name, pid in named.items()}

    def shares(self, elapsed: float) -> dict[str, float]:
        """Each process's CPU as a share of one core over `elapsed` seconds."""
        return {
            name: round((_cpu_seconds(pid) - self.start[name]) / elapsed, 2)
            for name, pid in self.named.items()
        }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def mqtt_baseline(
    platform: PlatformProcess, creds: list[tuple[str, str]], count: int
) -> list[float]:
    """MQTT alone: the cloud identity publishes, the car answers, a NATS subscriber sees it."""
    import nats
    import nats.errors

    secrets = json.loads((platform.data_dir / "secrets.json").read_text())["passwords"]
    nc = await nats.connect(
        f"nats://127.0.0.1:{platform.nats_port}", user="svc", password=secrets["svc"]
    )
    # The cloud's MQTT identity, connected into the vehicle account of the cars it uses.
    shard = vehicle_shard(creds[0][0])
    same_account = [vin for vin, _ in creds if vehicle_shard(vin) == shard]
    cloud = MqttClient(
        "127.0.0.1",
        platform.mqtt_port,
        dispatch_client_id(shard, f"bench{os.getpid()}"),
        DISPATCH_USER,
        secrets["dispatch"],
        clean_session=True,
    )
    await cloud.connect()
    latencies: list[float] = []
    for index in range(count):
        vin = same_account[index % len(same_account)]
        subject = f"vehicles.{vin}.commands.base{index}.result"
        sub = await nc.subscribe(subject)
        await nc.flush()  # the subscription must be at the server before the answer is
        began = time.perf_counter()
        await cloud.publish(f"vehicles/{vin}/commands/base{index}", b'{"kind":"lock"}')
        try:
            await sub.next_msg(timeout=5)
            latencies.append((time.perf_counter() - began) * 1000)
        except nats.errors.TimeoutError:
            print(f"baseline: no answer from {vin} within 5 s (not counted)")
        await sub.unsubscribe()
    await cloud.disconnect()
    await nc.close()
    return latencies


async def main(args: argparse.Namespace) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="carcloud-cmdbench-"))
    platform = PlatformProcess(root / "data", extra_args=["--ingest-workers", "0"])
    platform.start()
    responders: subprocess.Popen[bytes] | None = None
    extra: list[subprocess.Popen[bytes]] = []
    results: dict[str, object] = {"cars": args.cars, "commands_per_run": args.commands}
    try:
        print(f"registering {args.cars} cars…")
        creds = register(platform, args.cars, root / "creds.json")
        ready = root / "ready"
        responders = subprocess.Popen(  # noqa: ASYNC220 - a quick fork+exec
            [
                sys.executable,
                __file__,
                "--respond",
                str(platform.mqtt_port),
                str(root / "creds.json"),
                str(ready),
            ]
        )
        deadline = time.time() + 300
        while not ready.exists() and time.time() < deadline:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.2)
        print(f"{ready.read_text()} cars connected and subscribed")
        await asyncio.sleep(2.0)
        extra += [platform.spawn_worker("control") for _ in range(args.control_workers)]
        await asyncio.sleep(3.0 if args.control_workers else 0)
        vins = [vin for vin, _ in creds]
        base = await mqtt_baseline(platform, creds, 300)
        results["baseline_mqtt_round_trip_p50_ms"] = round(statistics.median(base), 2)
        results["baseline_mqtt_round_trip_p99_ms"] = round(percentile(base, 0.99), 2)
        print(
            f"baseline   MQTT round trip alone: p50 {statistics.median(base):.2f} ms, "
            f"p99 {percentile(base, 0.99):.2f} ms"
        )
        await round_trips(platform, vins, 200, 8)  # warm up
        runs = []
        assert platform.process is not None
        named = {"carcloud up": platform.process.pid, "bench (callers)": os.getpid()}
        named |= _children(platform.process.pid)
        named |= {f"control worker {i + 1}": w.pid for i, w in enumerate(extra)}
        named["cars"] = responders.pid
        idle = CpuShares(named)
        await asyncio.sleep(5.0)
        results["idle_cpu_cores"] = idle.shares(5.0)
        print("idle CPU (cores): " + ", ".join(f"{k} {v}" for k, v in idle.shares(5.0).items()))
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            cpu = CpuShares(named)
            latencies, elapsed, failures = await round_trips(
                platform, vins, args.commands, concurrency
            )
            shares = cpu.shares(elapsed)
            run = {
                "concurrency": concurrency,
                "commands_per_s": round(len(latencies) / elapsed, 1),
                "p50_ms": round(statistics.median(latencies), 1),
                "p99_ms": round(percentile(latencies, 0.99), 1),
                "max_ms": round(max(latencies), 1),
                "failures": failures,
                "cpu_cores": shares,
            }
            runs.append(run)
            print(
                f"{concurrency:4d} callers: {run['commands_per_s']:7.1f} commands/s, "
                f"round trip p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms, "
                f"max {run['max_ms']} ms, {failures} not succeeded"
            )
            print("      CPU (cores): " + ", ".join(f"{k} {v}" for k, v in shares.items()))
        results["runs"] = runs
    finally:
        for process in [*extra, *([responders] if responders else [])]:
            process.kill()
            process.wait()
        platform.stop()
        shutil.rmtree(root, ignore_errors=True)
    return results


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--respond":
        creds_list = [tuple(pair) for pair in json.loads(Path(sys.argv[3]).read_text())]
        asyncio.run(respond(int(sys.argv[2]), creds_list, Path(sys.argv[4])))  # type: ignore[arg-type]
        sys.exit(0)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cars", type=int, default=1000)
    parser.add_argument("--commands", type=int, default=2000, help="round trips per concurrency")
    parser.add_argument(
        "--concurrency", default="1,8,16,32", help="closed-loop callers, comma-separated"
    )
    parser.add_argument(
        "--control-workers",
        type=int,
        default=0,
        help="extra `carcloud worker control` processes beside carcloud up",
    )
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    outcome = asyncio.run(main(arguments))
    print(json.dumps(outcome, indent=2))
    if arguments.json:
        arguments.json.write_text(json.dumps(outcome, indent=2))
