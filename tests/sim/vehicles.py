"""A simulated vehicle of a given demo brand and model, for the model's tests."""

from __future__ import annotations

from carcloud.sim import BRANDS, SimVehicle, make_vin, network_for


def make_vehicle(
    brand_slug: str,
    model: str,
    *,
    seed: int = 1,
    soc: float = 60.0,
    fuel: float = 60.0,
    first_departure_s: float = 60.0,
    fault_rate_per_hour: float = 0.004,
) -> SimVehicle:
    """One vehicle at a home (or depot) of its brand's city."""
    brand = BRANDS[brand_slug]
    line = next(m for m in brand.models if m.spec.model == model)
    network = network_for(brand.city)
    homes = network.places_of("depot" if brand.usage == "delivery" else "home")
    return SimVehicle(
        line.spec,
        make_vin(brand.wmi, f"{line.code}TS1", 2025, brand.plants[0], seed),
        network,
        seed=seed,
        home=homes[seed % len(homes)],
        soc_percent=soc,
        fuel_percent=fuel,
        usage=brand.usage,
        first_departure_s=first_departure_s,
        fault_rate_per_hour=fault_rate_per_hour,
    )
