"""No SSRF by default: a webhook to a loopback, private or link-local address is refused
before any request is made, and marked failed with the reason; allowed when configured."""

from __future__ import annotations

import ipaddress
from typing import cast

import httpx
import pytest

from carcloud.outbound import RefusedTarget, TargetPolicy, is_public
from carcloud.webhooks.models import Delivery, DeliveryStatus, WebhookEndpoint, new_secret
from carcloud.webhooks.sender import DeliverySender
from carcloud.webhooks.service import WebhookService
from carcloud.webhooks.store import WebhookStore
from tests.webhooks.receiver import Receiver, verify


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0",
     "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "224.0.0.1", "100.64.0.1"],
)  # fmt: skip
def test_non_public_addresses(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


def test_public_addresses() -> None:
    assert is_public(ipaddress.ip_address("93.184.215.14"))
    assert is_public(ipaddress.ip_address("2606:4700::1111"))


async def test_names_are_resolved_before_the_check() -> None:
    with pytest.raises(RefusedTarget, match="localhost is 127.0.0.1|localhost is ::1"):
        await TargetPolicy().check("http://localhost:8080/hook")
    await TargetPolicy(allow_private=True).check("http://localhost:8080/hook")


def _delivery_to(url: str) -> tuple[WebhookEndpoint, Delivery]:
    endpoint = WebhookEndpoint("whk_1", None, url, ("trip",), (), "", new_secret(), 0)
    delivery = Delivery("msg_1", "whk_1", 7, "trip.completed", '{"id":7}',
                        DeliveryStatus.PENDING, 0, 0, 0, 10**18)  # fmt: skip
    return endpoint, delivery


async def test_a_loopback_receiver_gets_nothing_unless_allowed() -> None:
    service = WebhookService(cast(WebhookStore, _NoStore()))
    with Receiver() as receiver:
        endpoint, delivery = _delivery_to(receiver.url("/internal"))
        async with httpx.AsyncClient() as client:
            refused = await DeliverySender(service, TargetPolicy()).attempt(
                client, endpoint, delivery
            )
            assert refused.status is DeliveryStatus.FAILED  # final: not retried
            assert refused.error is not None and "127.0.0.1, not a public address" in refused.error
            assert receiver.on("/internal") == []
            allowed = await DeliverySender(service, TargetPolicy(allow_private=True)).attempt(
                client, endpoint, delivery
            )
        assert allowed.status is DeliveryStatus.SUCCEEDED and allowed.status_code == 204
        (request,) = receiver.on("/internal")
        assert verify(endpoint.secret, request) and request.body == b'{"id":7}'


class _NoStore:
    """`attempt` never touches the store; anything else would fail loudly here."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the store was used: {name}")


def test_the_setting_is_off_unless_given() -> None:
    from carcloud.config import load_settings
    from carcloud.errors import ConfigError

    assert load_settings(environ={}).webhook_allow_private is False
    on = load_settings(environ={"CARCLOUD_WEBHOOK_ALLOW_PRIVATE": "1"})
    assert on.webhook_allow_private is True and "webhook_allow_private=True" in repr(on)
    assert load_settings({"webhook_allow_private": "no"}, environ={}).webhook_allow_private is False
    with pytest.raises(ConfigError, match="CARCLOUD_WEBHOOK_ALLOW_PRIVATE='maybe'"):
        load_settings(environ={"CARCLOUD_WEBHOOK_ALLOW_PRIVATE": "maybe"})
