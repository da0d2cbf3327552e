"""Vehicle secrets: keyed hashes, old scrypt hashes still accepted and upgraded."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carcloud.errors import ConfigError
from carcloud.registry.secrets import (
    SecretHasher,
    hash_secret_scrypt,
    new_pepper,
    new_vehicle_secret,
)
from carcloud.registry.service import RegistryService
from carcloud.storage import Stores
from carcloud.storage.sqlite import sqlite_stores

VIN = "WVWZZZ1JZXW000001"
OTHER = "WVWZZZ1JZXW000002"


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    opened = sqlite_stores(tmp_path / "carcloud.db")
    await opened.open()
    await opened.registry.create_brand("volta", "Volta")
    yield opened
    await opened.close()


def test_keyed_hash_verifies_only_its_secret_its_vin_and_its_pepper() -> None:
    hasher = SecretHasher(new_pepper())
    secret = new_vehicle_secret()
    stored = hasher.hash(VIN, secret)
    assert stored.startswith(f"hmac-sha256${hasher.key_id}$") and secret not in stored
    assert hasher.verify(VIN, secret, stored)
    assert not hasher.verify(VIN, secret + "x", stored)
    assert not hasher.verify(OTHER, secret, stored)  # a hash copied to another car
    other_platform = SecretHasher(new_pepper())
    assert not other_platform.verify(VIN, secret, stored)
    assert other_platform.foreign_key(stored) and not hasher.foreign_key(stored)
    assert "pepper" not in repr(hasher).replace("SecretHasher", "")


def test_a_keyed_check_costs_microseconds() -> None:
    hasher = SecretHasher(new_pepper())
    secret = new_vehicle_secret()
    stored = hasher.hash(VIN, secret)
    began = time.perf_counter()
    for _ in range(1000):
        assert hasher.verify(VIN, secret, stored)
    assert (time.perf_counter() - began) / 1000 < 0.001  # scrypt took ~30 ms


def test_a_missing_or_short_pepper_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        SecretHasher("")
    with pytest.raises(ConfigError):
        SecretHasher("short")


async def test_old_scrypt_hash_authenticates_and_is_upgraded(stores: Stores) -> None:
    registry = RegistryService(stores.registry, hasher=SecretHasher(new_pepper()))
    secret = new_vehicle_secret()
    await stores.registry.create_vehicle(VIN, "volta", "E1", 2025, [], hash_secret_scrypt(secret))
    old = await registry.credentials(VIN)
    assert old is not None and registry.secret_check_is_slow(old)

    assert not await registry.check_secret(old, secret + "x")
    unchanged = await registry.credentials(VIN)
    assert unchanged is not None and unchanged.secret_hash == old.secret_hash

    assert await registry.check_secret(old, secret)
    upgraded = await registry.credentials(VIN)
    assert upgraded is not None and upgraded.secret_hash.startswith("hmac-sha256$")
    assert not registry.secret_check_is_slow(upgraded)
    assert await registry.check_secret(upgraded, secret)
    assert not await registry.check_secret(upgraded, secret + "x")
    assert not await registry.check_secret(old, secret + "x")


async def test_rotation_replaces_an_old_scrypt_hash(stores: Stores) -> None:
    registry = RegistryService(stores.registry, hasher=SecretHasher(new_pepper()))
    old_secret = new_vehicle_secret()
    await stores.registry.create_vehicle(
        VIN, "volta", "E1", 2025, [], hash_secret_scrypt(old_secret)
    )
    stale = await registry.credentials(VIN)
    _, secret = await registry.rotate_secret(VIN, None)
    rotated = await registry.credentials(VIN)
    assert rotated is not None and rotated.secret_hash.startswith("hmac-sha256$")
    assert await registry.check_secret(rotated, secret)
    assert not await registry.check_secret(rotated, old_secret)
    # A check of the old hash that started before the rotation lets that connect in,
    # but cannot put the old secret back.
    assert stale is not None and await registry.check_secret(stale, old_secret)
    after = await registry.credentials(VIN)
    assert after is not None and after.secret_hash == rotated.secret_hash
