"""A NATS cluster with TLS: `carcloud nats-config --cluster 3 --nats-tls-*`, three real nodes.

The nodes' client ports take TLS only and their routes run over TLS, checked against
a CA made for the test; carcloud (`up --nats tls://…` with CARCLOUD_NATS_TLS_CA, from
the written carcloud.env) serves cars through them, and a client without TLS, or one
that does not trust the CA, is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import ssl
import subprocess
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


def first_line_over_tls(port: int, context: ssl.SSLContext) -> bytes:
    """What a port says first to a client that starts with the TLS handshake."""

    async def talk() -> bytes:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, ssl_handshake_timeout=20
        )
        try:
            return await asyncio.wait_for(reader.readline(), 10)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    return asyncio.run(talk())


def test_clients_and_routes_must_use_tls_and_carcloud_is_told_tls_urls(
    tls_cluster: NatsCluster,
) -> None:
    env = tls_cluster.env
    urls = env["CARCLOUD_NATS_URL"].split(",")
    assert urls == [f"tls://127.0.0.1:{node.nats_port}" for node in tls_cluster.nodes]
    assert env["CARCLOUD_NATS_TLS_CA"] == str(tls_cluster.out_dir.parent / "certs" / "ca.pem")
    assert env["CARCLOUD_NATS_TLS_FIRST"] == "1"
    password = load_platform_secrets(Path(env["CARCLOUD_SECRETS_FILE"])).passwords["svc"]
    connect = b'CONNECT {"user":"svc","pass":"%s"}\r\nPING\r\n' % password.encode()
    context = ssl.create_default_context(cafile=env["CARCLOUD_NATS_TLS_CA"])
    for node in tls_cluster.nodes:
        # The client port starts with the TLS handshake: a client that waits for the
        # server's INFO gets not a byte until the server gives up on it (so nothing on
        # the network can rewrite an INFO to ask for no TLS), and one that sends its
        # CONNECT gets no answer (its credentials are never read): the server hangs up.
        assert plaintext(node.nats_port, b"") == b""
        assert plaintext(node.nats_port, connect) == b""
        # The INFO comes after the handshake, over TLS.
        info = first_line_over_tls(node.nats_port, context)
        assert json.loads(info.removeprefix(b"INFO "))["tls_required"] is True
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
    url = f"tls://127.0.0.1:{tls_cluster.nodes[0].nats_port}"

    async def connect() -> None:
        nc = await nats.connect(
            url,
            user="svc",
            password=password,
            allow_reconnect=False,
            connect_timeout=10,
            tls_handshake_first=True,
        )
        await nc.close()

    # Starting with the handshake, nats-py checks the server against the system's trust
    # store, which does not know the cluster's CA.
    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(connect())
    database = {"CARCLOUD_DATABASE_URL": f"sqlite:///{tmp_path / 'carcloud.db'}"}
    # A worker given the tls:// URLs but not CARCLOUD_NATS_TLS_CA waits for NATS, saying why.
    without_ca = {key: value for key, value in env.items() if key != "CARCLOUD_NATS_TLS_CA"}
    worker = RoleProcess.worker(["ingest"], {**without_ca, **database}, tmp_path)
    worker.start()
    try:
        wait_until(lambda: "CERTIFICATE_VERIFY_FAILED" in worker.log(), 60, "the reason")
        assert "worker running roles" not in worker.log()
    finally:
        stop_while_connecting([worker])


def stop_while_connecting(workers: list[RoleProcess]) -> None:
    """SIGTERM workers still trying to connect to NATS: each exits promptly, saying so."""
    processes = [worker.process for worker in workers]
    for process in processes:
        assert process is not None
        process.terminate()
    try:
        for worker, process in zip(workers, processes, strict=True):
            assert process is not None
            try:
                # Generous for a loaded machine; before the fix it never exited at all.
                process.wait(20)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"SIGTERM did not stop a worker:\n{worker.log()}") from None
            assert process.returncode == 0, worker.log()
            assert "was still trying to connect to NATS" in worker.log()
            assert "stopped without having connected" in worker.log()
    finally:
        for process in processes:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


def test_a_worker_that_cannot_reach_nats_stops_when_asked(
    tls_cluster: NatsCluster, tmp_path: Path
) -> None:
    database = {"CARCLOUD_DATABASE_URL": f"sqlite:///{tmp_path / 'carcloud.db'}"}
    secrets = {"CARCLOUD_SECRETS_FILE": tls_cluster.env["CARCLOUD_SECRETS_FILE"]}
    # Nothing listens there: every attempt is refused.
    nowhere = {"CARCLOUD_NATS_URL": f"nats://127.0.0.1:{free_port()}"}
    # The servers start with TLS; a worker told they do not waits for an INFO never sent.
    info_first = {**tls_cluster.env, "CARCLOUD_NATS_TLS_FIRST": "0"}
    workers = [
        RoleProcess.worker(["ingest"], {**settings, **secrets, **database}, tmp_path / name)
        for name, settings in (("nowhere", nowhere), ("info-first", info_first))
    ]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            wait_until(lambda w=worker: "NATS connection problem" in w.log(), 60, "the problem")
            assert "worker running roles" not in worker.log()
    finally:
        stop_while_connecting(workers)


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


def test_nats_config_writes_info_first_nodes_and_tells_carcloud_when_asked(
    tmp_path: Path,
) -> None:
    tls = tls_options(tmp_path / "certs")
    for first, written in (("1", ["handshake_first: true"]), ("0", [])):
        (tmp_path / first).mkdir()
        cluster = NatsCluster.configure(tmp_path / first, 1, *tls, "--nats-tls-first", first)
        config = cluster.nodes[0].config.read_text()
        assert re.findall(r"handshake_first: \w+", config) == written
        assert cluster.env["CARCLOUD_NATS_TLS_FIRST"] == first
        carcloud_tls = client_tls(load_settings(environ=cluster.env))
        assert carcloud_tls is not None and carcloud_tls.handshake_first is (first == "1")
