"""The producer tested end to end with hook's pytest plugin (installed with hookcli): its events
go through an emulated EventBridge bus, rule and queue to an embedded relay, and the test waits
for them with ``hook_events.expect``. Run: ``pytest examples/producer``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from producer import place_order

from hookcli.testing import HookEvents, HookRelay


@pytest.fixture(autouse=True)
def aws_env(hook_relay: HookRelay, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point boto3 (in the code under test) at the relay's emulated bus."""
    for key, value in hook_relay.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield


def test_placing_an_order_emits_order_placed(hook_events: HookEvents) -> None:
    """The event carries the order, as a consumer's rule would see it."""
    event_id = place_order("o-1", 42.5, ["book"])
    [event] = hook_events.expect({"source": ["shop.orders"], "detail-type": ["OrderPlaced"]})
    assert event["id"] == event_id
    assert event["detail"] == {"order_id": "o-1", "total": 42.5, "items": ["book"]}


def test_a_large_order_also_requests_a_fraud_check(hook_events: HookEvents) -> None:
    """Two events; patterns are EventBridge's, so a numeric range works as in a real rule."""
    place_order("o-2", 1500, ["piano"])
    placed, check = hook_events.expect({"detail": {"order_id": ["o-2"]}}, count=2)
    assert [placed["detail-type"], check["detail-type"]] == ["OrderPlaced", "FraudCheckRequested"]
    [big] = hook_events.expect({"detail": {"total": [{"numeric": [">=", 1000]}]}})
    assert big["id"] == placed["id"]


def test_each_test_sees_only_its_own_events(hook_events: HookEvents) -> None:
    """The fraud check of the test before does not count here: events are counted from the
    test's start, including those put before ``expect`` is called."""
    place_order("o-3", 2000, ["car"])
    [check] = hook_events.expect({"detail-type": ["FraudCheckRequested"]})
    assert check["detail"]["order_id"] == "o-3"
