"""`carcloud up`: ports, restarts, clean shutdown, and the CLI around it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from carcloud.runtime.launcher import free_port
from tests.conftest import start_platform
from tests.platform import Car, Platform


def carcloud(*args: str, data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--data-dir", str(data_dir)] if data_dir is not None else []
    return subprocess.run(
        [sys.executable, "-m", "carcloud.cli", *args, *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_port_in_use_gives_one_line_naming_the_flag(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "carcloud.cli",
                "up",
                "--data-dir",
                str(tmp_path),
                "--http-port",
                str(free_port()),
                "--mqtt-port",
                str(port),
                "--nats-port",
                str(free_port()),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"port {port}" in lines[0] and "--mqtt-port" in lines[0]


def nats_children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(
            next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:"))
        )
        if ppid == pid and b"nats-server" in cmdline:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


@pytest.mark.slow
def test_restart_keeps_everything_and_ctrl_c_leaves_no_nats_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_platform(data_dir)
    assert first.process is not None
    server_pids = nats_children(first.process.pid)
    assert len(server_pids) == 1
    creds = first.register()
    car = Car(first, creds.vin, creds.password)
    car.connect()
    car.telemetry({"Vehicle.Speed": 61.0})
    with first.api() as api:
        first.wait_for(lambda: api.get(f"/vehicles/{creds.vin}/state")["signals"], what="state")
    car.disconnect()
    key = first.operator_key
    assert first.stop(signal.SIGINT) == 0
    assert not alive(server_pids[0]), "nats-server outlived carcloud up"

    second = Platform(data_dir, first.http_port, first.mqtt_port, first.nats_port)
    second.start()
    try:
        assert second.operator_key == key
        with second.api() as api:
            assert (
                api.get(f"/vehicles/{creds.vin}/state")["signals"]["Vehicle.Speed"]["value"] == 61.0
            )
        again = Car(second, creds.vin, creds.password)
        assert not again.connect().is_failure, "credentials did not survive the restart"
        again.disconnect()
    finally:
        second.stop()


@pytest.mark.slow
def test_kill_9_of_carcloud_takes_nats_server_down_too(tmp_path: Path) -> None:
    platform = start_platform(tmp_path / "data")
    assert platform.process is not None
    server_pids = nats_children(platform.process.pid)
    platform.process.send_signal(signal.SIGKILL)
    platform.process.wait()
    platform.wait_for(lambda: not alive(server_pids[0]), timeout=10, what="nats-server to exit")


def test_cli_round_trip_with_json(platform: Platform) -> None:
    data_dir = str(platform.data_dir)
    added = carcloud("brands", "add", "clibrand", "CLI Brand", "--json", data_dir=Path(data_dir))
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["slug"] == "clibrand"
    vehicle = carcloud(
        "vehicles",
        "add",
        "WVWZZZ1JZXW0CL701",
        "--brand",
        "clibrand",
        "--model",
        "C1",
        "--year",
        "2024",
        "--tag",
        "a",
        "--json",
        data_dir=Path(data_dir),
    )
    assert vehicle.returncode == 0, vehicle.stderr
    created = json.loads(vehicle.stdout)
    assert created["mqtt_username"] == "WVWZZZ1JZXW0CL701" and len(created["mqtt_password"]) > 20
    listed = json.loads(
        carcloud(
            "vehicles", "list", "--brand", "clibrand", "--json", data_dir=Path(data_dir)
        ).stdout
    )
    assert [v["vin"] for v in listed] == ["WVWZZZ1JZXW0CL701"]
    shown = carcloud("vehicles", "show", "WVWZZZ1JZXW0CL701", data_dir=Path(data_dir))
    assert shown.returncode == 0 and "WVWZZZ1JZXW0CL701" in shown.stdout
    status = json.loads(carcloud("status", "--json", data_dir=Path(data_dir)).stdout)
    assert status["vehicles"]["registered"] >= 1
    revoked = json.loads(
        carcloud(
            "vehicles", "revoke", "WVWZZZ1JZXW0CL701", "--json", data_dir=Path(data_dir)
        ).stdout
    )
    assert revoked["revoked"] is True
    bad = carcloud("vehicles", "show", "NOTAVIN", data_dir=Path(data_dir))
    assert bad.returncode == 2 and "error:" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["up", "--help"],
        ["worker", "--help"],
        ["status", "--help"],
        ["brands", "add", "--help"],
        ["vehicles", "add", "--help"],
        ["vehicles", "list", "--help"],
        ["vehicles", "rotate-secret", "--help"],
        ["vehicles", "revoke", "--help"],
        ["vehicles", "show", "--help"],
    ],
)
def test_every_command_explains_itself(command: list[str]) -> None:
    result = carcloud(*command)
    assert result.returncode == 0 and "usage: carcloud" in result.stdout
    assert len(result.stdout.splitlines()) > 3


def test_cli_without_a_running_platform_says_so(tmp_path: Path) -> None:
    result = carcloud("vehicles", "list", data_dir=tmp_path)
    assert result.returncode == 2
    assert "carcloud up" in result.stderr and "Traceback" not in result.stderr


async def test_a_stream_takes_a_consumer_per_subscription_of_a_large_fleet(
    platform: Platform,
) -> None:
    """Every QoS 1 subscription of a car is a consumer of one stream ($MQTT_msgs).

    nats-server 2.15 caps a stream at 1,000 consumers unless configured otherwise:
    two subscriptions per car would stop commands at the 501st car.
    """
    import nats
    from nats.js.api import ConsumerConfig, StorageType, StreamConfig

    secrets = json.loads((platform.data_dir / "secrets.json").read_text())["passwords"]
    nc = await nats.connect(
        f"nats://127.0.0.1:{platform.nats_port}", user="svc", password=secrets["svc"]
    )
    js = nc.jetstream()
    try:
        await js.add_stream(
            StreamConfig(name="FLEETSIZE", subjects=["fleetsize.>"], storage=StorageType.MEMORY)
        )
        for index in range(1_200):
            await js.add_consumer(
                "FLEETSIZE",
                ConsumerConfig(durable_name=f"car{index}", filter_subject=f"fleetsize.{index}.*"),
            )
        info = await js.stream_info("FLEETSIZE")
        assert info.state.consumer_count == 1_200
    finally:
        await js.delete_stream("FLEETSIZE")
        await nc.close()
