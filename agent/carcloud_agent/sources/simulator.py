"""The simulator's vehicle model as a signal source (so a demo fleet can run the agent)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from carcloud.sim.citygen import network_for
from carcloud.sim.fleet import BRANDS
from carcloud.sim.model import SimVehicle
from carcloud.sim.runner import next_sample
from carcloud_agent.sources import SignalValues


class SimulatorSource:
    """A simulated car with the agent's VIN; `speedup` simulated seconds per second."""

    def __init__(
        self, vin: str, brand: str = "volta", seed: int = 1, speedup: float = 1.0,
        start_epoch_s: float | None = None,
    ) -> None:  # fmt: skip
        spec_brand = BRANDS[brand]
        line = spec_brand.models[seed % len(spec_brand.models)]
        network = network_for(spec_brand.city)
        homes = network.places_of("depot" if spec_brand.usage == "delivery" else "home")
        self.speedup = speedup
        self.vehicle = SimVehicle(
            line.spec,
            vin,
            network,
            seed=seed,
            home=homes[seed % len(homes)],
            usage=spec_brand.usage,
            start_epoch_s=start_epoch_s if start_epoch_s is not None else float(int(time.time())),
        )

    @property
    def vin(self) -> str:
        return self.vehicle.vin

    @property
    def epoch_s(self) -> float:
        return self.vehicle.epoch_s

    def sample(self, dt_s: float) -> tuple[str, SignalValues]:
        return next_sample(self.vehicle, dt_s * self.speedup)

    def apply_command(self, kind: str, params: Mapping[str, object]) -> tuple[bool, str | None]:
        return self.vehicle.apply_command(kind, params)

    def close(self) -> None:
        """Nothing to release."""
