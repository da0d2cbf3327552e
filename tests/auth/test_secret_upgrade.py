"""A vehicle whose secret was hashed by an older version (scrypt) still connects, once upgraded."""

from __future__ import annotations

import sqlite3
from contextlib import closing

from carcloud.registry.secrets import hash_secret_scrypt
from tests.platform import Car, Platform

NOT_AUTHORIZED = 135


def stored_hash(platform: Platform, vin: str) -> str:
    with closing(sqlite3.connect(platform.data_dir / "carcloud.db", timeout=30)) as db:
        row = db.execute("SELECT secret_hash FROM vehicles WHERE vin = ?", (vin,)).fetchone()
    return str(row[0])


def test_old_scrypt_hash_authenticates_and_is_upgraded_on_connect(
    sqlite_platform: Platform,
) -> None:
    platform = sqlite_platform
    creds = platform.register()
    assert stored_hash(platform, creds.vin).startswith("hmac-sha256$")
    # The row as a version before the keyed hash wrote it.
    with closing(sqlite3.connect(platform.data_dir / "carcloud.db", timeout=30)) as db, db:
        db.execute(
            "UPDATE vehicles SET secret_hash = ? WHERE vin = ?",
            (hash_secret_scrypt(creds.password), creds.vin),
        )
    assert stored_hash(platform, creds.vin).startswith("scrypt$")

    wrong = Car(platform, creds.vin, creds.password + "x")
    reason = wrong.connect()
    wrong.client.loop_stop()
    assert reason.is_failure and reason.value == NOT_AUTHORIZED
    assert stored_hash(platform, creds.vin).startswith("scrypt$")  # no upgrade on a failure

    car = Car(platform, creds.vin, creds.password)
    assert not car.connect().is_failure
    car.disconnect()
    upgraded = stored_hash(platform, creds.vin)
    assert upgraded.startswith("hmac-sha256$") and creds.password not in upgraded

    again = Car(platform, creds.vin, creds.password)
    assert not again.connect().is_failure  # and with the keyed hash
    again.disconnect()
