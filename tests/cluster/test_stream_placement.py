"""Replicated streams on a cluster that has a node down: carcloud waits for it, then
places them, or says after its deadline why it cannot."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import nats
import pytest

from carcloud.errors import ConfigError
from carcloud.messaging.streams import ensure_streams, stream_configs
from carcloud.runtime.datadir import load_platform_secrets
from tests.cluster.nodes import NatsCluster


def test_r3_streams_wait_for_a_node_that_is_down_and_are_placed_when_it_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="carcloud.messaging.streams")
    cluster = NatsCluster.configure(tmp_path, 3)
    cluster.start()  # the three meet once: each knows the others from now on
    cluster.stop()
    up, down = cluster.nodes[:2], cluster.nodes[2]
    for node in up:  # the cluster comes back with its third node still down
        node.start()
    for node in up:
        node.wait_listening()
    secrets = load_platform_secrets(Path(cluster.env["CARCLOUD_SECRETS_FILE"]))
    servers = cluster.env["CARCLOUD_NATS_URL"].split(",")[:2]

    async def scenario() -> dict[str, int]:
        nc = await nats.connect(servers, user="svc", password=secrets.passwords["svc"])
        try:
            js = nc.jetstream()
            for _ in range(120):  # until the two elect a JetStream leader
                try:
                    await js.account_info()
                    break
                except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError):
                    await asyncio.sleep(0.5)
            # Past its deadline it says why, naming the setting.
            with pytest.raises(ConfigError, match="3 replicas.*no suitable peers.*STREAM_REPLICAS"):
                await ensure_streams(js, replicas=3, ready_s=2)
            # With time to wait, it is still waiting while the node is down...
            setup = asyncio.create_task(ensure_streams(js, replicas=3, ready_s=60))
            await asyncio.sleep(2)
            assert not setup.done(), "the setup ended while a node was down"
            down.start()  # ...and places every stream once it is back.
            await asyncio.wait_for(setup, 60)
            found = {}
            for config in stream_configs():
                assert config.name is not None
                info = await js.stream_info(config.name)
                assert info.cluster is not None
                found[config.name] = 1 + len(info.cluster.replicas or [])
            return found
        finally:
            await nc.close()

    try:
        replicas = asyncio.run(scenario())
    finally:
        cluster.stop()
    assert replicas == {config.name: 3 for config in stream_configs()}
    waited = [r.getMessage() for r in caplog.records if "waiting up to" in r.getMessage()]
    assert waited and "peers to come online" in waited[0] and "no suitable peers" in waited[0]
