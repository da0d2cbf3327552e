"""WebhookStore contract: endpoints scoped by brand, one delivery per endpoint and event,
leased claims that isolate endpoints, outcomes, listing and redelivery."""

from __future__ import annotations

import pytest

from carcloud.errors import NotFoundError
from carcloud.storage import Stores
from carcloud.timeutil import now_us
from carcloud.webhooks.models import (
    Delivery,
    DeliveryStatus,
    Outcome,
    WebhookEndpoint,
    new_delivery_id,
    new_secret,
)
from tests.storage.conftest import SECOND

DAY = 86_400 * SECOND


def endpoint(endpoint_id: str, brand: str | None, created_at: int = 1) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=endpoint_id,
        brand=brand,
        url=f"https://hooks.example.com/{endpoint_id}",
        event_types=("trip.completed", "vehicle"),
        vins=(),
        description=f"hook {endpoint_id}",
        secret=new_secret(),
        created_at=created_at,
    )


def delivery(endpoint_id: str, event_id: int, due: int) -> Delivery:
    return Delivery(
        id=new_delivery_id(),
        endpoint_id=endpoint_id,
        event_id=event_id,
        event_type="vehicle.online",
        payload=f'{{"id": {event_id}}}',
        status=DeliveryStatus.PENDING,
        attempts=0,
        created_at=due,
        next_attempt_at=due,
        retry_until=due + DAY,
    )


@pytest.fixture
async def hooks(stores: Stores) -> Stores:
    """Endpoints: volta's `a` and `b`, nova's `n`, and the operator's `all` (every brand)."""
    await stores.registry.create_brand("nova", "Nova")
    for item in (endpoint("a", "volta", 1), endpoint("b", "volta", 2), endpoint("n", "nova", 3),
                 endpoint("all", None, 4)):  # fmt: skip
        await stores.webhooks.create_endpoint(item)
    return stores


async def test_endpoints_are_scoped_by_brand(hooks: Stores) -> None:
    store = hooks.webhooks
    assert [e.id for e in await store.list_endpoints(None)] == ["a", "b", "n", "all"]
    assert [e.id for e in await store.list_endpoints("volta")] == ["a", "b"]
    assert [e.id for e in await store.list_endpoints("nova")] == ["n"]
    stored = await store.get_endpoint("a", "volta")
    assert stored.url == "https://hooks.example.com/a" and stored.brand == "volta"
    assert stored.event_types == ("trip.completed", "vehicle")
    assert stored.secret.startswith("whsec_")
    assert (await store.get_endpoint("all", None)).brand is None
    with pytest.raises(NotFoundError):
        await store.get_endpoint("a", "nova")  # another brand's: not there for it
    with pytest.raises(NotFoundError):
        await store.get_endpoint("all", "volta")  # an operator's: not a brand's
    with pytest.raises(NotFoundError):
        await store.delete_endpoint("a", "nova")
    with pytest.raises(NotFoundError, match="brand 'ghost'"):
        await store.create_endpoint(endpoint("g", "ghost"))


async def test_one_delivery_per_endpoint_and_event(hooks: Stores) -> None:
    store = hooks.webhooks
    first = [delivery("a", 10, 5), delivery("b", 10, 5)]
    assert await store.add_deliveries(first) == 2
    # The same events read again (a redelivered stream message): nothing new, first ids kept.
    assert await store.add_deliveries([delivery("a", 10, 5), delivery("a", 11, 5)]) == 1
    listed = await store.list_deliveries("a", "volta")
    assert [(d.event_id, d.id) for d in listed] == [(11, listed[0].id), (10, first[0].id)]
    # An endpoint deleted meanwhile takes none.
    assert await store.add_deliveries([delivery("gone", 12, 5)]) == 0
    assert await store.add_deliveries([]) == 0


async def test_claims_lease_and_isolate_endpoints(hooks: Stores) -> None:
    store = hooks.webhooks
    await store.add_deliveries(
        [delivery("a", event, 100 + event) for event in range(1, 6)]
        + [delivery("b", 1, 100), delivery("n", 1, 100), delivery("n", 2, 10_000)]
    )
    claimed = await store.claim_due(now=1_000, lease_until=5_000, limit=50, per_endpoint=2)
    by_endpoint = sorted((d.endpoint_id, d.event_id) for d in claimed)
    # At most two of a: the oldest due; n's second is not due yet.
    assert by_endpoint == [("a", 1), ("a", 2), ("b", 1), ("n", 1)]
    assert all(d.next_attempt_at == 5_000 for d in claimed)
    # Leased: not claimed again before the lease ends, by this or another sender.
    again = await store.claim_due(now=2_000, lease_until=6_000, limit=50, per_endpoint=2)
    assert sorted((d.endpoint_id, d.event_id) for d in again) == [("a", 3), ("a", 4)]
    # A busy endpoint is skipped; the limit holds.
    rest = await store.claim_due(3_000, 7_000, limit=50, per_endpoint=8, skip_endpoints=["a"])
    assert rest == []
    one = await store.claim_due(3_000, 7_000, limit=1, per_endpoint=8)
    assert [(d.endpoint_id, d.event_id) for d in one] == [("a", 5)]
    # The first lease ended (a sender died): due again, with the same ids.
    expired = await store.claim_due(5_000, 9_000, limit=50, per_endpoint=8)
    assert {d.id for d in expired} == {d.id for d in claimed}


async def test_outcomes_and_status_filter(hooks: Stores) -> None:
    store = hooks.webhooks
    queued = [delivery("a", 1, 100), delivery("a", 2, 100), delivery("a", 3, 100)]
    await store.add_deliveries(queued)
    await store.claim_due(200, 300, 10, 10)
    ok = Outcome(DeliveryStatus.SUCCEEDED, 1, 250, None, 204, None)
    retry = Outcome(DeliveryStatus.PENDING, 1, 250, 9_000, 500, "answered HTTP 500")
    failed = Outcome(DeliveryStatus.FAILED, 7, 260, None, None, "no answer in 10.0 s")
    await store.record_outcome(queued[0].id, ok)
    await store.record_outcome(queued[1].id, retry)
    await store.record_outcome(queued[2].id, failed)
    await store.record_outcome("msg_gone", ok)  # deleted meanwhile: ignored
    found = {d.event_id: d for d in await store.list_deliveries("a", None)}
    assert (found[1].status, found[1].attempts, found[1].last_status_code) == (
        DeliveryStatus.SUCCEEDED, 1, 204)  # fmt: skip
    assert found[1].completed_at == 250 and found[1].last_attempt_at == 250
    assert (found[2].status, found[2].next_attempt_at, found[2].last_error) == (
        DeliveryStatus.PENDING, 9_000, "answered HTTP 500")  # fmt: skip
    assert found[2].completed_at is None
    assert (found[3].status, found[3].attempts, found[3].completed_at) == (
        DeliveryStatus.FAILED, 7, 260)  # fmt: skip
    # Only a pending delivery that is due is claimed.
    assert await store.claim_due(8_999, 10_000, 10, 10) == []
    assert [d.event_id for d in await store.claim_due(9_000, 10_000, 10, 10)] == [2]
    failed_only = await store.list_deliveries("a", "volta", DeliveryStatus.FAILED)
    assert [d.event_id for d in failed_only] == [3]
    assert [d.event_id for d in await store.list_deliveries("a", None, before=3, limit=1)] == [2]
    with pytest.raises(NotFoundError):
        await store.list_deliveries("a", "nova")


async def test_redeliver_keeps_id_and_body(hooks: Stores) -> None:
    store = hooks.webhooks
    original = delivery("a", 1, 100)
    await store.add_deliveries([original])
    await store.claim_due(200, 300, 10, 10)
    await store.record_outcome(
        original.id, Outcome(DeliveryStatus.FAILED, 9, 400, None, 500, "answered HTTP 500")
    )
    now = now_us()
    again = await store.redeliver("a", original.id, "volta", now, now + DAY)
    assert (again.id, again.payload, again.status) == (
        original.id, original.payload, DeliveryStatus.PENDING)  # fmt: skip
    assert (again.attempts, again.next_attempt_at, again.completed_at) == (0, now, None)
    assert again.retry_until == now + DAY and again.last_status_code == 500
    assert [d.id for d in await store.claim_due(now, now + 1, 10, 10)] == [original.id]
    with pytest.raises(NotFoundError):
        await store.redeliver("a", original.id, "nova", now, now)
    with pytest.raises(NotFoundError):
        await store.redeliver("b", original.id, None, now, now)  # not b's delivery


async def test_deleting_an_endpoint_removes_its_deliveries(hooks: Stores) -> None:
    store = hooks.webhooks
    await store.add_deliveries([delivery("a", 1, 100), delivery("b", 1, 100)])
    await store.delete_endpoint("a", "volta")
    assert [e.id for e in await store.list_endpoints("volta")] == ["b"]
    assert [d.endpoint_id for d in await store.claim_due(200, 300, 10, 10)] == ["b"]
    with pytest.raises(NotFoundError):
        await store.list_deliveries("a", None)


async def test_prune_forgets_finished_deliveries_only(hooks: Stores) -> None:
    store = hooks.webhooks
    queued = [delivery("a", event, 100) for event in range(1, 6)]
    await store.add_deliveries(queued)
    await store.claim_due(200, 300, 10, 10)
    outcomes = [
        Outcome(DeliveryStatus.SUCCEEDED, 1, 1_000, None, 200, None),  # old success
        Outcome(DeliveryStatus.SUCCEEDED, 1, 5_000, None, 200, None),  # recent success
        Outcome(DeliveryStatus.FAILED, 9, 1_000, None, 500, "x"),  # old failure
        Outcome(DeliveryStatus.FAILED, 9, 3_000, None, 500, "x"),  # failure kept longer
        Outcome(DeliveryStatus.PENDING, 3, 1_000, 9_000, 500, "x"),  # still retried
    ]
    for item, outcome in zip(queued, outcomes, strict=True):
        await store.record_outcome(item.id, outcome)
    assert await store.prune(succeeded_before=2_000, failed_before=2_000) == 2
    assert sorted(d.event_id for d in await store.list_deliveries("a", None)) == [2, 4, 5]
