"""The campaigns slice: campaigns kept as fleet configurations, and their status.

A campaign is stored as a fleet configuration named `campaign:<name>` whose
desired properties are `{"campaigns": {<name>: <definition>}}`, so targeting,
vehicles that match later, and re-delivery after reconnect all come from the
twins slice. Agents report what they run under `campaign_status`.

A configuration of that name whose document is not a campaign (edited by hand
through /configurations) is skipped with a warning: one bad record never breaks
the list for everyone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from carcloud.errors import ConflictError, NotFoundError, ValidationError
from carcloud.events.models import NewEvent
from carcloud.events.store import EventStore
from carcloud.twins.models import Configuration, Twin
from carcloud.twins.service import TwinService
from carcloud_agent.campaigns import parse_campaign

log = logging.getLogger(__name__)

PREFIX = "campaign:"
PRIORITY = 100


@dataclass(frozen=True, slots=True)
class Campaign:
    """A campaign as the API shows it, with its fleet status."""

    name: str
    configuration: Configuration
    definition: dict[str, Any]
    targeted: int
    running: int
    failed: int

    @property
    def active(self) -> bool:
        return bool(self.definition.get("active", True))


def definition_of(configuration: Configuration) -> dict[str, Any] | None:
    """The campaign definition a configuration holds, or None if it holds none."""
    name = configuration.name.removeprefix(PREFIX)
    campaigns = configuration.desired.get("campaigns")
    if not isinstance(campaigns, Mapping):
        return None
    definition = campaigns.get(name)
    return dict(definition) if isinstance(definition, Mapping) else None


def campaign_failed(reported: Mapping[str, Any], name: str) -> bool:
    """Whether a car reports that it could not run campaign `name` (exactly that name).

    Agents report `errors.campaigns` as "name: reason; other: reason", or per
    campaign under `campaign_status.<name>.error`.
    """
    statuses = reported.get("campaign_status")
    state = statuses.get(name) if isinstance(statuses, Mapping) else None
    if isinstance(state, Mapping) and state.get("error"):
        return True
    errors = reported.get("errors")
    text = errors.get("campaigns") if isinstance(errors, Mapping) else None
    if isinstance(text, Mapping):
        return name in text
    if not isinstance(text, str):
        return False
    return any(entry.split(":", 1)[0].strip() == name for entry in text.split(";"))


def _running(reported: Mapping[str, Any], name: str) -> bool:
    statuses = reported.get("campaign_status")
    state = statuses.get(name) if isinstance(statuses, Mapping) else None
    return isinstance(state, Mapping) and bool(state.get("running"))


class CampaignService:
    """Create, read, pause, resume and delete campaigns."""

    def __init__(self, twins: TwinService, events: EventStore | None = None) -> None:
        self.twins = twins
        self.events = events

    def _campaign(self, configuration: Configuration, twins: list[Twin]) -> Campaign | None:
        definition = definition_of(configuration)
        if definition is None:
            log.warning(
                "configuration %s (%s) is named like a campaign but holds no campaign "
                "definition; it is left out of the campaign list",
                configuration.id,
                configuration.name,
            )
            return None
        name = configuration.name.removeprefix(PREFIX)
        failed = sum(1 for twin in twins if campaign_failed(twin.reported, name))
        running = sum(
            1
            for twin in twins
            if not campaign_failed(twin.reported, name) and _running(twin.reported, name)
        )
        return Campaign(name, configuration, definition, len(twins), running, failed)

    async def _with_status(self, configuration: Configuration) -> Campaign | None:
        return self._campaign(configuration, await self.twins.twins_matching(configuration.target))

    async def list(self, brand: str | None) -> list[Campaign]:
        """Every campaign the caller may see, with its status; malformed records skipped."""
        found = []
        for configuration in await self.twins.list_configurations(brand, PREFIX):
            campaign = await self._with_status(configuration)
            if campaign is not None:
                found.append(campaign)
        return found

    async def _configuration(self, brand: str | None, name: str) -> Configuration:
        for configuration in await self.twins.list_configurations(brand, PREFIX + name):
            if configuration.name == PREFIX + name:
                return configuration
        raise NotFoundError(f"campaign {name!r} not found")

    async def get(self, brand: str | None, name: str) -> Campaign:
        """One campaign; NotFound for a malformed record too (with the reason)."""
        campaign = await self._with_status(await self._configuration(brand, name))
        if campaign is None:
            raise NotFoundError(
                f"campaign {name!r} has no valid definition (its configuration was edited "
                "by hand); delete it and create it again"
            )
        return campaign

    async def _changed(self, brand: str | None, name: str, action: str) -> None:
        if self.events is not None:
            data = {"name": name, "action": action}
            await self.events.append([NewEvent("campaign.changed", brand=brand, data=data)])

    async def create(
        self, brand: str | None, name: str, target: Mapping[str, Any], body: dict[str, Any]
    ) -> Campaign:
        """Start collecting: the targeted agents get the campaign through their twin."""
        definition = parse_campaign(name, body)
        if await self.twins.store.find_configuration(PREFIX + name) is not None:
            raise ConflictError(f"campaign {name!r} already exists")
        saved = await self.twins.save_configuration(
            brand,
            PREFIX + name,
            target,
            PRIORITY,
            {"campaigns": {name: definition.to_document()}},
            id_prefix="cmp",
        )
        await self._changed(saved.brand, name, "created")
        return await self.get(brand, name)

    async def set_active(self, brand: str | None, name: str, active: bool) -> Campaign:
        """Pause or resume; a malformed record is repaired only by deleting it."""
        current = await self._configuration(brand, name)
        document = definition_of(current)
        if document is None:
            raise ValidationError(
                f"campaign {name!r} has no valid definition; delete it and create it again"
            )
        document["active"] = active
        await self.twins.save_configuration(
            brand,
            current.name,
            current.target,
            current.priority,
            {"campaigns": {name: document}},
            configuration_id=current.id,
        )
        await self._changed(current.brand, name, "resumed" if active else "paused")
        return await self.get(brand, name)

    async def delete(self, brand: str | None, name: str) -> None:
        """Remove a campaign from every agent."""
        current = await self._configuration(brand, name)
        await self.twins.delete_configuration(current.id, brand)
        await self._changed(current.brand, name, "deleted")
