"""The drivers' rules: profiles are validated before they are stored, ids are made here."""

from __future__ import annotations

import dataclasses
import secrets

from carcloud.drivers.models import Driver
from carcloud.drivers.store import DriverStore
from carcloud.timeutil import now_us


class DriverService:
    """Create, change and read driver profiles; choose a vehicle's driver."""

    def __init__(self, store: DriverStore) -> None:
        self.store = store

    async def create(self, draft: Driver) -> Driver:
        """A new driver from a draft (its id and times are ignored)."""
        draft.check()
        now = now_us()
        driver = dataclasses.replace(
            draft, id=f"drv_{secrets.token_hex(8)}", created_at=now, updated_at=now
        )
        return await self.store.create_driver(driver)

    async def update(self, driver_id: str, brand: str | None, draft: Driver) -> Driver:
        """Replace the profile of an existing driver the caller can see."""
        draft.check()
        current = await self.store.get_driver(driver_id, brand)
        changed = dataclasses.replace(
            draft,
            id=current.id,
            brand=current.brand,
            created_at=current.created_at,
            updated_at=now_us(),
        )
        return await self.store.update_driver(changed)

    async def get(self, driver_id: str, brand: str | None) -> Driver:
        """One driver the caller can see."""
        return await self.store.get_driver(driver_id, brand)

    async def list(self, brand: str | None) -> list[Driver]:
        """Drivers the caller can see."""
        return await self.store.list_drivers(brand)

    async def delete(self, driver_id: str, brand: str | None) -> None:
        """Remove a driver and their calendar accounts."""
        await self.store.delete_driver(driver_id, brand)

    async def set_vehicle_driver(self, vin: str, brand: str | None, driver_id: str | None) -> None:
        """Who drives the vehicle now (the driver must be of the vehicle's brand)."""
        await self.store.set_vehicle_driver(vin, brand, driver_id)

    async def vehicle_driver(self, vin: str, brand: str | None) -> Driver | None:
        """The vehicle's current driver, if it has one."""
        return await self.store.vehicle_driver(vin, brand)
