"""The twin on the wire: desired (cloud → car) and reported (car → cloud) documents.

On `vehicles/{vin}/twin/desired`, always the full document and its version:

    {"version": 7, "desired": {"charge_limit_percent": 80}}

On `vehicles/{vin}/twin/reported`, a JSON merge patch (RFC 7386) of what the car
applied or observed, with the desired version it answers (absent for a report of its
own, such as the agent's health):

    {"desired_version": 7, "reported": {"charge_limit_percent": 80, "errors": null}}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from carcloud_agent.errors import ProtocolError
from carcloud_agent.protocol._json import is_int, json_object

__all__ = ["Desired", "Reported", "decode_desired", "decode_reported", "encode_desired",
           "encode_reported"]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Desired:
    """The full desired document of a car at one version."""

    version: int
    desired: Mapping[str, Any]


def encode_desired(desired: Desired) -> bytes:
    """The desired message's JSON body."""
    return orjson.dumps({"version": desired.version, "desired": dict(desired.desired)})


def decode_desired(payload: bytes) -> Desired:
    """A desired message; ProtocolError unless it has an integer version and a desired object."""
    body = json_object(payload, "desired twin")
    version = body.get("version")
    if not is_int(version) or version < 0:
        raise ProtocolError(f"desired twin needs version: an integer from 0, got {version!r}")
    document = body.get("desired")
    if not isinstance(document, dict):
        raise ProtocolError(f"desired twin needs desired: an object, got {document!r}")
    return Desired(version, document)


@dataclass(frozen=True, slots=True)
class Reported:
    """A merge patch of a car's reported document, and the desired version it answers."""

    reported: Mapping[str, Any]
    desired_version: int | None = None


def encode_reported(reported: Reported) -> bytes:
    """The reported message's JSON body (no desired_version key when there is none)."""
    body: dict[str, Any] = {"reported": dict(reported.reported)}
    if reported.desired_version is not None:
        body = {"desired_version": reported.desired_version, **body}
    return orjson.dumps(body)


def decode_reported(payload: bytes) -> Reported:
    """A reported message; ProtocolError naming what is wrong with it."""
    body = json_object(payload, "reported twin")
    document = body.get("reported")
    if not isinstance(document, dict):
        raise ProtocolError("reported twin needs reported: an object (a JSON merge patch)")
    version = body.get("desired_version")
    if version is not None and (not is_int(version) or version < 0):
        raise ProtocolError(
            f"reported twin desired_version must be an integer from 0 or null, got {version!r}"
        )
    return Reported(document, version)
