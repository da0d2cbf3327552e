"""Start `carcloud up` as a child process and wait until it serves (tests, benchmarks)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from carcloud.client import ApiClient
from carcloud.errors import CarcloudError
from carcloud.runtime.child import spawn
from carcloud.runtime.ports import free_port


@dataclass
class PlatformProcess:
    """A `carcloud up` child process on given ports."""

    data_dir: Path
    http_port: int = field(default_factory=free_port)
    mqtt_port: int = field(default_factory=free_port)
    nats_port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "up.log"

    def command(self) -> list[str]:
        """The command line of the child."""
        return [
            sys.executable,
            "-m",
            "carcloud.cli",
            "up",
            "--data-dir",
            str(self.data_dir),
            "--http-port",
            str(self.http_port),
            "--mqtt-port",
            str(self.mqtt_port),
            "--nats-port",
            str(self.nats_port),
            *self.extra_args,
        ]

    def start(self, timeout: float = 90.0) -> None:
        """Start the child and wait until /healthz answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if threading.current_thread() is threading.main_thread():
            # It dies with whoever started it: a test run killed half-way leaves no
            # platform behind, holding ports and CPU.
            self.process = spawn(self.command(), self.log_path)
        else:
            # PDEATHSIG follows the thread that started the child, not the process: from
            # another thread it would die as soon as that thread ends.
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    self.command(), stdout=log, stderr=subprocess.STDOUT
                )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CarcloudError(f"carcloud up exited {self.process.returncode}:\n{self.log()}")
            if (self.data_dir / "runtime.json").exists():
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise CarcloudError(f"carcloud up was not ready within {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        """What the child printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> int | None:
        """Stop the child (Ctrl-C by default); returns its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def spawn_worker(self, *roles: str) -> subprocess.Popen[bytes]:
        """Start `carcloud worker ROLES` against this platform (quietly)."""
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "carcloud.cli",
                "worker",
                *roles,
                "--data-dir",
                str(self.data_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def operator_key(self) -> str:
        return (self.data_dir / "operator.key").read_text().strip()

    def api(self, key: str | None = None) -> ApiClient:
        """An API client with the operator key (or the given one)."""
        return ApiClient(self.url, key or self.operator_key)

    def ensure_brand(self, slug: str) -> None:
        """Create the brand unless it exists."""
        with self.api() as api:
            if slug not in {b["slug"] for b in api.get("/brands")}:
                api.post("/brands", {"slug": slug, "name": slug.title()})
