"""Webhooks through the real platform: events committed by the API reach a real local
HTTP receiver, signed, retried with the same id, scoped by brand, isolated per endpoint,
and redelivered on request."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from carcloud.client import ApiClient
from carcloud.errors import CarcloudError, NotFoundError
from carcloud.runtime.launcher import free_port
from tests.platform import Platform
from tests.webhooks.receiver import Receiver, verify

ALLOW_PRIVATE = ("--webhook-allow-private", "1")  # the receiver listens on loopback


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = Platform(
        tmp_path_factory.mktemp("carcloud"), free_port(), free_port(), free_port(),
        list(ALLOW_PRIVATE),
    )  # fmt: skip
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def brand_key(platform: Platform, brand: str) -> str:
    platform.ensure_brand(brand)
    with platform.api() as api:
        return str(api.post("/api-keys", {"name": f"{brand} app", "brand": brand})["key"])


def subscribe(api: ApiClient, url: str, *types: str, **extra: object) -> dict[str, object]:
    created = api.post("/webhooks", {"url": url, "event_types": list(types), **extra})
    assert isinstance(created, dict)
    return created


def test_a_receiver_verifies_the_signature_and_gets_a_retry_with_the_same_id(
    platform: Platform, receiver: Receiver
) -> None:
    with platform.api(brand_key(platform, "hookalpha")) as api:
        hook = subscribe(api, receiver.url("/alpha"), "vehicle.registered")
    secret = str(hook["secret"])
    assert secret.startswith("whsec_") and hook["brand"] == "hookalpha"
    receiver.answer("/alpha", 500)
    vin = platform.register("hookalpha").vin

    first, retry = platform.wait_for(
        lambda: receiver.on("/alpha")[:2] if len(receiver.on("/alpha")) >= 2 else None,
        timeout=30,
        what="a first attempt and its retry",
    )
    assert first.webhook_id == retry.webhook_id and first.webhook_id.startswith("msg_")
    assert first.body == retry.body  # the same payload, signed again with its own timestamp
    assert verify(secret, first) and verify(secret, retry)
    assert not verify("whsec_" + "A" * 44, retry)  # another secret does not verify
    assert retry.at - first.at >= 5.0  # backoff: the first retry waits at least 5 s
    event = retry.json()
    assert (event["type"], event["brand"], event["vin"]) == ("vehicle.registered", "hookalpha", vin)
    assert event["data"]["vin"] == vin and isinstance(event["id"], int)

    with platform.api() as api:
        deliveries = platform.wait_for(
            lambda: [
                d
                for d in api.get(f"/webhooks/{hook['id']}/deliveries")["deliveries"]
                if d["status"] == "succeeded"
            ],  # fmt: skip
            what="the delivery recorded as succeeded",
        )
    assert len(deliveries) == 1
    (delivery,) = deliveries
    assert delivery["id"] == first.webhook_id and delivery["attempts"] == 2
    assert delivery["last_status_code"] == 204 and delivery["event_type"] == "vehicle.registered"
    time.sleep(1.0)
    assert len(receiver.on("/alpha")) == 2  # delivered once it succeeded, not again


def test_a_brand_webhook_never_receives_another_brands_events(
    platform: Platform, receiver: Receiver
) -> None:
    beta_key, gamma_key = brand_key(platform, "hookbeta"), brand_key(platform, "hookgamma")
    with platform.api(beta_key) as beta, platform.api(gamma_key) as gamma, platform.api() as op:
        beta_hook = subscribe(beta, receiver.url("/beta"), "vehicle")
        gamma_hook = subscribe(gamma, receiver.url("/gamma"), "vehicle.*")
        every = subscribe(op, receiver.url("/every"), "vehicle.registered", "brand.created")
        assert every["brand"] is None  # an operator's webhook for every brand
        # A brand key sees and makes only its brand's webhooks.
        assert [h["id"] for h in beta.get("/webhooks")["webhooks"]] == [beta_hook["id"]]
        with pytest.raises(NotFoundError):
            subscribe(beta, receiver.url("/x"), "vehicle", brand="hookgamma")
        with pytest.raises(NotFoundError):
            beta.get(f"/webhooks/{gamma_hook['id']}/deliveries")
        with pytest.raises(NotFoundError):
            beta.request("DELETE", f"/webhooks/{gamma_hook['id']}")
        assert {h["id"] for h in op.get("/webhooks")["webhooks"]} >= {
            beta_hook["id"], gamma_hook["id"], every["id"]}  # fmt: skip

    beta_vins = [platform.register("hookbeta").vin for _ in range(3)]
    gamma_vins = [platform.register("hookgamma").vin for _ in range(3)]
    platform.ensure_brand("hookdelta")  # brand.created: an event of its own brand only

    def vins(path: str) -> set[str]:
        return {r.json()["vin"] for r in receiver.on(path) if r.json()["vin"]}

    platform.wait_for(
        lambda: (
            vins("/every") >= set(beta_vins + gamma_vins)
            and any(r.json()["type"] == "brand.created" for r in receiver.on("/every"))
        ),
        timeout=20,
        what="the operator's webhook to get both brands' events",
    )
    platform.wait_for(lambda: vins("/beta") == set(beta_vins), what="beta's own events")
    platform.wait_for(lambda: vins("/gamma") == set(gamma_vins), what="gamma's own events")
    time.sleep(1.0)  # anything misrouted would have arrived with the rest
    assert {r.json()["brand"] for r in receiver.on("/beta")} == {"hookbeta"}
    assert {r.json()["brand"] for r in receiver.on("/gamma")} == {"hookgamma"}
    assert vins("/beta") == set(beta_vins) and vins("/gamma") == set(gamma_vins)


def test_a_slow_endpoint_does_not_delay_another(platform: Platform, receiver: Receiver) -> None:
    receiver.slow("/slow", 6.0)  # answers after 6 s, within the 10 s timeout
    with platform.api(brand_key(platform, "hookslow")) as api:
        subscribe(api, receiver.url("/slow"), "vehicle.registered")
        subscribe(api, receiver.url("/fast"), "vehicle.registered")
    registered: dict[str, float] = {}
    for _ in range(12):  # more than the slow endpoint's lane holds at once
        registered[platform.register("hookslow").vin] = time.monotonic()
        time.sleep(0.1)
    platform.wait_for(
        lambda: len(receiver.on("/fast")) == 12, timeout=10, what="the fast endpoint's 12"
    )
    lags = [r.at - registered[r.json()["vin"]] for r in receiver.on("/fast")]
    assert max(lags) < 2.5, f"the fast endpoint waited {max(lags):.1f} s behind the slow one"
    assert len(receiver.on("/slow")) < 12  # the slow one is still working through its queue
    platform.wait_for(
        lambda: len(receiver.on("/slow")) == 12, timeout=40, what="the slow endpoint's 12"
    )


def test_redelivery_through_the_api(platform: Platform, receiver: Receiver) -> None:
    with platform.api(brand_key(platform, "hookredo")) as api:
        hook = subscribe(api, receiver.url("/redo"), "vehicle.registered")
        platform.register("hookredo")
        (original,) = platform.wait_for(lambda: receiver.on("/redo"), what="the delivery")
        path = f"/webhooks/{hook['id']}/deliveries"
        (delivery,) = platform.wait_for(
            lambda: [d for d in api.get(path)["deliveries"] if d["status"] == "succeeded"],
            what="the delivery recorded",
        )
        again = api.post(f"{path}/{delivery['id']}/redeliver")
        assert (again["id"], again["status"]) == (delivery["id"], "pending")
        second = platform.wait_for(lambda: receiver.on("/redo")[1:], what="the redelivery")[0]
        assert second.webhook_id == original.webhook_id and second.body == original.body
        assert verify(str(hook["secret"]), second)
        platform.wait_for(
            lambda: api.get(path)["deliveries"][0]["status"] == "succeeded",
            what="the redelivery recorded",
        )
        with pytest.raises(NotFoundError):
            api.post(f"{path}/msg_nosuchdelivery/redeliver")
        api.request("DELETE", f"/webhooks/{hook['id']}")
        with pytest.raises(NotFoundError):
            api.get(path)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/hook", "event_types": ["trip.completed"]}, "url"),
        ({"url": "not a url", "event_types": ["trip.completed"]}, "url"),
        ({"url": "https://example.com/hook", "event_types": ["trip.finished"]}, "event_types"),
        ({"url": "https://example.com/hook", "event_types": []}, "event_types"),
        ({"url": "https://example.com/h", "event_types": ["trip"], "vins": ["bad"]}, "vins"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    platform: Platform, body: dict[str, object], field: str
) -> None:
    with platform.api() as api, pytest.raises(CarcloudError, match=f"^422: {field}: "):
        api.post("/webhooks", body)


def test_retries_survive_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    platform = Platform(tmp_path / "data", free_port(), free_port(), free_port(),
                        list(ALLOW_PRIVATE))  # fmt: skip
    platform.start()
    try:
        with platform.api() as api:
            hook = subscribe(api, receiver.url("/restart"), "vehicle.registered")
        receiver.answer("/restart", 503)
        platform.register("hookrestart")
        (first,) = platform.wait_for(lambda: receiver.on("/restart"), what="the first attempt")
        platform.stop()  # the retry is due in 5 to 10 s: only the database remembers it
        platform.start()
        retry = platform.wait_for(
            lambda: receiver.on("/restart")[1:], timeout=30, what="the retry after a restart"
        )[0]
        assert retry.webhook_id == first.webhook_id and verify(str(hook["secret"]), retry)
    finally:
        platform.stop()


def _carcloud(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carcloud.cli", *args, "--data-dir", str(platform.data_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_cli_subscribes_lists_and_redelivers(platform: Platform, receiver: Receiver) -> None:
    platform.ensure_brand("hookcli")
    made = _carcloud(platform, "webhooks", "add", receiver.url("/cli"), "--type", "vehicle",
                     "--brand", "hookcli", "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    hook = json.loads(made.stdout)
    assert hook["secret"].startswith("whsec_") and hook["event_types"] == ["vehicle"]
    listed = _carcloud(platform, "webhooks", "list", "--json")
    assert listed.returncode == 0 and hook["id"] in {h["id"] for h in json.loads(listed.stdout)}
    platform.register("hookcli")
    (first,) = platform.wait_for(lambda: receiver.on("/cli"), what="the delivery")
    page = platform.wait_for(
        lambda: json.loads(
            _carcloud(
                platform, "webhooks", "deliveries", hook["id"], "--status", "succeeded", "--json"
            ).stdout
        ),  # fmt: skip
        what="the delivery listed",
    )
    assert [d["id"] for d in page] == [first.webhook_id]
    again = _carcloud(platform, "webhooks", "redeliver", hook["id"], first.webhook_id)
    assert again.returncode == 0 and "queued again" in again.stdout
    platform.wait_for(lambda: len(receiver.on("/cli")) == 2, what="the redelivery")
    bad = _carcloud(platform, "webhooks", "add", "ftp://x.example/h", "--type", "trip")
    assert bad.returncode != 0 and "url: must be an http:// or https:// URL" in bad.stderr
    gone = _carcloud(platform, "webhooks", "delete", hook["id"])
    assert gone.returncode == 0
    assert hook["id"] not in _carcloud(platform, "webhooks", "list", "--json").stdout
