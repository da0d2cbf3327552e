"""A NATS cluster with TLS: `carcloud nats-config --cluster 3 --nats-tls-*`, three real nodes.

The nodes' client ports take TLS only and their routes run over TLS, checked against
a CA made for the test; carcloud (`up --nats tls://…` with CARCLOUD_NATS_TLS_CA, from
the written carcloud.env) serves cars through them, and a client without TLS, or one
that does not trust the CA, is refused. With `--nats-tls-verify-clients` (mutual TLS)
a client must also show a certificate from the CA: one without, or with another CA's,
is refused and told what to give; carcloud with its own certificate serves cars.
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
from carcloud.runtime.platform import StoppedConnecting, _connect, _connect_unless_stopped
from tests.certs import make_certificates, make_client_certificate
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
    cluster: NatsCluster,
    user: str,
    work: Callable[[NatsClient], Awaitable[T]],
    client_cert: dict[str, str] | None = None,
) -> T:
    """`work` on a connection made as carcloud's roles make theirs, from carcloud.env
    (and CARCLOUD_NATS_TLS_CERT/KEY in `client_cert`)."""
    settings = load_settings(environ={**cluster.env, **(client_cert or {})})
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


# ---- mutual TLS: `nats-config --nats-tls-verify-clients` ----------------------------


@pytest.fixture(scope="module")
def mtls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """Three nodes written by nats-config with TLS and --nats-tls-verify-clients, started."""
    root = tmp_path_factory.mktemp("mtls")
    cluster = NatsCluster.configure(
        root, 3, *tls_options(root / "certs"), "--nats-tls-verify-clients"
    )
    cluster.start()  # the routes still work: nodes show each other the node certificate
    try:
        yield cluster
    finally:
        cluster.stop()


def client_certificate(cluster: NatsCluster, name: str) -> dict[str, str]:
    """CARCLOUD_NATS_TLS_CERT/KEY of a client certificate named `name`, from the cluster's CA."""
    cert, key = make_client_certificate(cluster.out_dir.parent / "certs", name)
    return {"CARCLOUD_NATS_TLS_CERT": str(cert), "CARCLOUD_NATS_TLS_KEY": str(key)}


def stranger_certificate(folder: Path) -> dict[str, str]:
    """A client certificate from a CA of its own, which the cluster does not know."""
    folder.mkdir()
    make_certificates(folder)
    cert, key = make_client_certificate(folder, "stranger")
    return {"CARCLOUD_NATS_TLS_CERT": str(cert), "CARCLOUD_NATS_TLS_KEY": str(key)}


def test_mutual_tls_nodes_refuse_clients_without_a_certificate_from_the_ca(
    mtls_cluster: NatsCluster, tmp_path: Path
) -> None:
    env = mtls_cluster.env
    config = mtls_cluster.nodes[0].config.read_text()
    # Only the client port asks: routes always check both ends, and the MQTT listener
    # is the vehicles'.
    client_block = config[config.index("\ntls {") : config.index("}", config.index("\ntls {"))]
    assert "verify: true" in client_block and config.count("verify: true") == 1
    # carcloud.env says what every carcloud process now needs.
    env_text = (mtls_cluster.out_dir / "carcloud.env").read_text()
    assert "# CARCLOUD_NATS_TLS_CERT=" in env_text
    assert "CARCLOUD_NATS_TLS_CERT" not in env  # a note, not a setting
    trusting = ssl.create_default_context(cafile=env["CARCLOUD_NATS_TLS_CA"])
    mine = ssl.create_default_context(cafile=env["CARCLOUD_NATS_TLS_CA"])
    mine.load_cert_chain(*client_certificate(mtls_cluster, "operator-tool").values())
    stranger = ssl.create_default_context(cafile=env["CARCLOUD_NATS_TLS_CA"])
    stranger.load_cert_chain(*stranger_certificate(tmp_path / "other").values())
    for node in mtls_cluster.nodes:
        # A client that trusts the CA but shows no certificate gets no INFO: the server
        # ends the handshake with TLS 1.3's certificate_required alert.
        with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
            first_line_over_tls(node.nats_port, trusting)
        # One that shows a certificate from another CA: unknown_ca.
        with pytest.raises(ssl.SSLError, match="UNKNOWN_CA"):
            first_line_over_tls(node.nats_port, stranger)
        # One with a certificate from the cluster's CA is served.
        info = json.loads(first_line_over_tls(node.nats_port, mine).removeprefix(b"INFO "))
        assert info["tls_required"] is True and info["tls_verify"] is True
    # Even with the services' password, nats-py without a certificate is refused.
    password = load_platform_secrets(Path(env["CARCLOUD_SECRETS_FILE"])).passwords["svc"]

    async def connect() -> None:
        nc = await nats.connect(
            env["CARCLOUD_NATS_URL"].split(",")[0],
            user="svc",
            password=password,
            allow_reconnect=False,
            connect_timeout=10,
            tls=trusting,
            tls_handshake_first=True,
        )
        await nc.close()

    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
        asyncio.run(connect())


def test_carcloud_with_a_client_certificate_serves_cars_through_the_mutual_tls_cluster(
    mtls_cluster: NatsCluster, tmp_path: Path
) -> None:
    # carcloud.env, and the process's own certificate from the cluster's CA.
    platform_cert = client_certificate(mtls_cluster, "carcloud-platform")
    settings = {
        **mtls_cluster.env,
        **platform_cert,
        "CARCLOUD_DATABASE_URL": f"sqlite:///{tmp_path / 'carcloud.db'}",
        "CARCLOUD_MEDIA": "off",
    }
    port = free_port()
    up = RoleProcess(
        [*CLI, "up", "--data-dir", str(mtls_cluster.data_dir), "--http-port", str(port)],
        {**os.environ, "PYTHONUNBUFFERED": "1", **settings},
        tmp_path / "up.log",
        port,
    )
    start_all([up])  # streams made, the auth callout answering, over mutual TLS
    try:
        key = (mtls_cluster.data_dir / "operator.key").read_text().strip()
        with ApiClient(up.url, key) as api:
            vin, password = register(api)
            # Its MQTT login goes through the auth callout, on carcloud's mutual TLS connection;
            # the vehicles' MQTT listener asks them for no certificate.
            car = Car(SimpleNamespace(mqtt_port=mtls_cluster.mqtt_ports[2]), vin, password)  # type: ignore[arg-type]
            assert not car.connect().is_failure
            car.telemetry({"Vehicle.Speed": 42.0})
            wait_until(lambda: api.get(f"/vehicles/{vin}/state")["signals"], 20, "the car's state")
            car.disconnect()
        connections = on_the_cluster(
            mtls_cluster,
            "sys",
            carcloud_connections_with_certificates,
            client_certificate(mtls_cluster, "operator-tool"),
        )
        assert connections, "carcloud's roles are connected"
        # Every connection of carcloud's showed the process's certificate.
        assert {subject for _, subject in connections} == {"CN=carcloud-platform"}
    finally:
        up.stop()


async def carcloud_connections_with_certificates(nc: NatsClient) -> list[tuple[str, str]]:
    """(name, certificate subject) of carcloud's client connections on every node."""
    inbox = nc.new_inbox()
    replies = await nc.subscribe(inbox)
    await nc.publish("$SYS.REQ.SERVER.PING.CONNZ", b'{"auth": true}', reply=inbox)
    found: list[dict[str, object]] = []
    for _ in range(3):
        answer = json.loads((await replies.next_msg(timeout=5)).data)
        found += answer["data"]["connections"] or []
    return [
        (str(c["name"]), str((c.get("tls_peer_certs") or [{}])[0].get("subject")))  # type: ignore[union-attr,index]
        for c in found
        if str(c.get("name", "")).startswith("carcloud-")
    ]


def test_a_worker_without_the_right_client_certificate_says_what_to_give_it(
    mtls_cluster: NatsCluster, tmp_path: Path
) -> None:
    database = {"CARCLOUD_DATABASE_URL": f"sqlite:///{tmp_path / 'carcloud.db'}"}
    env = {**mtls_cluster.env, **database}
    without = RoleProcess.worker(["ingest"], env, tmp_path / "without")
    stranger = RoleProcess.worker(
        ["ingest"], {**env, **stranger_certificate(tmp_path / "other")}, tmp_path / "stranger"
    )
    for worker in (without, stranger):
        worker.start()
    try:
        wait_until(lambda: "CERTIFICATE_REQUIRED" in without.log(), 60, "the reason")
        assert "give this process one signed by their CA with --nats-tls-cert" in without.log()
        wait_until(lambda: "UNKNOWN_CA" in stranger.log(), 60, "the reason")
        assert "do not trust this process's client certificate" in stranger.log()
        for worker in (without, stranger):
            assert "worker running roles" not in worker.log()
    finally:
        stop_while_connecting([without, stranger])


# nats-py leaves the socket of a connect cancelled mid-handshake to the garbage
# collector (a process that stops closes it on exit); here that is a ResourceWarning.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_stopping_while_the_nodes_refuse_the_handshake_always_stops(
    mtls_cluster: NatsCluster, tmp_path: Path
) -> None:
    # A refused client certificate fails the handshake every half second; a stop that
    # comes as one fails must still end the attempts. nats-py lost such a cancellation
    # (a few in 100 stops) and SIGTERM then left a worker trying for ever: five
    # connections at once, stopped at a dozen moments, met it in every run.
    environ = {**mtls_cluster.env, **stranger_certificate(tmp_path / "other")}
    settings = load_settings(environ=environ)
    password = load_platform_secrets(Path(environ["CARCLOUD_SECRETS_FILE"])).passwords["svc"]
    tls = client_tls(settings)

    async def stop_after(delay: float) -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(delay, stop.set)

        async def connect(start: float) -> None:
            await asyncio.sleep(start)
            attempt = _connect_unless_stopped(stop, settings.nats_url, "svc", password, "t", tls)
            with pytest.raises(StoppedConnecting):
                await asyncio.wait_for(attempt, delay + 5)

        await asyncio.gather(*(connect(index * 0.1) for index in range(5)))

    for step in range(12):
        asyncio.run(stop_after(0.6 + step * 0.04))


def test_verify_clients_without_a_ca_or_without_tls_is_refused_and_help_explains_it(
    tmp_path: Path,
) -> None:
    tls = tls_options(tmp_path / "certs")
    out = ["--cluster", "1", "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path)]
    for given, reason in (
        (tls[:4], "checks clients' certificates against --nats-tls-ca"),  # no CA
        ([], "--nats-tls-verify-clients needs NATS TLS on the nodes"),
    ):
        result = carcloud("nats-config", *out, *given, "--nats-tls-verify-clients")
        assert result.returncode == 2 and reason in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()
    help_text = " ".join(carcloud("nats-config", "--help").stdout.split())
    assert "--nats-tls-verify-clients" in help_text
    assert "refuse clients without a certificate signed by --nats-tls-ca" in help_text
