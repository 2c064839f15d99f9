"""The example patterns and events in examples/patterns/ (used by the README) stay true."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hookcli.patterns import PatternSet, compile_pattern

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "patterns"
EVENTS = sorted(path.name for path in EXAMPLES.glob("*.json") if ".pattern." not in path.name)
PATTERNS = sorted(path.name for path in EXAMPLES.glob("*.pattern.json"))

MATCHES = {
    "large-orders.pattern.json": {"order-placed.json"},
    "vip-customers.pattern.json": {"order-placed.json"},
    "gift-orders-to-eu.pattern.json": {"order-placed.json"},
    "internal-orders-without-coupon.pattern.json": {"order-placed.json"},
    "ec2-stopped.pattern.json": {"ec2-instance-stopped.json"},
    "png-uploads.pattern.json": {"s3-object-created.json"},
}


def load(name: str) -> dict[str, object]:
    data = json.loads((EXAMPLES / name).read_text())
    assert isinstance(data, dict)
    return data


def test_every_example_is_listed() -> None:
    """Each example pattern has its expected matches written down here."""
    assert set(PATTERNS) == set(MATCHES)
    assert "order-placed.json" in EVENTS


@pytest.mark.parametrize("pattern_name", PATTERNS)
@pytest.mark.parametrize("event_name", EVENTS)
def test_example_verdicts(pattern_name: str, event_name: str) -> None:
    """Each example pattern matches its own example event and no other."""
    pattern = compile_pattern((EXAMPLES / pattern_name).read_text())
    assert pattern.matches(load(event_name)) is (event_name in MATCHES[pattern_name])


@pytest.mark.parametrize("event_name", EVENTS)
def test_examples_as_one_set(event_name: str) -> None:
    """The examples as one PatternSet give the same verdicts as one by one."""
    patterns = PatternSet()
    for name in PATTERNS:
        patterns.add(name, (EXAMPLES / name).read_text())
    expected = {name for name, events in MATCHES.items() if event_name in events}
    assert patterns.matches(load(event_name)) == expected


@pytest.mark.parametrize("event_name", EVENTS)
def test_example_events_have_the_envelope(event_name: str) -> None:
    """Example events carry EventBridge's mandatory envelope fields (§1.1)."""
    event = load(event_name)
    assert {"id", "account", "source", "time", "region", "detail-type", "detail"} <= set(event)
