"""Which events an endpoint gets, and what a subscription may say."""

from __future__ import annotations

import pytest

from carcloud.errors import ValidationError
from carcloud.events.models import EVENT_TYPES, DomainEvent
from carcloud.webhooks.models import (
    WebhookEndpoint,
    check_event_types,
    check_url,
    check_vins,
    new_secret,
)

VIN = "WVWZZZ1JZXW000001"
OTHER = "WVWZZZ1JZXW000002"


def hook(brand: str | None, types: tuple[str, ...], vins: tuple[str, ...] = ()) -> WebhookEndpoint:
    return WebhookEndpoint(
        "whk_1", brand, "https://x.example/h", types, vins, "", new_secret(), 100
    )


def event(kind: str, brand: str | None, vin: str | None = VIN, at: int = 200) -> DomainEvent:
    return DomainEvent(1, kind, brand, vin, at, {})


def test_brand_vin_type_and_creation_time_filter() -> None:
    volta = hook("volta", ("trip", "vehicle.online"))
    assert volta.wants(event("trip.completed", "volta"))
    assert volta.wants(event("vehicle.online", "volta"))
    assert not volta.wants(event("vehicle.offline", "volta"))
    assert not volta.wants(event("trip.completed", "nova"))  # another brand's
    assert not volta.wants(event("trip.completed", None))  # a platform-wide event
    assert not volta.wants(event("trip.completed", "volta", at=99))  # before it existed
    operator = hook(None, ("trip.*",))
    assert operator.wants(event("trip.removed", "nova")) and operator.wants(event("trip.x", None))
    one_car = hook("volta", ("trip",), (VIN,))
    assert one_car.wants(event("trip.completed", "volta"))
    assert not one_car.wants(event("trip.completed", "volta", OTHER))
    assert not one_car.wants(event("trip.completed", "volta", None))


def test_every_known_type_can_be_subscribed() -> None:
    assert check_event_types(list(EVENT_TYPES)) == tuple(EVENT_TYPES)
    assert check_event_types(["trip", "trip", "charging.*"]) == ("trip", "charging.*")
    with pytest.raises(ValidationError, match="^event_types: unknown event type 'trips'"):
        check_event_types(["trips"])


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://x.example/h", "must be an http:// or https:// URL"),
        ("javascript:alert(1)", "must be an http:// or https:// URL"),
        ("https://", "has no host"),
        ("https://user:pw@x.example/h", "must not hold credentials"),
        ("https://x.example:99999/h", "not a valid URL"),
        ("https://x.example/" + "a" * 3000, "longer than"),
    ],
)
def test_bad_urls_name_the_field(url: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=f"^url: {problem}"):
        check_url(url)


def test_good_urls_and_vins() -> None:
    assert check_url(" https://x.example:8443/h?k=1 ") == "https://x.example:8443/h?k=1"
    assert check_vins([VIN, VIN.lower()]) == (VIN,)
    with pytest.raises(ValidationError, match="^vins: "):
        check_vins(["short"])
