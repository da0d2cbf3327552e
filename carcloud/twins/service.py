"""The twins slice's rules: effective desired documents, reported state, fleet configurations.

A vehicle's effective desired document is every configuration whose target
matches it, merged by priority (lowest first), then the vehicle's own desired
properties on top. It gets a new version only when it changes, and each new
version is a `twin.desired_changed` event and a request to deliver it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client as NatsClient

from carcloud.errors import NotFoundError, ValidationError
from carcloud.events.models import NewEvent
from carcloud.events.store import EventStore
from carcloud.messaging.dispatch import request_dispatch
from carcloud.registry.models import Vehicle
from carcloud.timeutil import format_us, now_us
from carcloud.twins.documents import check_document, check_target, matches, merge_patch, pending
from carcloud.twins.models import Configuration, Twin
from carcloud.twins.store import TwinStore


def effective_desired(
    vehicle: Vehicle, own: dict[str, Any], configurations: Sequence[Configuration]
) -> dict[str, Any]:
    """Matching configurations by priority (then name), the vehicle's own properties last."""
    effective: dict[str, Any] = {}
    for configuration in configurations:
        if matches(configuration.target, vehicle):
            effective = merge_patch(effective, configuration.desired)
    return merge_patch(effective, own)


def desired_event(twin: Twin) -> Sequence[NewEvent]:
    """The event of a new effective desired version."""
    data = {"version": twin.desired_version, "desired": twin.desired}
    return (NewEvent("twin.desired_changed", vin=twin.vin, data=data),)


def reported_event(twin: Twin) -> Sequence[NewEvent]:
    """The event of a car's report: the whole reported document as it now is."""
    data = {"reported": twin.reported, "desired_version": twin.reported_desired_version}
    return (NewEvent("twin.reported_changed", vin=twin.vin, data=data),)


def configuration_json(configuration: Configuration) -> dict[str, Any]:
    """A configuration in event payloads."""
    return {
        "id": configuration.id,
        "name": configuration.name,
        "target": configuration.target,
        "priority": configuration.priority,
        "desired": configuration.desired,
        "updated_at": format_us(configuration.updated_at),
    }


@dataclass(frozen=True, slots=True)
class ConfigurationStatus:
    """How far a configuration has got in the fleet it targets."""

    targeted: int
    applied: int
    failed: int

    @property
    def pending(self) -> int:
        return self.targeted - self.applied - self.failed


def configuration_status(
    configuration: Configuration, twins: Sequence[Twin]
) -> ConfigurationStatus:
    """Applied: the car reports every property; failed: it reports an error for one."""
    applied = failed = 0
    for twin in twins:
        errors = twin.reported.get("errors")
        if isinstance(errors, dict) and set(errors) & set(configuration.desired):
            failed += 1
        elif not pending(configuration.desired, twin.reported) or not pending(
            twin.desired, twin.reported
        ):
            applied += 1
    return ConfigurationStatus(len(twins), applied, failed)


def scoped_target(brand: str | None, target: Mapping[str, Any]) -> dict[str, Any]:
    """A target checked, and held to the caller's brand when the caller has one."""
    checked = dict(check_target(dict(target)))
    if brand is not None:
        if checked.get("brand", brand) != brand:
            raise ValidationError(f"a key of brand {brand!r} can only target that brand")
        checked["brand"] = brand
    return checked


def visible(brand: str | None, configuration: Configuration) -> bool:
    """An operator sees every configuration, a brand only those targeting it."""
    return brand is None or configuration.target.get("brand") == brand


class TwinService:
    """Twins and configurations for the API and the control role."""

    def __init__(
        self, store: TwinStore, nats: NatsClient | None = None, events: EventStore | None = None
    ) -> None:
        self.store = store
        self.nats = nats
        self.events = events

    async def _deliver(self, twins: Sequence[Twin]) -> None:
        if self.nats is not None:
            for twin in twins:
                await request_dispatch(self.nats, twin.vin)

    # ---- one vehicle -------------------------------------------------------------------

    async def get(self, vin: str, brand: str | None) -> Twin:
        """A vehicle's twin (NotFoundError for a vehicle the caller cannot see)."""
        return await self.store.get_twin(vin, brand)

    async def own_desired_value(self, vin: str, key: str) -> Any:
        """One property of the vehicle's own desired document (None when not set), without
        reading the rest of the twin (NotFoundError for an unknown vehicle)."""
        return await self.store.own_desired_value(vin, key)

    async def set_desired(
        self, vin: str, brand: str | None, own: dict[str, Any], if_version: int | None
    ) -> Twin:
        """Replace the vehicle's own desired properties (If-Match: the version read)."""
        check_document(own)
        twin = await self.store.set_desired(
            vin, brand, own, if_version, effective_desired, emit=desired_event
        )
        await self._deliver([twin])
        return twin

    async def patch_desired(
        self, vin: str, brand: str | None, patch: dict[str, Any], if_version: int | None
    ) -> Twin:
        """Merge-patch the vehicle's own desired properties (RFC 7386)."""
        current = await self.store.get_twin(vin, brand)
        own = merge_patch(current.desired_own, check_document(patch))
        return await self.set_desired(vin, brand, own, if_version)

    async def record_reported(
        self, vin: str, reported: dict[str, Any], desired_version: int | None
    ) -> Twin | None:
        """What a car reported (a merge patch of its reported document)."""
        return await self.store.set_reported(
            vin,
            lambda twin: merge_patch(twin.reported, reported),
            desired_version,
            now_us(),
            emit=reported_event,
        )

    async def refresh_vehicle(self, vin: str) -> None:
        """A vehicle was registered or changed: give it the configurations that now match."""
        await self._deliver(
            await self.store.refresh_desired(effective_desired, vins=[vin], emit=desired_event)
        )

    async def refresh_vehicles(self, vins: Sequence[str]) -> None:
        """Many vehicles were registered: one pass over the configurations for all of them."""
        if vins:
            await self._deliver(
                await self.store.refresh_desired(effective_desired, vins=vins, emit=desired_event)
            )

    async def unsynced(self) -> list[Twin]:
        """Twins whose car has not applied the current desired version."""
        return await self.store.unsynced_twins()

    # ---- fleet configurations ----------------------------------------------------------

    async def _apply(self, configuration: Configuration, *targets: Mapping[str, Any]) -> None:
        """Recompute the desired documents of every vehicle `targets` match, and send them."""
        changed = await self.store.refresh_desired(
            effective_desired, targets=targets, emit=desired_event
        )
        if self.events is not None:
            data = {"id": configuration.id, "name": configuration.name, "vehicles": len(changed)}
            await self.events.append(
                [NewEvent("configuration.applied", brand=configuration.brand, data=data)]
            )
        await self._deliver(changed)

    async def list_configurations(
        self, brand: str | None, name_prefix: str | None = None
    ) -> list[Configuration]:
        """Configurations the caller may see."""
        return [c for c in await self.store.list_configurations(name_prefix) if visible(brand, c)]

    async def get_configuration(self, configuration_id: str, brand: str | None) -> Configuration:
        """One configuration the caller may see."""
        configuration = await self.store.get_configuration(configuration_id)
        if not visible(brand, configuration):
            raise NotFoundError(f"configuration {configuration_id} not found")
        return configuration

    async def save_configuration(
        self,
        brand: str | None,
        name: str,
        target: Mapping[str, Any],
        priority: int,
        desired: dict[str, Any],
        configuration_id: str | None = None,
        id_prefix: str = "cfg",
    ) -> Configuration:
        """Create (no id) or replace a configuration, and apply it to the fleet."""
        scoped = scoped_target(brand, target)
        check_document(desired, "desired")
        now = now_us()
        previous: Configuration | None = None
        if configuration_id is not None:
            previous = await self.get_configuration(configuration_id, brand)
        configuration = Configuration(
            id=configuration_id or f"{id_prefix}_{secrets.token_hex(6)}",
            name=name,
            target=scoped,
            priority=priority,
            desired=desired,
            created_at=previous.created_at if previous else now,
            updated_at=now,
        )
        saved = await self.store.save_configuration(
            configuration,
            emit=lambda c: (
                NewEvent("configuration.saved", brand=c.brand, data=configuration_json(c)),
            ),
        )
        await self._apply(saved, saved.target, *([previous.target] if previous else []))
        return saved

    async def delete_configuration(self, configuration_id: str, brand: str | None) -> None:
        """Remove a configuration; its properties leave the vehicles' desired documents."""
        await self.get_configuration(configuration_id, brand)
        deleted = await self.store.delete_configuration(
            configuration_id,
            emit=lambda c: (
                NewEvent("configuration.deleted", brand=c.brand, data=configuration_json(c)),
            ),
        )
        await self._apply(deleted, deleted.target)

    async def configuration_status(self, configuration: Configuration) -> ConfigurationStatus:
        """Targeted, applied and failed vehicles of one configuration (targeting in SQL)."""
        return configuration_status(
            configuration, await self.store.twins_matching(configuration.target)
        )

    async def twins_matching(self, target: Mapping[str, Any]) -> list[Twin]:
        """Twins of the vehicles a target matches now."""
        return await self.store.twins_matching(target)
