"""carcloud's own MQTT client against aiomqtt: cost per idle connection, QoS 1 messages/s.

    pip install aiomqtt        # not a carcloud dependency; only this comparison needs it
    python bench/mqtt_client.py --connections 1000 --messages 20000

One nats-server (MQTT listener, no auth callout: the clients are measured, not the
platform) on free ports; every measurement runs in a fresh Python process, so
resident memory is that client's alone. Idle: N connections with keepalive 30 s,
then the process's CPU time over --idle-seconds (clean sessions for both clients).
Throughput: one connection publishes QoS 1 messages of 200 bytes with at most 256
unacknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from carcloud.messaging.natsserver import nats_server_binary
from carcloud.runtime.launcher import free_port
from carcloud_agent.mqtt import MqttClient

WINDOW = 256
PAYLOAD = b"x" * 200
KEEPALIVE_S = 30


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def own_idle(port: int, count: int, idle_s: float) -> dict[str, float]:
    before = rss_kib()
    clients = [
        MqttClient("127.0.0.1", port, f"own-{n}", keepalive_s=KEEPALIVE_S, clean_session=True)
        for n in range(count)
    ]
    started = time.perf_counter()
    for first in range(0, count, 100):
        await asyncio.gather(*(c.connect() for c in clients[first : first + 100]))
    connect_s = time.perf_counter() - started
    cpu = time.process_time()
    await asyncio.sleep(idle_s)
    result = measured(before, count, connect_s, time.process_time() - cpu, idle_s)
    assert all(c.connected for c in clients)
    await asyncio.gather(*(c.disconnect() for c in clients))
    return result


async def aiomqtt_idle(port: int, count: int, idle_s: float) -> dict[str, float]:
    import contextlib

    import aiomqtt

    before = rss_kib()
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            aiomqtt.Client("127.0.0.1", port, identifier=f"aio-{n}", keepalive=KEEPALIVE_S)
            for n in range(count)
        ]
        started = time.perf_counter()
        for first in range(0, count, 100):
            await asyncio.gather(
                *(stack.enter_async_context(c) for c in clients[first : first + 100])
            )
        connect_s = time.perf_counter() - started
        cpu = time.process_time()
        await asyncio.sleep(idle_s)
        return measured(before, count, connect_s, time.process_time() - cpu, idle_s)


def measured(
    before_kib: int, count: int, connect_s: float, cpu_s: float, idle_s: float
) -> dict[str, float]:
    return {
        "kib_per_connection": (rss_kib() - before_kib) / count,
        "connect_s": connect_s,
        "idle_cpu_ms_per_connection_minute": cpu_s * 1000 / count * 60 / idle_s,
        "idle_cpu_percent": 100 * cpu_s / idle_s,
    }


async def own_throughput(port: int, messages: int) -> dict[str, float]:
    async with MqttClient(
        "127.0.0.1", port, "own-pub", keepalive_s=KEEPALIVE_S, clean_session=True
    ) as client:
        window = asyncio.Semaphore(WINDOW)
        started, cpu = time.perf_counter(), time.process_time()
        last = None
        for _ in range(messages):
            await window.acquire()
            last = client.publish_nowait("bench/own", PAYLOAD)
            last.add_done_callback(lambda _: window.release())
        for _ in range(WINDOW):
            await window.acquire()
        assert last is not None and last.done()
        elapsed = time.perf_counter() - started
        return {
            "msg_per_s": messages / elapsed,
            "cpu_us_per_msg": (time.process_time() - cpu) / messages * 1e6,
        }


async def aiomqtt_throughput(port: int, messages: int) -> dict[str, float]:
    import aiomqtt

    async with aiomqtt.Client(
        "127.0.0.1", port, identifier="aio-pub", keepalive=KEEPALIVE_S, max_inflight_messages=WINDOW
    ) as client:
        window = asyncio.Semaphore(WINDOW)

        async def one() -> None:
            try:
                await client.publish("bench/aio", PAYLOAD, qos=1)
            finally:
                window.release()

        started, cpu = time.perf_counter(), time.process_time()
        async with asyncio.TaskGroup() as group:
            for _ in range(messages):
                await window.acquire()
                group.create_task(one())
        elapsed = time.perf_counter() - started
        return {
            "msg_per_s": messages / elapsed,
            "cpu_us_per_msg": (time.process_time() - cpu) / messages * 1e6,
        }


def child(args: argparse.Namespace) -> None:
    kind, mode = args.child.split(":")
    runs: dict[str, Any] = {
        "own:idle": lambda: own_idle(args.port, args.connections, args.idle_seconds),
        "aiomqtt:idle": lambda: aiomqtt_idle(args.port, args.connections, args.idle_seconds),
        "own:throughput": lambda: own_throughput(args.port, args.messages),
        "aiomqtt:throughput": lambda: aiomqtt_throughput(args.port, args.messages),
    }
    print(json.dumps(asyncio.run(runs[f"{kind}:{mode}"]())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="carcloud-mqtt-bench-") as tmp:
        nats_port, mqtt_port = free_port(), free_port()
        config = Path(tmp) / "nats.conf"
        config.write_text(
            f"server_name: bench\nlisten: 127.0.0.1:{nats_port}\n"
            f'jetstream {{ store_dir: "{tmp}/js" }}\n'
            f"mqtt {{ host: 127.0.0.1, port: {mqtt_port} }}\n"
        )
        server = subprocess.Popen(
            [nats_server_binary(), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(2.0)
            for run in ("own:throughput", "aiomqtt:throughput", "own:idle", "aiomqtt:idle"):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", run, "--port", str(mqtt_port),
                     "--connections", str(args.connections), "--messages", str(args.messages),
                     "--idle-seconds", str(args.idle_seconds)],
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                result = out.stdout.strip() or out.stderr.strip().splitlines()[-1]
                print(f"{run:20} {result}", flush=True)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
