"""KUKSA databroker as a signal source, for cars that already run one.

The databroker speaks VSS already, so there is no mapping: the agent reads the
configured paths (gRPC `kuksa.val.v1` Get through `kuksa-client`) every
`poll_ms`, and carries out commands by setting actuator targets (lock →
`Vehicle.Cabin.Door.Row1.DriverSide.IsLocked` target true).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from carcloud_agent.catalog import SignalValueError, default_catalog
from carcloud_agent.errors import ConfigError
from carcloud_agent.sources import SignalValues

log = logging.getLogger(__name__)

# Command kinds that set an actuator target, and the value they set.
ACTUATOR_TARGETS: dict[str, tuple[str, object]] = {
    "lock": ("Vehicle.Cabin.Door.Row1.DriverSide.IsLocked", True),
    "unlock": ("Vehicle.Cabin.Door.Row1.DriverSide.IsLocked", False),
    "set_charge_limit": ("Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit", None),
}


class KuksaSource:
    """Polls a KUKSA databroker for VSS signals; sets actuator targets for commands."""

    def __init__(
        self, vin: str, host: str, port: int, paths: Sequence[str], poll_ms: int = 1000
    ) -> None:
        catalog = default_catalog()
        unknown = [path for path in paths if path not in catalog]
        if unknown:
            raise ConfigError(f"not in the signal catalog: {', '.join(unknown)}")
        if not paths:
            raise ConfigError("a kuksa source needs paths = [...] to read")
        self._vin = vin
        self.target = f"{host}:{port}"
        self.paths = list(paths)
        self.poll_s = poll_ms / 1000.0
        self.catalog = catalog
        self.latest: dict[str, object] = {}
        self.changed = False
        self.errors = 0
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_config(cls, vin: str, source: Mapping[str, Any]) -> KuksaSource:
        """[source] kind = "kuksa", host, port, paths, poll_ms."""
        return cls(
            vin,
            str(source.get("host", "127.0.0.1")),
            int(source.get("port", 55555)),
            [str(path) for path in source.get("paths", [])],
            int(source.get("poll_ms", 1000)),
        )

    @property
    def vin(self) -> str:
        return self._vin

    async def start(self) -> None:
        """Connect and begin polling (the agent calls this once its loop runs)."""
        from kuksa_client.grpc.aio import VSSClient

        host, port = self.target.rsplit(":", 1)
        self._client = VSSClient(host, int(port), ensure_startup_connection=False)
        await self._client.connect()
        self._task = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        from kuksa_client.grpc import VSSClientError

        while True:
            try:
                current = await self._client.get_current_values(self.paths)
            except VSSClientError as exc:
                self.errors += 1
                log.warning("kuksa: cannot read from %s: %s", self.target, exc)
            else:
                for path, datapoint in current.items():
                    if datapoint is None or datapoint.value is None:
                        continue
                    try:
                        value = self.catalog.validate(path, datapoint.value)
                    except SignalValueError:
                        self.errors += 1
                        continue
                    if self.latest.get(path) != value:
                        self.changed = True
                    self.latest[path] = value
            await asyncio.sleep(self.poll_s)

    def sample(self, dt_s: float) -> tuple[str, SignalValues] | None:
        """The latest values, when something changed since the last sample."""
        if not self.changed or not self.latest:
            return None
        self.changed = False
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        return f"{stamp}.{int(now % 1 * 1000):03d}Z", dict(self.latest)

    def apply_command(self, kind: str, params: Mapping[str, object]) -> tuple[bool, str | None]:
        """Commands go through apply_command_async (they need the databroker's answer)."""
        return False, "commands through the KUKSA databroker are asynchronous"

    async def apply_command_async(
        self, kind: str, params: Mapping[str, object]
    ) -> tuple[bool, str | None]:
        """Set the actuator target the command means; the databroker's provider acts on it."""
        target = ACTUATOR_TARGETS.get(kind)
        if target is None or self._client is None:
            return False, f"{kind} is not supported through the KUKSA databroker"
        path, value = target
        if value is None:
            value = params.get("percent")
        from kuksa_client.grpc import Datapoint

        try:
            await self._client.set_target_values({path: Datapoint(value)})
        except Exception as exc:  # the client raises several kinds; all mean "not set"
            self.errors += 1
            return False, f"the databroker did not take {path}: {exc}"
        return True, None

    def close(self) -> None:
        """Stop polling (aclose also closes the gRPC channel)."""
        if self._task is not None:
            self._task.cancel()

    async def aclose(self) -> None:
        """Stop polling and close the connection to the databroker."""
        self.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):
                await client.disconnect()
