"""`carcloud up --media off`: no media server; rooms say why and how to get one, calls to
meetings still work."""

from __future__ import annotations

from pathlib import Path

import pytest

from carcloud.errors import CarcloudError
from tests.conftest import start_platform


def test_rooms_answer_503_naming_janus_without_a_media_server(tmp_path: Path) -> None:
    platform = start_platform(tmp_path / "data", "--media", "off")
    try:
        assert not (tmp_path / "data" / "janus").exists()  # no Janus child was started
        platform.ensure_brand("volta")
        with platform.api() as api, pytest.raises(CarcloudError, match="503.*janus"):
            api.post("/rooms", {"name": "Dispatch", "brand": "volta"})
        creds = platform.register("volta")
        with platform.api() as api:
            call = api.post(f"/vehicles/{creds.vin}/calls", {"tel": "tel:+4930123456,,42#"})
        assert call["state"] == "requested" and call["provider"] == "phone"
    finally:
        platform.stop()
