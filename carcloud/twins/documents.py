"""JSON documents of twins: merge patches, differences, and configuration targets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from carcloud.errors import ValidationError
from carcloud.registry.models import Vehicle

MAX_DEPTH = 8


def merge_patch(document: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch: objects merge, null removes a key, anything else replaces."""
    merged = dict(document)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_patch(merged[key], value)
        elif isinstance(value, Mapping):
            merged[key] = merge_patch({}, value)
        else:
            merged[key] = value
    return merged


def pending(desired: Mapping[str, Any], reported: Mapping[str, Any]) -> dict[str, Any]:
    """What the car has not applied yet: desired leaves whose reported value differs."""
    missing: dict[str, Any] = {}
    for key, value in desired.items():
        if isinstance(value, Mapping):
            inner = reported.get(key)
            nested = pending(value, inner if isinstance(inner, Mapping) else {})
            if nested:
                missing[key] = nested
        elif reported.get(key) != value:
            missing[key] = value
    return missing


def check_document(document: object, what: str = "properties") -> dict[str, Any]:
    """A twin document must be a JSON object of bounded depth whose keys are not empty."""
    if not isinstance(document, dict):
        raise ValidationError(f"{what} must be a JSON object")

    def walk(node: Mapping[str, Any], depth: int, where: str) -> None:
        if depth > MAX_DEPTH:
            raise ValidationError(f"{what} nest deeper than {MAX_DEPTH} levels at {where}")
        for key, value in node.items():
            if not key or key.startswith("$"):
                raise ValidationError(f"{what}: key {key!r} at {where or 'top'} is not allowed")
            if isinstance(value, Mapping):
                walk(value, depth + 1, f"{where}.{key}" if where else key)

    walk(document, 1, "")
    return document


TARGET_KEYS = {"brand", "model", "model_year_min", "model_year_max", "tags"}


def check_target(target: object) -> dict[str, Any]:
    """A configuration target: brand, model, model_year_min/max, tags (all must hold)."""
    if not isinstance(target, dict):
        raise ValidationError("target must be an object")
    unknown = set(target) - TARGET_KEYS
    if unknown:
        raise ValidationError(
            f"unknown target field(s) {', '.join(sorted(unknown))}; "
            f"use {', '.join(sorted(TARGET_KEYS))}"
        )
    tags = target.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ValidationError("target.tags must be a list of strings")
    for key in ("model_year_min", "model_year_max"):
        if key in target and not isinstance(target[key], int):
            raise ValidationError(f"target.{key} must be an integer")
    return target


def matches(target: Mapping[str, Any], vehicle: Vehicle) -> bool:
    """Whether a vehicle is targeted: every condition given must hold."""
    if "brand" in target and vehicle.brand != target["brand"]:
        return False
    if "model" in target and vehicle.model != target["model"]:
        return False
    year = vehicle.model_year
    if "model_year_min" in target and (year is None or year < target["model_year_min"]):
        return False
    if "model_year_max" in target and (year is None or year > target["model_year_max"]):
        return False
    return set(target.get("tags", [])) <= set(vehicle.tags)
