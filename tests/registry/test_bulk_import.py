"""`carcloud vehicles import FILE.csv` against a running platform."""

from __future__ import annotations

import csv
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.platform import Car, Platform, make_vin


def run_import(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carcloud.cli", "vehicles", "import", *args,
         "--data-dir", str(platform.data_dir)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_import_registers_good_rows_reports_bad_ones_and_keeps_secrets_private(
    platform: Platform, tmp_path: Path
) -> None:
    platform.ensure_brand("importco")
    taken = platform.register(brand="importco").vin
    good = [make_vin("MPT") for _ in range(1200)]
    lines = ["VIN,Brand,Model,Year,Tags"]  # header names in any case
    lines += [f"{vin},importco,I1,2024,fleet:a;lease" for vin in good[:600]]
    lines += ["not-a-vin,importco,I1,2024,", f"{make_vin('MPT')},nobrand,I1,2024,"]
    lines += [f"{good[0]},importco,I1,2024,", f"{taken},importco,I1,,"]
    lines += [f"{make_vin('MPT')},importco,I1,soon,", ""]
    lines += [f"{vin.lower()},importco,I2,,region:north" for vin in good[600:]]
    source = tmp_path / "fleet.csv"
    source.write_text("\n".join(lines) + "\n")
    secrets_out = tmp_path / "secrets.csv"

    done = run_import(platform, str(source), "--secrets-out", str(secrets_out), "--json")

    assert done.returncode == 1, done.stderr  # some rows failed
    report = json.loads(done.stdout)
    assert (report["rows"], report["registered"], report["failed"]) == (1205, 1200, 5)
    errors = {e["line"]: (e["error"], e["message"]) for e in report["errors"]}
    assert errors[602][0] == "invalid_vin"
    assert errors[603][0] == "unknown_brand"
    assert errors[604] == ("duplicate", f"VIN {good[0]} is also on line 2")
    assert errors[605][0] == "already_registered"
    assert errors[606] == ("invalid", "year 'soon' is not a number")

    assert stat.S_IMODE(secrets_out.stat().st_mode) == 0o600
    with secrets_out.open(newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [r["vin"] for r in written] == good
    assert all(r["mqtt_username"] == r["mqtt_client_id"] == r["vin"] for r in written)
    with platform.api() as api:
        listed = api.get("/vehicles", brand="importco", tag="region:north", limit=1000)
        assert len(listed["vehicles"]) == 600
        assert api.get(f"/vehicles/{good[1]}")["tags"] == ["fleet:a", "lease"]

    # A car connects with a secret from the file.
    car = Car(platform, written[-1]["vin"], written[-1]["mqtt_password"])
    assert not car.connect().is_failure
    car.disconnect()

    # The secrets file is never overwritten.
    again = run_import(platform, str(source), "--secrets-out", str(secrets_out))
    assert again.returncode != 0 and "exists already" in again.stderr
    with secrets_out.open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 1200


def test_import_without_secrets_out_or_with_a_bad_header_is_refused(
    platform: Platform, tmp_path: Path
) -> None:
    source = tmp_path / "fleet.csv"
    source.write_text("vin,make,model\nWVWZZZ1JZXW000001,volta,E1\n")
    missing = run_import(platform, str(source))
    assert missing.returncode != 0 and "--secrets-out" in missing.stderr
    bad = run_import(platform, str(source), "--secrets-out", str(tmp_path / "out.csv"))
    assert bad.returncode != 0 and "missing brand" in bad.stderr
    assert not (tmp_path / "out.csv").exists()
