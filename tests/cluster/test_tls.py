"""A NATS cluster with TLS: `carcloud nats-config --cluster 3 --nats-tls-*`, three real nodes.

The nodes' client ports take TLS only and their routes run over TLS, checked against
a CA made for the test; carcloud (`up --nats tls://…` with CARCLOUD_NATS_TLS_CA, from
the written carcloud.env) serves cars through them, and a client without TLS, or one
that does not trust the CA, is refused.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TypeVar

import nats
import pytest
from nats.aio.client import Client as NatsClient

from carcloud.client import ApiClient
from carcloud.config import load_settings
from carcloud.errors import ConfigError
from carcloud.messaging.streams import TELEMETRY_STREAM
from carcloud.messaging.tls import client_tls, node_tls
from carcloud.runtime.datadir import load_platform_secrets
from carcloud.runtime.launcher import free_port
from carcloud.runtime.platform import _connect
from tests.certs import make_certificates
from tests.cluster.nodes import CLI, NatsCluster, RoleProcess, carcloud, start_all, wait_until
from tests.cluster.test_processes import register
from tests.platform import Car

T = TypeVar("T")


def tls_options(certs: Path) -> list[str]:
    """nats-config's TLS options for a CA and a node certificate made in `certs`."""
    certs.mkdir()
    ca, cert, key = make_certificates(certs)
    return ["--nats-tls-cert", str(cert), "--nats-tls-key", str(key), "--nats-tls-ca", str(ca)]


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """Three nodes written by nats-config with TLS, started."""
    root = tmp_path_factory.mktemp("tls")
    cluster = NatsCluster.configure(root, 3, *tls_options(root / "certs"))
    cluster.start()  # waits for the JetStream leader: the routes work
    try:
        yield cluster
    finally:
        cluster.stop()


def plaintext(port: int, send: bytes) -> bytes:
    """What a port sends a client that speaks without TLS and sends `send`, until it closes."""

    async def talk() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(send)
            await writer.drain()
            return await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()

    return asyncio.run(talk())


def test_clients_and_routes_must_use_tls_and_carcloud_is_told_tls_urls(
    tls_cluster: NatsCluster,
) -> None:
    env = tls_cluster.env
    urls = env["CARCLOUD_NATS_URL"].split(",")
    assert urls == [f"tls://127.0.0.1:{node.nats_port}" for node in tls_cluster.nodes]
    assert env["CARCLOUD_NATS_TLS_CA"] == str(tls_cluster.out_dir.parent / "certs" / "ca.pem")
    password = load_platform_secrets(Path(env["CARCLOUD_SECRETS_FILE"])).passwords["svc"]
    connect = b'CONNECT {"user":"svc","pass":"%s"}\r\nPING\r\n' % password.encode()
    for node in tls_cluster.nodes:
        # A client that will not speak TLS gets the server's INFO asking for it, and no
        # answer to its CONNECT (its credentials are never read): the server hangs up.
        info, _, rest = plaintext(node.nats_port, connect).partition(b"\r\n")
        assert json.loads(info.removeprefix(b"INFO "))["tls_required"] is True
        assert rest == b""
        # A route starts with the TLS handshake: a peer without TLS gets not a byte.
        _, route_port = re.findall(r"listen: 127.0.0.1:(\d+)", node.config.read_text())
        assert plaintext(int(route_port), b"CONNECT {}\r\n") == b""


def test_carcloud_serves_cars_through_the_tls_cluster(
    tls_cluster: NatsCluster, tmp_path: Path
) -> None:
    settings = {
        **tls_cluster.env,
        "CARCLOUD_DATABASE_URL": f"sqlite:///{tmp_path / 'carcloud.db'}",
        "CARCLOUD_MEDIA": "off",
    }
    port = free_port()
    up = RoleProcess(
        [*CLI, "up", "--data-dir", str(tls_cluster.data_dir), "--http-port", str(port)],
        {**os.environ, "PYTHONUNBUFFERED": "1", **settings},
        tmp_path / "up.log",
        port,
    )
    start_all([up])  # streams of 3 replicas made, the auth callout answering, over TLS
    try:
        key = (tls_cluster.data_dir / "operator.key").read_text().strip()
        with ApiClient(up.url, key) as api:
            vin, password = register(api)
            # Its MQTT login goes through the auth callout, on carcloud's TLS connection.
            car = Car(SimpleNamespace(mqtt_port=tls_cluster.mqtt_ports[1]), vin, password)  # type: ignore[arg-type]
            assert not car.connect().is_failure
            car.telemetry({"Vehicle.Speed": 42.0})
            wait_until(lambda: api.get(f"/vehicles/{vin}/state")["signals"], 20, "the car's state")
            car.disconnect()
        assert on_the_cluster(tls_cluster, "svc", telemetry_copies) == 3
        connections = on_the_cluster(tls_cluster, "sys", carcloud_connections)
        assert connections, "carcloud's roles are connected"
        assert all(c["tls_version"] for c in connections), "every carcloud connection is TLS"
    finally:
        up.stop()


def on_the_cluster(
    cluster: NatsCluster, user: str, work: Callable[[NatsClient], Awaitable[T]]
) -> T:
    """`work` on a connection made as carcloud's roles make theirs, from carcloud.env."""
    settings = load_settings(environ=cluster.env)
    password = load_platform_secrets(Path(cluster.env["CARCLOUD_SECRETS_FILE"])).passwords[user]

    async def run() -> T:
        nc = await _connect(settings.nats_url, user, password, "test", client_tls(settings))
        try:
            return await work(nc)
        finally:
            await nc.close()

    return asyncio.run(run())


async def telemetry_copies(nc: NatsClient) -> int:
    """How many copies the cluster keeps of the TELEMETRY stream."""
    info = await nc.jetstream().stream_info(TELEMETRY_STREAM)
    assert info.cluster is not None
    return 1 + len(info.cluster.replicas or [])


async def carcloud_connections(nc: NatsClient) -> list[dict[str, object]]:
    """carcloud's client connections on every node, as the nodes report them (as sys)."""
    inbox = nc.new_inbox()
    replies = await nc.subscribe(inbox)
    await nc.publish("$SYS.REQ.SERVER.PING.CONNZ", b"{}", reply=inbox)
    found: list[dict[str, object]] = []
    for _ in range(3):
        answer = json.loads((await replies.next_msg(timeout=5)).data)
        found += answer["data"]["connections"] or []
    return [c for c in found if str(c.get("name", "")).startswith("carcloud-")]


def test_a_client_that_does_not_trust_the_ca_is_refused_and_carcloud_says_why(
    tls_cluster: NatsCluster, tmp_path: Path
) -> None:
    env = tls_cluster.env
    password = load_platform_secrets(Path(env["CARCLOUD_SECRETS_FILE"])).passwords["svc"]

    async def connect(url: str) -> None:
        nc = await nats.connect(url, user="svc", password=password, allow_reconnect=False)
        await nc.close()

    # nats-py goes over to TLS when the server asks, and checks it against the system's
    # trust store, which does not know the cluster's CA.
    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(connect(f"nats://127.0.0.1:{tls_cluster.nodes[0].nats_port}"))
    # A worker given the tls:// URLs but not CARCLOUD_NATS_TLS_CA waits for NATS, saying why.
    without_ca = {key: value for key, value in env.items() if key != "CARCLOUD_NATS_TLS_CA"}
    database = {"CARCLOUD_DATABASE_URL": f"sqlite:///{tmp_path / 'carcloud.db'}"}
    worker = RoleProcess.worker(["ingest"], {**without_ca, **database}, tmp_path)
    worker.start()
    try:
        wait_until(lambda: "CERTIFICATE_VERIFY_FAILED" in worker.log(), 30, "the reason")
        assert "worker running roles" not in worker.log()
    finally:
        assert worker.process is not None
        worker.process.kill()  # it is still connecting, which Ctrl-C does not interrupt
        worker.process.wait()


def test_nats_tls_settings_that_cannot_work_are_refused_with_the_reason(tmp_path: Path) -> None:
    options = tls_options(tmp_path / "certs")
    ca = options[-1]
    cases = [
        ({"CARCLOUD_NATS_TLS_CA": ca}, node_tls, "--nats-tls-cert and --nats-tls-key"),
        ({"CARCLOUD_NATS_TLS_CERT": options[1]}, node_tls, "both --nats-tls-cert"),
        (
            {"CARCLOUD_NATS_URL": "nats://a:1", "CARCLOUD_NATS_TLS_CA": ca},
            client_tls,
            "use tls://HOST:PORT",
        ),
        ({"CARCLOUD_NATS_URL": "tls://a:1,nats://b:2"}, client_tls, "mixes servers"),
        (
            {"CARCLOUD_NATS_URL": "tls://a:1", "CARCLOUD_NATS_TLS_CA": str(tmp_path / "no.pem")},
            client_tls,
            "no.pem is not a readable file",
        ),
    ]
    for environ, check, reason in cases:
        with pytest.raises(ConfigError, match=reason):
            check(load_settings(environ=environ))
    assert client_tls(load_settings(environ={"CARCLOUD_NATS_URL": "nats://a:1"})) is None
    # The CLI says so, as it says any other wrong setting.
    result = carcloud(
        "nats-config",
        "--cluster",
        "1",
        "--out",
        str(tmp_path / "out"),
        "--data-dir",
        str(tmp_path),
        "--nats-tls-ca",
        ca,
    )
    assert result.returncode == 2 and "--nats-tls-cert" in result.stderr
