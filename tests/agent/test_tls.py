"""Vehicles over TLS: `carcloud up --tls-cert/--tls-key`; the agent trusts the CA it is given."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from carcloud_agent.config import AgentConfig
from carcloud_agent.mqtt import MqttClient, MqttError
from carcloud_agent.runtime import Agent
from tests.certs import make_certificates
from tests.conftest import start_platform


@pytest.mark.slow
def test_agent_connects_over_tls_and_plain_mqtt_is_refused(tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path)
    platform = start_platform(tmp_path / "data", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        creds = platform.register()
        config = AgentConfig(
            vin=creds.vin, secret=creds.password, port=platform.mqtt_port, tls_ca=ca,
            buffer_path=tmp_path / "outbox.db", reconnect_min_s=0.2, reconnect_max_s=1.0,
            source={"kind": "simulator", "interval_s": 0.2},
        )  # fmt: skip

        async def scenario() -> None:
            plain = MqttClient("127.0.0.1", platform.mqtt_port, creds.vin, creds.vin,
                               creds.password)  # fmt: skip
            with pytest.raises(MqttError):
                await plain.connect(timeout_s=3)
            agent = Agent(config)
            stop = asyncio.Event()
            task = asyncio.create_task(agent.run(stop))
            await asyncio.wait_for(agent.connected.wait(), 15)
            await asyncio.sleep(1.0)
            stop.set()
            await task

        asyncio.run(scenario())
        with platform.api() as api:
            state = platform.wait_for(
                lambda: api.get(f"/vehicles/{creds.vin}/state")["signals"], what="telemetry"
            )
            assert "Vehicle.Speed" in state
            commands = api.post(f"/vehicles/{creds.vin}/commands", {"kind": "honk_flash"})
            assert commands["status"] == "queued"  # the control role reaches the TLS listener too
    finally:
        platform.stop()
