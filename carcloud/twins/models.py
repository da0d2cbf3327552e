"""Twins (desired and reported properties) and fleet-wide configurations."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


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

    @property
    def brand(self) -> str | None:
        """The brand the target names; None for a configuration of every brand."""
        brand = self.target.get("brand")
        return brand if isinstance(brand, str) else None


def canonical(document: object) -> str:
    """A JSON document in one canonical text, so that equal documents compare equal."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def next_desired_version(
    current: Twin, own: dict[str, Any], effective: dict[str, Any]
) -> int | None:
    """The version to store own and effective under, or None when nothing changed.

    A new version only when the effective document (what the car gets) changes; a
    change of the vehicle's own properties alone is kept under the same version.
    """
    existed = current.desired_updated_at is not None
    effective_changed = canonical(current.desired) != canonical(effective)
    if existed and not effective_changed and canonical(current.desired_own) == canonical(own):
        return None
    if not existed and not own and not effective:
        return None
    return current.desired_version + (1 if not existed or effective_changed else 0)
