"""`carcloud nats-config`: the configuration of a NATS cluster for carcloud (docs/scale-out.md)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from carcloud.cli.common import NATS_TLS_SETTINGS, _add_settings, _settings, console
from carcloud.config import host_list, port_list
from carcloud.messaging import cluster

T = TypeVar("T")


def _list_type(parse: Callable[[str], list[T]]) -> Callable[[str], list[T]]:
    """argparse's type for a comma-separated list, with argparse's error."""

    def parsed(raw: str) -> list[T]:
        try:
            return parse(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{raw!r}: {exc}") from None

    return parsed


def add_cluster_commands(sub: Any) -> None:
    """`nats-config` and its options."""
    nats_config = sub.add_parser(
        "nats-config",
        help="write the config of a NATS cluster for carcloud, and the settings to use it",
        description="Write one nats-server config per node (JetStream, MQTT, routes, and "
        "carcloud's accounts and auth callout) and carcloud.env with the CARCLOUD_* settings "
        "that point carcloud at the cluster (docs/scale-out.md). The services' passwords "
        "come from --secrets-file, or from the data dir's secrets.json (made if missing). "
        "With --nats-tls-cert/--nats-tls-key (and --nats-tls-ca), clients connect with TLS "
        "only (tls:// URLs), starting with the handshake (unless --nats-tls-first 0), and "
        "the routes run over TLS, checked against the CA. With --nats-tls-verify-clients, "
        "clients must also show a certificate signed by the CA (mutual TLS).",
    )
    nats_config.add_argument(
        "--cluster", type=int, default=3, metavar="N", help="nodes (1, or 3 or more; default 3)"
    )
    nats_config.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="where to write the files"
    )
    lists: tuple[tuple[str, Callable[[str], list[Any]], str, str], ...] = (
        ("--hosts", host_list, "127.0.0.1", "host of each node"),
        ("--nats-ports", port_list, str(cluster.DEFAULT_NATS_PORT), "client port of each node"),
        ("--route-ports", port_list, str(cluster.DEFAULT_ROUTE_PORT), "route port of each node"),
        ("--mqtt-ports", port_list, str(cluster.DEFAULT_MQTT_PORT), "MQTT port of each node"),
    )
    for flag, parse, default, text in lists:
        nats_config.add_argument(
            flag,
            type=_list_type(parse),
            default=parse(default),
            metavar="LIST",
            help=f"{text}: one for all, or one per node separated by commas (default {default})",
        )
    nats_config.add_argument(
        "--store-dir",
        type=Path,
        metavar="DIR",
        help="where node N keeps JetStream: DIR/carcloud-N (default: the --out dir)",
    )
    _add_settings(
        nats_config, ["data_dir", "secrets_file", "tls_cert", "tls_key", *NATS_TLS_SETTINGS]
    )
    nats_config.add_argument(
        "--nats-tls-verify-clients",
        action="store_true",
        help="mutual TLS: the client ports refuse clients without a certificate signed by "
        "--nats-tls-ca (`verify: true`); give every carcloud process a client certificate "
        "with --nats-tls-cert/--nats-tls-key (CARCLOUD_NATS_TLS_CERT/KEY). The vehicles' "
        "MQTT listeners do not ask for one",
    )
    nats_config.set_defaults(func=cmd_nats_config)


def cmd_nats_config(args: argparse.Namespace) -> int:
    from carcloud.messaging.tls import node_tls
    from carcloud.runtime.datadir import DataDir, load_platform_secrets
    from carcloud.runtime.platform import tls_settings

    settings = _settings(args)
    nodes = cluster.plan_nodes(
        args.cluster, args.hosts, args.nats_ports, args.route_ports, args.mqtt_ports
    )
    if settings.secrets_file is not None:
        secrets_file = settings.secrets_file
        platform = load_platform_secrets(secrets_file)
    else:  # the data dir's, made on first use as `carcloud up` does
        data_dir = DataDir(settings.data_dir)
        data_dir.ensure()
        platform = data_dir.platform_secrets()
        secrets_file = data_dir.secrets_file
    written = cluster.write_cluster(
        args.out,
        nodes,
        platform,
        secrets_file,
        args.store_dir,
        tls_settings(settings),
        node_tls(settings, args.nats_tls_verify_clients),
    )
    for node, path in zip(nodes, written.configs, strict=True):
        console.print(
            f"  {node.name}  NATS {node.host}:{node.nats_port}  routes {node.route_address}  "
            f"MQTT {node.host}:{node.mqtt_port}  ->  {path}"
        )
    console.print(f"  carcloud settings  ->  {written.env_file}")
    console.print(f"  CARCLOUD_NATS_URL={written.nats_url}")
    console.print("Start each node on its host:  nats-server -c CONFIG")
    console.print(
        f"then carcloud against them:  set -a; . {written.env_file}; set +a; "
        f"carcloud up --data-dir {settings.data_dir}"
    )
    return 0
