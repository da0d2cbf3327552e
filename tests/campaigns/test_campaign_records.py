"""Campaigns survive records that are not campaigns; status counts match names exactly."""

from __future__ import annotations

import httpx

from carcloud.campaigns.service import campaign_failed
from tests.platform import Platform


def test_a_hand_edited_campaign_configuration_breaks_nothing(platform: Platform) -> None:
    with platform.api() as api:
        api.post("/campaigns", {"name": "speedy", "signals": ["Vehicle.Speed"]})
        api.post("/campaigns", {"name": "intact", "signals": ["Vehicle.Speed"]})
        edited = next(c for c in api.get("/configurations") if c["name"] == "campaign:speedy")
        # An operator replaces the document by hand: no "campaigns" key any more.
        api.request(
            "PUT",
            f"/configurations/{edited['id']}",
            json={"name": edited["name"], "target": {}, "desired": {"mode": "eco"}},
        )
        listed = api.get("/campaigns")
        assert "intact" in {c["name"] for c in listed}  # the rest of the list, not a 500
        assert "speedy" not in {c["name"] for c in listed}
    headers = {"Authorization": f"Bearer {platform.operator_key}"}
    for method, path in (
        ("GET", "/campaigns/speedy"),
        ("POST", "/campaigns/speedy/pause"),
        ("POST", "/campaigns/speedy/resume"),
    ):
        answer = httpx.request(method, f"{platform.url}/api/v1{path}", headers=headers)
        assert answer.status_code in (404, 422), (path, answer.status_code, answer.text)
        assert "no valid definition" in answer.json()["message"]
    # It can still be deleted, and created again.
    with platform.api() as api:
        api.request("DELETE", "/campaigns/speedy")
        api.post("/campaigns", {"name": "speedy", "signals": ["Vehicle.Speed"]})
        assert api.get("/campaigns/speedy")["active"] is True


def test_a_failure_of_one_campaign_is_not_counted_for_another() -> None:
    reported = {"errors": {"campaigns": "overspeed: unknown signal Vehicle.Nope"}}
    assert campaign_failed(reported, "overspeed")
    assert not campaign_failed(reported, "speed")  # "speed" is inside "overspeed"
    assert not campaign_failed({"errors": {"campaigns": "a: x; b-2: y"}}, "b")
    assert campaign_failed({"errors": {"campaigns": "a: x; b-2: y"}}, "b-2")
    assert campaign_failed({"campaign_status": {"speed": {"error": "bad"}}}, "speed")
    assert not campaign_failed({}, "speed")
