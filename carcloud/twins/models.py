"""Twins (desired and reported properties) and fleet-wide configurations."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Twin:
    """A vehicle's twin: desired properties (own and effective, versioned) and reported ones."""

    vin: str
    desired_version: int
    desired_own: dict[str, object]
    desired: dict[str, object]
    desired_updated_at: int | None
    reported: dict[str, object]
    reported_desired_version: int | None
    reported_updated_at: int | None


@dataclass(frozen=True, slots=True)
class Configuration:
    """Desired properties for every vehicle matching a target, with a priority."""

    id: str
    name: str
    target: dict[str, object]
    priority: int
    desired: dict[str, object]
    created_at: int
    updated_at: int
