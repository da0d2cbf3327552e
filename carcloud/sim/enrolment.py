"""Registering a simulated fleet with carcloud, and remembering the cars' secrets."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from carcloud.client import ApiClient
from carcloud.errors import ConflictError
from carcloud.sim.fleet import BRANDS
from carcloud.sim.model import SimVehicle


def load_credentials(path: Path | None) -> dict[str, str]:
    """VIN -> MQTT password saved by an earlier run (empty if none)."""
    if path is None or not path.exists():
        return {}
    data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return data


def save_credentials(path: Path, credentials: dict[str, str]) -> None:
    """Keep the secrets for the next run, readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(credentials, handle)
    os.replace(path.with_suffix(".tmp"), path)


def enrol(
    api: ApiClient,
    vehicles: Sequence[SimVehicle],
    known: dict[str, str],
    progress: Callable[[int], None] | None = None,
) -> dict[str, str]:
    """Register brands and vehicles that are new; returns VIN -> password for all of them."""
    existing_brands = {brand["slug"] for brand in api.get("/brands")}
    for slug in sorted({vehicle.spec.brand for vehicle in vehicles} - existing_brands):
        brand = BRANDS[slug]
        with contextlib.suppress(ConflictError):  # created meanwhile by another run
            api.post("/brands", {"slug": slug, "name": brand.name})

    def register(vehicle: SimVehicle) -> tuple[str, str]:
        body = {
            "vin": vehicle.vin,
            "brand": vehicle.spec.brand,
            "model": vehicle.spec.model,
            "model_year": vehicle.spec.model_year,
            "tags": ["simulated", f"powertrain:{vehicle.spec.powertrain}"],
        }
        try:
            created = api.post("/vehicles", body)
        except ConflictError:
            # Registered by an earlier run whose secret we no longer have: issue a new one.
            created = api.post(f"/vehicles/{vehicle.vin}/rotate-secret")
        return vehicle.vin, str(created["mqtt_password"])

    credentials = {v.vin: known[v.vin] for v in vehicles if v.vin in known}
    missing = [v for v in vehicles if v.vin not in known]
    # The server hashes each secret slowly (scrypt): a few requests at once use its cores.
    with ThreadPoolExecutor(max_workers=4) as pool:
        for vin, password in pool.map(register, missing):
            credentials[vin] = password
            if progress is not None:
                progress(1)
    return credentials
