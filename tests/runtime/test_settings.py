"""Settings from flags, CARCLOUD_* variables and defaults; a worker that needs no data dir."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from carcloud.cli.common import _settings
from carcloud.cli.main import build_parser
from carcloud.config import Settings, load_settings, mask_url
from carcloud.errors import ConfigError
from carcloud.runtime.datadir import SERVICE_USERS, load_platform_secrets
from carcloud.runtime.platform import run_worker
from tests.conftest import start_platform
from tests.platform import Car, Platform

# ---- precedence -----------------------------------------------------------------------


def test_a_flag_beats_the_environment_which_beats_the_default() -> None:
    environ = {
        "CARCLOUD_HTTP_PORT": "9100",
        "CARCLOUD_MQTT_PORT": "1999",
        "CARCLOUD_DATABASE_URL": "sqlite:////srv/carcloud/env.db",
        "CARCLOUD_INGEST_BATCH": "250",
    }
    settings = load_settings(
        {"http_port": 9000, "database_url": "sqlite:////srv/carcloud/flag.db"}, environ
    )
    assert settings.http_port == 9000  # flag over environment
    assert settings.database_url == "sqlite:////srv/carcloud/flag.db"  # flag over environment
    assert settings.mqtt_port == 1999  # environment over default
    assert settings.ingest_batch == 250  # environment over default
    assert settings.nats_port == 4225  # default
    assert settings.max_message_bytes == 64 * 1024  # default


def test_flags_as_text_are_parsed_and_checked_like_variables() -> None:
    settings = load_settings({"http_port": "9001", "data_dir": "rel/dir"}, {})
    assert settings.http_port == 9001
    assert settings.data_dir == Path("rel/dir").absolute()
    with pytest.raises(ConfigError, match=r"--http-port='0'"):
        load_settings({"http_port": "0"}, {})


def test_the_cli_fills_flags_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARCLOUD_HTTP_PORT", "9200")
    monkeypatch.setenv("CARCLOUD_NATS_URL", "nats://nats.example.com:4222")
    monkeypatch.setenv("CARCLOUD_SECRETS_FILE", "/etc/carcloud/secrets.json")
    parser = build_parser()

    worker = _settings(parser.parse_args(["worker", "ingest", "--http-port", "9300"]))
    assert worker.http_port == 9300
    assert worker.nats_url == "nats://nats.example.com:4222" and worker.nats_url_given
    assert worker.secrets_file == Path("/etc/carcloud/secrets.json")

    # `up` takes the same: with a NATS URL it uses that server instead of its own.
    up = _settings(parser.parse_args(["up", "--nats-port", "4300"]))
    assert up.http_port == 9200
    assert up.nats_url == "nats://nats.example.com:4222" and up.nats_url_given
    assert up.secrets_file == Path("/etc/carcloud/secrets.json")
    # The demo always runs its own.
    demo = _settings(parser.parse_args(["demo", "--nats-port", "4300"]))
    assert demo.nats_url == "nats://127.0.0.1:4300" and not demo.nats_url_given


def test_existing_flags_keep_working() -> None:
    args = build_parser().parse_args(
        [
            "worker",
            "ingest",
            "--data-dir",
            "/tmp/cc",
            "--http-port",
            "1",
            "--mqtt-port",
            "2",
            "--nats-port",
            "3",
            "--ingest-workers",
            "0",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ]
    )
    settings = _settings(args)
    assert (settings.http_port, settings.mqtt_port, settings.nats_port) == (1, 2, 3)
    assert settings.ingest_workers == 0 and settings.data_dir == Path("/tmp/cc")
    assert settings.tls_cert == Path("c.pem") and settings.mqtt_url == "mqtts://127.0.0.1:2"


def test_an_empty_variable_counts_as_unset() -> None:
    settings = load_settings(environ={"CARCLOUD_HTTP_PORT": "", "CARCLOUD_NATS_URL": " "})
    assert settings.http_port == 8740 and not settings.nats_url_given


def test_urls_not_given_are_derived_from_host_and_ports() -> None:
    settings = Settings(host="10.0.0.5", nats_port=4300, mqtt_port=1900)
    assert settings.nats_url == "nats://10.0.0.5:4300" and not settings.nats_url_given
    assert settings.mqtt_url == "mqtt://10.0.0.5:1900" and not settings.mqtt_url_given
    given = load_settings(environ={"CARCLOUD_MQTT_URL": "mqtts://mqtt.example.com"})
    assert given.mqtt_url == "mqtts://mqtt.example.com:8883" and given.mqtt_url_given


# ---- bad values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CARCLOUD_HTTP_PORT", "abc"),
        ("CARCLOUD_MQTT_PORT", "70000"),
        ("CARCLOUD_NATS_PORT", "0"),
        ("CARCLOUD_INGEST_WORKERS", "-1"),
        ("CARCLOUD_INGEST_BATCH", "1.5"),
        ("CARCLOUD_MAX_MESSAGE_BYTES", "0"),
        ("CARCLOUD_HOST", "http://example.com"),
        ("CARCLOUD_NATS_URL", "http://nats.example.com:4222"),
        ("CARCLOUD_NATS_URL", "nats://nats.example.com:99999"),
        ("CARCLOUD_MQTT_URL", "mqtt://"),
        ("CARCLOUD_DATABASE_URL", "carcloud.db"),
    ],
)
def test_a_bad_variable_is_a_config_error_naming_it(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={variable: value})
    message = str(caught.value)
    assert variable in message and repr(value) in message, message


def test_a_bad_variable_stops_the_cli_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARCLOUD_HTTP_PORT", "abc")
    args = build_parser().parse_args(["worker", "ingest"])
    with pytest.raises(ConfigError, match=r"CARCLOUD_HTTP_PORT='abc'"):
        _settings(args)


def test_a_bad_flag_is_a_usage_error_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["up", "--http-port", "abc"])
    assert caught.value.code == 2
    assert "--http-port" in capsys.readouterr().err


# ---- help and repr --------------------------------------------------------------------


def test_help_names_each_flags_variable_and_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["worker", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere
    assert "(env CARCLOUD_HTTP_PORT, default 8740)" in text
    for flag, variable in [
        ("--nats URL", "CARCLOUD_NATS_URL"),
        ("--database URL", "CARCLOUD_DATABASE_URL"),
        ("--secrets-file FILE", "CARCLOUD_SECRETS_FILE"),
        ("--mqtt-url URL", "CARCLOUD_MQTT_URL"),
        ("--data-dir DIR", "CARCLOUD_DATA_DIR"),
    ]:
        assert flag in text and f"(env {variable}," in text
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--help"])
    up_help = capsys.readouterr().out
    assert "--database" in up_help and "--nats URL" in up_help and "--stream-replicas" in up_help


def test_repr_masks_passwords_and_shows_the_rest() -> None:
    settings = load_settings(
        environ={
            "CARCLOUD_DATABASE_URL": "postgresql://carcloud:s3cret@db.example.com/carcloud",
            "CARCLOUD_NATS_URL": "nats://t0ken@nats.example.com:4222",
        }
    )
    text = repr(settings)
    assert "s3cret" not in text and "t0ken" not in text
    assert "postgresql://carcloud:***@db.example.com/carcloud" in text
    assert "nats://***@nats.example.com:4222" in text
    assert "http_port=8740" in text and "ingest_batch=1000" in text
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


# ---- secrets files --------------------------------------------------------------------


def _secrets(path: Path, users: tuple[str, ...] = SERVICE_USERS) -> Path:
    passwords = {user: f"pw-{user}-do-not-print" for user in users}
    path.write_text(
        json.dumps(
            {
                "passwords": passwords,
                "issuer_seed": "SEED-do-not-print",
                "vehicle_pepper": "PEPPER-do-not-print-0123456789",
            }
        )
    )
    return path


def test_a_secrets_file_loads(tmp_path: Path) -> None:
    loaded = load_platform_secrets(_secrets(tmp_path / "secrets.json"))
    assert loaded.passwords["svc"] == "pw-svc-do-not-print"
    assert loaded.issuer_seed == "SEED-do-not-print"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist"),
        ("{not json", "is not JSON"),
        ('{"passwords": ["svc"], "issuer_seed": "x"}', "not a carcloud secrets file"),
        ('{"passwords": {"svc": "pw-do-not-print"}, "issuer_seed": "x"}', "no password for sys"),
        (
            '{"passwords": {"svc": "a-do-not-print", "sys": "b", "auth": "c", "dispatch": "d"}, '
            '"issuer_seed": "x"}',
            "no vehicle_pepper",
        ),
    ],
)
def test_a_bad_secrets_file_is_a_config_error(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "secrets.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_platform_secrets(path)
    message = str(caught.value)
    assert expected in message and str(path) in message
    assert "do-not-print" not in message


# ---- a worker without the platform's data dir ------------------------------------------


async def test_a_worker_without_nats_url_or_platform_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CARCLOUD_NATS_URL"):
        await run_worker(Settings(data_dir=tmp_path / "empty"), ("ingest",))


async def test_a_worker_without_secrets_says_what_to_set(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "empty", nats_url="nats://127.0.0.1:1")
    with pytest.raises(ConfigError, match="CARCLOUD_SECRETS_FILE"):
        await run_worker(settings, ("ingest",))


async def test_a_worker_without_a_database_refuses_to_make_one(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "empty",
        nats_url="nats://127.0.0.1:1",
        secrets_file=_secrets(tmp_path / "secrets.json"),
    )
    with pytest.raises(ConfigError, match="CARCLOUD_DATABASE_URL"):
        await run_worker(settings, ("ingest",))
    assert not (tmp_path / "empty").exists()


@pytest.fixture
def platform_without_ingest(tmp_path: Path) -> Iterator[Platform]:
    running = start_platform(tmp_path / "platform", "--ingest-workers", "0")
    yield running
    running.stop()


def _wait_for_line(path: Path, text: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"worker never said {text!r}:\n{path.read_text(errors='replace')}")


@pytest.mark.slow
def test_a_worker_on_another_host_runs_from_environment_variables_alone(
    platform_without_ingest: Platform, tmp_path: Path
) -> None:
    """`carcloud worker ingest` with CARCLOUD_* variables only, and no data dir at all.

    The platform runs no ingest of its own, so stored telemetry is the worker's work.
    """
    platform = platform_without_ingest
    elsewhere = tmp_path / "other-host"
    elsewhere.mkdir()
    secrets = elsewhere / "platform-secrets.json"
    shutil.copy(platform.data_dir / "secrets.json", secrets)
    missing_data_dir = elsewhere / "no-data-dir"
    env = {key: value for key, value in os.environ.items() if not key.startswith("CARCLOUD_")}
    env |= {
        "CARCLOUD_NATS_URL": f"nats://127.0.0.1:{platform.nats_port}",
        "CARCLOUD_DATABASE_URL": f"sqlite:///{platform.data_dir / 'carcloud.db'}",
        "CARCLOUD_SECRETS_FILE": str(secrets),
        "CARCLOUD_DATA_DIR": str(missing_data_dir),
    }
    output = elsewhere / "worker.log"
    with output.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "carcloud.cli", "worker", "ingest"],
            env=env,
            cwd=Path(__file__).resolve().parents[2],  # this checkout's carcloud
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_line(output, "worker running roles: ingest", worker)
        creds = platform.register()
        car = Car(platform, creds.vin, creds.password)
        car.connect()
        car.telemetry({"Vehicle.Speed": 42.5})
        with platform.api() as api:
            state = platform.wait_for(
                lambda: api.get(f"/vehicles/{creds.vin}/state")["signals"],
                timeout=20,
                what="telemetry stored by the remote worker",
            )
        assert state["Vehicle.Speed"]["value"] == 42.5
        car.disconnect()
    finally:
        worker.send_signal(signal.SIGINT)
        code = worker.wait(20)
    assert code == 0, output.read_text(errors="replace")
    assert not missing_data_dir.exists(), "the worker made a data dir it does not need"
