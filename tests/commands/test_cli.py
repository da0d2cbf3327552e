"""`carcloud command` and `carcloud twin` against a running platform and a real MQTT car."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.platform import Car, Platform


def carcloud(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carcloud.cli", *args, "--data-dir", str(platform.data_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_command_with_wait_prints_the_lifecycle(platform: Platform) -> None:
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    car.serve()
    done = carcloud(
        platform, "command", creds.vin, "set_charge_limit", "percent=80", "--wait", "20s"
    )
    assert done.returncode == 0, done.stderr
    assert "succeeded" in done.stdout and "delivered" in done.stdout and "queued" in done.stdout
    received = [json.loads(p) for t, p in car.received if "/commands/" in t]
    assert received[0]["params"] == {"percent": 80}

    car.answer = lambda kind, params: ("failed", "not in park")
    failed = carcloud(platform, "command", creds.vin, "unlock", "--wait", "--json")
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["reason"] == "not in park"


def test_command_with_bad_parameters_explains_why(platform: Platform) -> None:
    creds = platform.register()
    bad = carcloud(platform, "command", creds.vin, "set_charge_limit", "percent=150")
    assert bad.returncode == 2
    assert "percent must be between 50 and 100" in bad.stderr and "Traceback" not in bad.stderr
    malformed = carcloud(platform, "command", creds.vin, "lock", "force")
    assert malformed.returncode == 2 and "'force' is not key=value" in malformed.stderr


def test_twin_set_and_show(platform: Platform) -> None:
    creds = platform.register()
    first = carcloud(
        platform, "twin", "set", creds.vin, "charge_limit_percent=80", 'hvac={"eco": true}'
    )
    assert first.returncode == 0, first.stderr
    assert "desired version 1" in first.stdout
    stale = carcloud(platform, "twin", "set", creds.vin, "mode=eco", "--if-match", "0")
    assert stale.returncode == 2 and "412" in stale.stderr
    shown = carcloud(platform, "twin", "show", creds.vin, "--json")
    twin = json.loads(shown.stdout)
    assert twin["desired"]["properties"] == {"charge_limit_percent": 80, "hvac": {"eco": True}}
    assert twin["in_sync"] is False
    text = carcloud(platform, "twin", "show", creds.vin)
    assert "not applied yet" in text.stdout
