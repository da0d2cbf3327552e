"""`carcloud nats-config` and the settings that point carcloud at an external NATS."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from carcloud.config import load_settings, mask_url, mqtt_addresses, nats_servers
from carcloud.errors import ConfigError
from carcloud.messaging.cluster import plan_nodes, route_password
from carcloud.messaging.natsserver import nats_server_binary
from carcloud.runtime.datadir import load_platform_secrets
from tests.cluster.nodes import NatsCluster, carcloud


def test_a_cluster_is_given_as_lists_of_urls() -> None:
    settings = load_settings(
        environ={
            "CARCLOUD_NATS_URL": "nats://a.example:4222, nats://b.example:4222",
            "CARCLOUD_MQTT_URL": "mqtt://a.example,mqtt://b.example:1884",
            "CARCLOUD_STREAM_REPLICAS": "3",
        }
    )
    assert settings.nats_url == "nats://a.example:4222,nats://b.example:4222"
    assert nats_servers(settings.nats_url) == ["nats://a.example:4222", "nats://b.example:4222"]
    assert mqtt_addresses(settings.mqtt_url) == [("a.example", 1883), ("b.example", 1884)]
    assert settings.stream_replicas == 3
    assert mask_url("nats://u:pw@a:1,nats://tok@b:2") == "nats://u:***@a:1,nats://***@b:2"


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("CARCLOUD_NATS_URL", "nats://a:1,,nats://b:2", "empty entry"),
        ("CARCLOUD_NATS_URL", "nats://a:1,http://b:2", "expected a nats"),
        ("CARCLOUD_MQTT_URL", "mqtt://a:1,mqtts://b:2", "mixes mqtt:// and mqtts://"),
        ("CARCLOUD_MQTT_URL", "mqtt://car:secret@a:1", "without a path or credentials"),
        ("CARCLOUD_STREAM_REPLICAS", "0", "must be >= 1"),
    ],
)
def test_bad_cluster_settings_are_refused_with_the_reason(
    variable: str, value: str, reason: str
) -> None:
    with pytest.raises(ConfigError, match=reason) as caught:
        load_settings(environ={variable: value})
    assert variable in str(caught.value)


def test_credentials_in_the_nats_url_are_refused_not_ignored() -> None:
    # Each service connects with its own password from the secrets file.
    with pytest.raises(ConfigError, match="secrets file") as caught:
        nats_servers("nats://a:1,nats://admin:s3cret@b:2")
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("size", "ports", "reason"),
    [
        (2, ([4222], [6222], [1883]), "two nodes cannot lose one"),
        (3, ([4222], [6222], [1883]), "need ports of their own"),
        (3, ([1, 2], [4, 5, 6], [7, 8, 9]), "one value for every node"),
        (3, ([1, 2, 3], [4, 5, 6], [7, 8, 3]), "also carcloud-3's NATS port"),
    ],
)
def test_a_cluster_that_cannot_work_is_refused(
    size: int, ports: tuple[list[int], list[int], list[int]], reason: str
) -> None:
    with pytest.raises(ConfigError, match=reason):
        plan_nodes(size, ["127.0.0.1"], *ports)


def test_nodes_on_hosts_of_their_own_share_the_default_ports() -> None:
    nodes = plan_nodes(3, ["n1", "n2", "n3"], [4222], [6222], [1883])
    assert [(n.name, n.host, n.nats_port, n.route_port) for n in nodes] == [
        ("carcloud-1", "n1", 4222, 6222),
        ("carcloud-2", "n2", 4222, 6222),
        ("carcloud-3", "n3", 4222, 6222),
    ]


@pytest.mark.parametrize("size", [1, 3])
def test_nats_config_writes_private_files_that_nats_server_accepts(
    tmp_path: Path, size: int
) -> None:
    cluster = NatsCluster.configure(tmp_path, size)
    files = sorted(path.name for path in cluster.out_dir.iterdir())
    assert files == sorted([*(f"carcloud-{n + 1}.conf" for n in range(size)), "carcloud.env"])
    for path in cluster.out_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert cluster.env["CARCLOUD_STREAM_REPLICAS"] == str(min(size, 3))
    assert cluster.env["CARCLOUD_SECRETS_FILE"] == str(cluster.data_dir / "secrets.json")
    assert len(cluster.env["CARCLOUD_MQTT_URL"].split(",")) == size
    secrets = load_platform_secrets(Path(cluster.env["CARCLOUD_SECRETS_FILE"]))
    for node in cluster.nodes:
        checked = subprocess.run(
            [nats_server_binary(), "-t", "-c", str(node.config)], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stderr + checked.stdout
        text = node.config.read_text()
        assert f"server_name: {node.name}" in text and "auth_callout" in text
        assert ("routes: [" in text) == (size > 1)
        # The routes' password comes from the secrets: written again, it is the same.
        assert (f'password: "{route_password(secrets)}"' in text) == (size > 1)


def test_nats_config_says_what_is_wrong(tmp_path: Path) -> None:
    result = carcloud("nats-config", "--cluster", "2", "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "two nodes cannot lose one" in result.stderr
    result = carcloud("nats-config", "--out", str(tmp_path / "out"), "--mqtt-ports", "1883,x")
    assert result.returncode == 2 and "--mqtt-ports" in result.stderr


def test_up_with_nats_but_no_mqtt_url_says_what_to_add(tmp_path: Path) -> None:
    result = carcloud("up", "--data-dir", str(tmp_path), "--nats", "nats://127.0.0.1:1")
    assert result.returncode == 2
    assert "--mqtt-url" in result.stderr and "CARCLOUD_MQTT_URL" in result.stderr
