"""NATS accounts: where carcloud's services live, and where each vehicle is placed.

Services, their streams and the API live in the APP account. Vehicles are spread
over `VEHICLE_ACCOUNTS` accounts of their own, by a stable hash of the VIN.

Why: nats-server keeps every MQTT QoS 1 subscription of an account as a consumer of
that account's one `$MQTT_msgs` stream, and on every acknowledgement it asks each of
those consumers whether it still needs the message (interest retention). That costs
time in proportion to the cars of the account: measured with one account, the
command rate fell from about 900/s at 1,000 cars to under 400/s at 5,000 cars, with
80 % of the server's time in that scan. Spread over N accounts, each scan covers
one N-th of the fleet.

Nothing else changes for anyone: each vehicle account exports `vehicles.>` as a
stream and APP imports every channel of it (all but the commit receipts, which go
the other way), so APP's streams and services see every car's messages on the same
subjects as before; the cloud's MQTT identity connects once per
vehicle account to deliver into the cars' sessions there. Changing N moves cars to
other accounts (their server-side sessions start empty); the database re-sends open
commands and the desired twin when they reconnect, so nothing is lost.
"""

from __future__ import annotations

import zlib

__all__ = [
    "APP_ACCOUNT",
    "VEHICLE_ACCOUNTS",
    "is_vehicle_account",
    "shard_account",
    "vehicle_account",
    "vehicle_accounts",
    "vehicle_shard",
]

APP_ACCOUNT = "APP"
VEHICLE_ACCOUNTS = 8
_PREFIX = "VEH"


def vehicle_shard(vin: str) -> int:
    """Which vehicle account (0 to N-1) a VIN belongs to; the same on every process."""
    return zlib.crc32(vin.encode()) % VEHICLE_ACCOUNTS


def shard_account(shard: int) -> str:
    """The name of vehicle account number `shard`."""
    return f"{_PREFIX}{shard}"


def vehicle_account(vin: str) -> str:
    """The name of the account a vehicle's connections are placed in."""
    return shard_account(vehicle_shard(vin))


def vehicle_accounts() -> list[str]:
    """Every vehicle account's name."""
    return [shard_account(shard) for shard in range(VEHICLE_ACCOUNTS)]


def is_vehicle_account(name: str) -> bool:
    """Whether `name` is one of the vehicle accounts."""
    return name in vehicle_accounts()
