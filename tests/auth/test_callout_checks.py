"""The callout's secret checks under load: cheap for good cars, bounded for floods."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient

from carcloud.auth import callout as callout_module
from carcloud.auth.callout import AuthCallout
from carcloud.auth.nkeyjwt import new_account_seed
from carcloud.registry.models import VehicleRegistration
from carcloud.registry.secrets import SecretHasher, hash_secret_scrypt, new_pepper
from carcloud.registry.service import RegistryService
from carcloud.storage import Stores
from carcloud.storage.sqlite import sqlite_stores

GOOD = [f"GDZZZZZ1JZXW{index:05d}" for index in range(50)]
LEGACY = [f"LGCYZZZ1JZXW{index:05d}" for index in range(40)]


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    opened = sqlite_stores(tmp_path / "carcloud.db")
    await opened.open()
    await opened.registry.create_brand("volta", "Volta")
    yield opened
    await opened.close()


def request(vin: str, password: str) -> dict[str, Any]:
    """The part of an authorization request that `decide` reads, as nats-server sends it."""
    return {
        "connect_opts": {"user": vin, "pass": password},
        "client_info": {"type": "mqtt", "mqtt_id": vin},
    }


async def make_callout(stores: Stores) -> tuple[AuthCallout, dict[str, str]]:
    registry = RegistryService(stores.registry, hasher=SecretHasher(new_pepper()))
    rows = await registry.register_vehicles(
        [VehicleRegistration(vin, "volta", "E1") for vin in GOOD], brand_scope=None
    )
    secrets = {row.vin: row.secret or "" for row in rows}
    for vin in LEGACY:  # registered by an older version: scrypt
        await stores.registry.create_vehicle(vin, "volta", "E1", None, [], hash_secret_scrypt("s"))
    return AuthCallout(NatsClient(), registry, new_account_seed()), secrets


async def test_good_wrong_and_repeated_wrong_secrets(stores: Stores) -> None:
    callout, secrets = await make_callout(stores)
    vin = GOOD[0]
    assert (await callout.decide(request(vin, secrets[vin]))).allowed
    wrong = await callout.decide(request(vin, "guess"))
    assert (wrong.allowed, wrong.reason) == (False, "wrong secret")
    again = await callout.decide(request(vin, "guess"))
    assert (again.allowed, again.reason) == (False, "wrong secret (repeated)")
    # The refusal is remembered for that guess only: the car itself still gets in.
    assert (await callout.decide(request(vin, secrets[vin]))).allowed


async def test_a_flood_of_wrong_secrets_does_not_delay_good_cars(stores: Stores) -> None:
    callout, secrets = await make_callout(stores)
    # Wrong secrets for cars with old, slow hashes (the worst case: ~30 ms of scrypt each),
    # all at once, and the good cars in the middle of them.
    flood = [
        asyncio.create_task(callout.decide(request(vin, f"guess-{attempt}")))
        for attempt in range(3)
        for vin in LEGACY
    ]
    began = time.perf_counter()
    good = await asyncio.gather(*(callout.decide(request(vin, secrets[vin])) for vin in GOOD))
    good_took = time.perf_counter() - began
    refused = await asyncio.gather(*flood)

    assert all(decision.allowed for decision in good)
    assert good_took < 1.0, f"good cars waited {good_took:.2f} s behind the flood"
    assert not any(decision.allowed for decision in refused)
    reasons = {decision.reason for decision in refused}
    assert reasons <= {"wrong secret", "busy: too many checks of old-format secrets"}
    busy = sum(1 for d in refused if d.reason.startswith("busy"))
    assert busy >= len(flood) - callout_module.SLOW_CHECKS_WAITING - callout_module.SLOW_CHECKS
