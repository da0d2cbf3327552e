"""A NATS cluster for carcloud: each node's config, and the settings that point carcloud at it.

`carcloud nats-config --cluster 3 --out DIR` writes

    DIR/carcloud-1.conf ...   one nats-server config per node: its name, listeners,
                              JetStream store and routes to every node, and the same
                              accounts and auth callout on all (as the embedded server's)
    DIR/carcloud.env          CARCLOUD_NATS_URL, CARCLOUD_MQTT_URL (every node's),
                              CARCLOUD_STREAM_REPLICAS and CARCLOUD_SECRETS_FILE
                              (and CARCLOUD_NATS_TLS_FIRST, CARCLOUD_NATS_TLS_CA
                              with NATS TLS; with mutual TLS, a note that each
                              process needs CARCLOUD_NATS_TLS_CERT/KEY of its own)

With a NATS certificate (`--nats-tls-cert/--nats-tls-key`, `--nats-tls-ca`), the client
ports take TLS connections only (carcloud connects to tls://HOST:PORT) and the routes
run over TLS, each node checking the other's certificate against the CA. Clients
start with the TLS handshake (`handshake_first`) unless `--nats-tls-first 0`. With
`--nats-tls-verify-clients`, the client ports also ask every client for a certificate
signed by the CA (`verify: true`): carcloud's processes show theirs
(`--nats-tls-cert/--nats-tls-key` of `up` and `worker`). The MQTT listeners are the
vehicles' and keep their own TLS (`--tls-cert`), without client certificates.

Start each node with `nats-server -c DIR/carcloud-N.conf` on its host, then carcloud
with those settings (`carcloud up` or `carcloud worker ...`). The files hold the
service passwords' bcrypt hashes and the routes' password: they are written 0600.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from carcloud.errors import ConfigError
from carcloud.messaging.natsserver import (
    ClusterRoutes,
    MqttTls,
    NatsTls,
    ServerPorts,
    render_config,
)
from carcloud.runtime.datadir import PlatformSecrets, write_private

CLUSTER_NAME = "carcloud"
ROUTE_USER = "route"
# JetStream keeps at most 5 copies; 3 survive the loss of any one node.
MAX_STREAM_REPLICAS = 3
DEFAULT_NATS_PORT = 4222
DEFAULT_ROUTE_PORT = 6222
DEFAULT_MQTT_PORT = 1883


@dataclass(frozen=True)
class ClusterNode:
    """One nats-server of the cluster: its name and where it listens."""

    name: str
    host: str
    nats_port: int
    route_port: int
    mqtt_port: int

    @property
    def route_address(self) -> str:
        return f"{self.host}:{self.route_port}"


@dataclass(frozen=True)
class ClusterFiles:
    """What `write_cluster` wrote."""

    configs: list[Path]
    env_file: Path
    nats_url: str
    mqtt_url: str
    stream_replicas: int


def _per_node(values: list[int] | list[str], size: int, what: str) -> list[int] | list[str]:
    if len(values) == 1:
        return values * size
    if len(values) != size:
        raise ConfigError(
            f"{what}: give one value for every node or one for all, "
            f"not {len(values)} for a cluster of {size}"
        )
    return values


def plan_nodes(
    size: int,
    hosts: list[str],
    nats_ports: list[int],
    route_ports: list[int],
    mqtt_ports: list[int],
) -> list[ClusterNode]:
    """The nodes of a cluster of `size`; each list holds one value per node, or one for all.

    ConfigError for a size that cannot keep a quorum or two listeners on one address.
    """
    if size == 2 or size < 1:
        raise ConfigError(
            f"--cluster {size}: a NATS cluster keeps JetStream by majority, so two nodes "
            "cannot lose one; use 1 (a single server) or 3 or more"
        )
    node_hosts = _per_node(hosts, size, "--hosts")
    nats = _per_node(nats_ports, size, "--nats-ports")
    routes = _per_node(route_ports, size, "--route-ports")
    mqtt = _per_node(mqtt_ports, size, "--mqtt-ports")
    nodes = [
        ClusterNode(
            f"{CLUSTER_NAME}-{index + 1}",
            str(node_hosts[index]),
            int(nats[index]),
            int(routes[index]),
            int(mqtt[index]),
        )
        for index in range(size)
    ]
    seen: dict[tuple[str, int], str] = {}
    for node in nodes:
        listeners = ((node.nats_port, "NATS"), (node.route_port, "route"), (node.mqtt_port, "MQTT"))
        for port, what in listeners:
            address = (node.host, port)
            if address in seen:
                raise ConfigError(
                    f"{node.name}'s {what} port {node.host}:{port} is also {seen[address]}; "
                    "nodes on one host need ports of their own (--nats-ports, --route-ports, "
                    "--mqtt-ports take a comma-separated list)"
                )
            seen[address] = f"{node.name}'s {what} port"
    return nodes


def route_password(platform: PlatformSecrets) -> str:
    """The password nodes show each other: derived from the issuer seed, so written again alike."""
    digest = hmac.new(platform.issuer_seed.encode(), b"carcloud nats routes", hashlib.sha256)
    return digest.hexdigest()[:32]


def cluster_urls(
    nodes: list[ClusterNode], tls: bool = False, nats_tls: bool = False
) -> tuple[str, str]:
    """(CARCLOUD_NATS_URL, CARCLOUD_MQTT_URL) naming every node."""
    scheme = "mqtts" if tls else "mqtt"
    nats_scheme = "tls" if nats_tls else "nats"
    nats_url = ",".join(f"{nats_scheme}://{node.host}:{node.nats_port}" for node in nodes)
    mqtt_url = ",".join(f"{scheme}://{node.host}:{node.mqtt_port}" for node in nodes)
    return nats_url, mqtt_url


def render_node(
    node: ClusterNode,
    nodes: list[ClusterNode],
    platform: PlatformSecrets,
    store_dir: Path,
    tls: MqttTls | None = None,
    nats_tls: NatsTls | None = None,
) -> str:
    """The nats-server config of one node of the cluster (of one server when alone)."""
    password = route_password(platform)
    routes = (
        ClusterRoutes(
            CLUSTER_NAME,
            node.host,
            node.route_port,
            tuple(f"nats-route://{ROUTE_USER}:{password}@{n.route_address}" for n in nodes),
            ROUTE_USER,
            password,
            nats_tls,
        )
        if len(nodes) > 1
        else None
    )
    return render_config(
        ServerPorts(node.host, node.nats_port, node.mqtt_port),
        store_dir,
        platform,
        name=node.name,
        tls=tls,
        cluster=routes,
        nats_tls=nats_tls,
    )


# Every carcloud process shows a certificate of its own: carcloud.env cannot name it.
CLIENT_CERT_NOTE = (
    "# The client ports ask for a certificate signed by CARCLOUD_NATS_TLS_CA (mutual TLS):\n"
    "# give every carcloud process one, with its key, in\n"
    "# CARCLOUD_NATS_TLS_CERT=/path/to/client.pem and CARCLOUD_NATS_TLS_KEY=/path/to/client.key\n"
)


def _tls_env(nats_tls: NatsTls) -> str:
    """carcloud.env's lines for a cluster with NATS TLS."""
    ca = f"CARCLOUD_NATS_TLS_CA={nats_tls.ca_file}\n" if nats_tls.ca_file is not None else ""
    note = CLIENT_CERT_NOTE if nats_tls.verify_clients else ""
    return f"CARCLOUD_NATS_TLS_FIRST={int(nats_tls.handshake_first)}\n{ca}{note}"


def write_cluster(
    out_dir: Path,
    nodes: list[ClusterNode],
    platform: PlatformSecrets,
    secrets_file: Path,
    store_root: Path | None = None,
    tls: MqttTls | None = None,
    nats_tls: NatsTls | None = None,
) -> ClusterFiles:
    """Write every node's config and carcloud.env into `out_dir` (created if missing).

    Node N keeps JetStream in STORE_ROOT/carcloud-N (default: beside its config).
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot write into {out_dir}: {exc.strerror}") from exc
    out_dir = out_dir.absolute()
    root = (store_root or out_dir).absolute()
    configs = []
    for node in nodes:
        path = out_dir / f"{node.name}.conf"
        write_private(path, render_node(node, nodes, platform, root / node.name, tls, nats_tls))
        configs.append(path)
    nats_url, mqtt_url = cluster_urls(nodes, tls is not None, nats_tls is not None)
    tls_env = "" if nats_tls is None else _tls_env(nats_tls)
    replicas = min(len(nodes), MAX_STREAM_REPLICAS)
    env_file = out_dir / "carcloud.env"
    write_private(
        env_file,
        "# carcloud's settings for this NATS cluster: `set -a; . carcloud.env; set +a`\n"
        f"CARCLOUD_NATS_URL={nats_url}\n"
        f"CARCLOUD_MQTT_URL={mqtt_url}\n"
        f"CARCLOUD_STREAM_REPLICAS={replicas}\n"
        f"CARCLOUD_SECRETS_FILE={secrets_file.absolute()}\n{tls_env}",
    )
    return ClusterFiles(configs, env_file, nats_url, mqtt_url, replicas)
