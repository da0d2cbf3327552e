"""What the drivers slice needs persisted: profiles, and the current driver of a vehicle."""

from __future__ import annotations

from typing import Protocol

from carcloud.drivers.models import Driver


class DriverStore(Protocol):
    """Driver profiles of brands, and which driver a vehicle has now.

    `brand` None is an operator's view (every brand); a record of another brand is
    NotFoundError, as if it did not exist.
    """

    async def create_driver(self, driver: Driver) -> Driver:
        """Store a new driver; NotFoundError for an unknown brand."""
        ...

    async def update_driver(self, driver: Driver) -> Driver:
        """Replace a driver's profile (by id; the brand never changes)."""
        ...

    async def get_driver(self, driver_id: str, brand: str | None) -> Driver:
        """One driver; NotFoundError if it is not there for the caller."""
        ...

    async def list_drivers(self, brand: str | None) -> list[Driver]:
        """Drivers of a brand (every brand for None), by name."""
        ...

    async def delete_driver(self, driver_id: str, brand: str | None) -> None:
        """Remove a driver with their calendar accounts; vehicles they drove have none."""
        ...

    async def set_vehicle_driver(self, vin: str, brand: str | None, driver_id: str | None) -> None:
        """Make `driver_id` (of the vehicle's brand) the vehicle's driver; None: nobody."""
        ...

    async def vehicle_driver(self, vin: str, brand: str | None) -> Driver | None:
        """The vehicle's current driver; NotFoundError for a vehicle the caller cannot see."""
        ...
