"""Vehicles spread over NATS accounts of their own; the cloud serves each the same way."""

from __future__ import annotations

import asyncio
import json

import nats

from carcloud.auth.callout import dispatch_shard
from carcloud.messaging.accounts import VEHICLE_ACCOUNTS, vehicle_account, vehicle_shard
from tests.platform import Car, Platform, make_vin


def connections_in(platform: Platform, account: str) -> list[str]:
    """The users connected to an account, read from the server itself (CONNZ)."""
    secrets = json.loads((platform.data_dir / "secrets.json").read_text())["passwords"]

    async def ask() -> list[str]:
        nc = await nats.connect(
            f"nats://127.0.0.1:{platform.nats_port}", user="sys", password=secrets["sys"]
        )
        try:
            reply = await nc.request(
                "$SYS.REQ.SERVER.PING.CONNZ", json.dumps({"acc": account, "auth": True}).encode()
            )
            conns = json.loads(reply.data)["data"]["connections"] or []
            return [str(c.get("authorized_user")) for c in conns]
        finally:
            await nc.close()

    return asyncio.run(ask())


def test_vins_are_spread_over_every_account_and_stay_put() -> None:
    vins = [make_vin() for _ in range(2_000)]
    shards = [vehicle_shard(vin) for vin in vins]
    assert [vehicle_shard(vin) for vin in vins] == shards  # stable
    counts = [shards.count(n) for n in range(VEHICLE_ACCOUNTS)]
    assert min(counts) > 0.7 * len(vins) / VEHICLE_ACCOUNTS, counts
    assert dispatch_shard("carcloud-dispatch-3-123-abc") == 3
    for bad in ("carcloud-dispatch-99-1", "carcloud-dispatch-x-1", "x-carcloud-dispatch-1-1", ""):
        assert dispatch_shard(bad) is None


def test_cars_in_different_accounts_are_each_placed_and_served(platform: Platform) -> None:
    chosen: dict[int, Car] = {}
    while len(chosen) < 3:
        creds = platform.register()
        if vehicle_shard(creds.vin) not in chosen:
            car = Car(platform, creds.vin, creds.password)
            car.connect()
            car.serve()
            chosen[vehicle_shard(creds.vin)] = car
    with platform.api() as api:
        for car in chosen.values():
            # In its own account, and nowhere else.
            assert car.vin in connections_in(platform, vehicle_account(car.vin))
            others = {vehicle_account(c.vin) for c in chosen.values()} - {vehicle_account(car.vin)}
            for other in others:
                assert car.vin not in connections_in(platform, other)
            # Presence, telemetry and a command all reach it across the account boundary.
            car.telemetry({"Vehicle.Speed": 12.0})
            state = platform.wait_for(
                lambda c=car: (s := api.get(f"/vehicles/{c.vin}/state"))["signals"] and s,
                what=f"telemetry of {car.vin}",
            )
            assert state["online"] is True
            queued = api.post(f"/vehicles/{car.vin}/commands", {"kind": "lock"})
            done = api.get(f"/vehicles/{car.vin}/commands/{queued['id']}", wait="15s")
            assert done["status"] == "succeeded", done
        # Revoke finds the connection in its account and drops it.
        victim = next(iter(chosen.values()))
        api.post(f"/vehicles/{victim.vin}/revoke")
        assert victim.disconnected.wait(5), "the revoked car's connection was not dropped"
    for car in chosen.values():
        car.disconnect()
