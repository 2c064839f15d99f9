"""Benchmark the pattern engine; prints one JSON line of figures.

Two measurements, each against a baseline taken in the same run:

* single-pattern matching throughput (matches/s) on a realistic mix of EventBridge-shaped
  events (~0.5-1 KB: orders, EC2 state change, S3 object created) and patterns (exact, prefix,
  suffix, numeric, anything-but, exists, wildcard, cidr, arrays of objects, $or), against
  moto's ``EventPattern`` on the cases both accept as valid;
* ``PatternSet`` cost per event (us) with 10, 100 and 1,000 distinct subscriber patterns over
  the same fields, against testing each ``Pattern`` in turn.

Every loop is bounded by a count and a time budget; the whole run takes well under a minute.

    .venv/bin/python bench/patterns.py
"""

from __future__ import annotations

import copy
import json
import platform
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hookcli.patterns import InvalidPatternError, Pattern, PatternSet, compile_pattern

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "patterns"


def load_events() -> list[dict[str, Any]]:
    """The example events plus variants that patterns should reject."""
    order = json.loads((EXAMPLES / "order-placed.json").read_text())
    ec2 = json.loads((EXAMPLES / "ec2-instance-stopped.json").read_text())
    s3 = json.loads((EXAMPLES / "s3-object-created.json").read_text())
    small = copy.deepcopy(order)
    small["detail"].update(orderId="o-1043", total=18.5, status="cancelled", sourceIp="85.2.1.9")
    small["detail"]["customer"].update(id="c-99", tier="basic")
    small["detail"]["items"] = [{"sku": "BOOK-0099", "quantity": 1, "price": 18.5}]
    running = copy.deepcopy(ec2)
    running["detail"]["state"] = "running"
    jpeg = copy.deepcopy(s3)
    jpeg["detail"]["object"]["key"] = "avatars/c-18/photo.jpg"
    return [order, small, ec2, running, s3, jpeg]


PATTERNS: list[dict[str, Any]] = [
    *(
        json.loads(path.read_text())
        for path in sorted(EXAMPLES.glob("*.pattern.json"))
        if path.name != "internal-orders-without-coupon.pattern.json"  # null-or-missing $or
    ),
    {"source": ["shop.orders"], "detail-type": ["Order Placed"]},
    {"source": [{"prefix": "aws."}], "detail": {"state": [{"anything-but": ["running"]}]}},
    {"detail": {"total": [{"numeric": [">", 50, "<=", 500]}], "currency": ["EUR"]}},
    {"detail": {"coupon": [{"exists": True}], "channel": ["web", "app"]}},
    {"detail": {"error": [{"exists": False}], "status": ["placed"]}},
    {"resources": [{"wildcard": "arn:aws:*:eu-*:*"}]},
    {"detail": {"sourceIp": [{"cidr": "10.0.0.0/8"}]}},
    {"detail": {"object": {"key": [{"wildcard": "avatars/*/*.png"}]}}},
    {"region": [{"anything-but": {"prefix": "us-"}}], "detail-type": [{"suffix": "Created"}]},
    {"$or": [{"detail": {"status": ["cancelled"]}}, {"detail": {"customer": {"tier": ["gold"]}}}]},
]


def timed(calls: Callable[[], int], budget: float, rounds: int) -> list[float]:
    """Seconds per call of ``calls`` (which returns how many calls it made), per round."""
    per_call = []
    deadline = time.perf_counter() + budget
    for _ in range(rounds):
        start = time.perf_counter()
        made = calls()
        per_call.append((time.perf_counter() - start) / made)
        if time.perf_counter() > deadline:
            break
    return per_call


def single_pattern(events: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    """Matches/s of hook's Pattern vs moto's EventPattern on every (pattern, event) pair."""
    from moto.events.models import EventPattern

    cases: list[tuple[Pattern, Any, dict[str, Any]]] = []
    agree = 0
    for raw in PATTERNS:
        text = json.dumps(raw)
        try:
            ours = compile_pattern(text)
            theirs = EventPattern.load(text)
        except (InvalidPatternError, Exception):  # noqa: BLE001 - moto raises its own types
            continue
        for event in events:
            cases.append((ours, theirs, event))
            agree += ours.matches(event) is theirs.matches_event(event)

    def hook_round(repeat: int = 200) -> int:
        for _ in range(repeat):
            for pattern, _, event in cases:
                pattern.matches(event)
        return repeat * len(cases)

    def moto_round(repeat: int = 10) -> int:
        for _ in range(repeat):
            for _, pattern, event in cases:
                pattern.matches_event(event)
        return repeat * len(cases)

    hook_times: list[float] = []
    moto_times: list[float] = []
    deadline = time.perf_counter() + budget
    while time.perf_counter() < deadline and len(hook_times) < 200:  # interleave: share noise
        hook_times += timed(hook_round, budget=0, rounds=1)
        moto_times += timed(moto_round, budget=0, rounds=1)
    hook_rate = 1 / statistics.median(hook_times)
    moto_rate = 1 / statistics.median(moto_times)
    return {
        "patterns": len({id(case[0]) for case in cases}),
        "cases": len(cases),
        "verdicts_agree_with_moto": agree,
        "hook_matches_per_s": round(hook_rate),
        "moto_matches_per_s": round(moto_rate),
        "speedup_vs_moto": round(hook_rate / moto_rate, 1),
    }


def subscriber_pattern(i: int) -> dict[str, Any]:
    """Listener i's subscription: its own customer, plus a detail-type, prefix or numeric."""
    customer = f"c-{i:05d}"
    kind = i % 4
    if kind == 0:
        return {"source": ["shop.orders"], "detail": {"customer": {"id": [customer]}}}
    if kind == 1:
        return {
            "source": ["shop.orders"],
            "detail-type": ["Order Placed", "Order Shipped"],
            "detail": {"customer": {"id": [customer]}},
        }
    if kind == 2:
        return {
            "source": ["shop.orders"],
            "detail": {"customer": {"id": [{"prefix": customer + "-"}]}},
        }
    return {
        "source": ["shop.orders"],
        "detail": {"customer": {"id": [customer]}, "total": [{"numeric": [">", 100]}]},
    }


def subscriber_events(base: dict[str, Any], count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Order events for customers of the largest population (so most events reach someone)."""
    rng = random.Random(seed)
    events = []
    for _ in range(count):
        event = copy.deepcopy(base)
        i = rng.randrange(1000)
        suffix = "-eu" if i % 4 == 2 else ""
        event["detail"]["customer"]["id"] = f"c-{i:05d}{suffix}"
        event["detail"]["total"] = rng.choice([18.5, 117.9, 250.0])
        event["detail-type"] = rng.choice(["Order Placed", "Order Shipped", "Order Cancelled"])
        events.append(event)
    return events


def pattern_set(base: dict[str, Any], budget_per_size: float) -> dict[str, Any]:
    """PatternSet us/event at 10, 100, 1,000 subscribers, and testing each Pattern in turn."""
    events = subscriber_events(base, 500)
    indexed: dict[str, float] = {}
    naive: dict[str, float] = {}
    delivered: dict[str, int] = {}
    for size in (10, 100, 1000):
        patterns = PatternSet()
        compiled = [compile_pattern(subscriber_pattern(i)) for i in range(size)]
        for i, pattern in enumerate(compiled):
            patterns.add(f"listener-{i}", pattern)
        patterns.matches(events[0])  # plan the index outside the timing

        def indexed_round(patterns: PatternSet = patterns) -> int:
            for event in events:
                patterns.matches(event)
            return len(events)

        def naive_round(compiled: list[Pattern] = compiled) -> int:
            for event in events:
                for pattern in compiled:
                    pattern.matches(event)
            return len(events)

        delivered[str(size)] = sum(len(patterns.matches(event)) for event in events)
        indexed[str(size)] = min(timed(indexed_round, budget_per_size / 2, rounds=20)) * 1e6
        naive[str(size)] = min(timed(naive_round, budget_per_size / 2, rounds=20)) * 1e6
    return {
        "us_per_event": {size: round(cost, 2) for size, cost in indexed.items()},
        "cost_ratio_1000_vs_10": round(indexed["1000"] / indexed["10"], 2),
        "baseline_each_pattern_us_per_event": {size: round(c, 2) for size, c in naive.items()},
        "speedup_vs_baseline_at_1000": round(naive["1000"] / indexed["1000"], 1),
        "deliveries_per_500_events": delivered,
    }


def main() -> None:
    started = time.perf_counter()
    events = load_events()
    result = {
        "bench": "patterns",
        "python": platform.python_version(),
        "event_bytes": [len(json.dumps(event)) for event in events],
        "single_pattern": single_pattern(events, budget=20.0),
        "pattern_set": pattern_set(events[0], budget_per_size=8.0),
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
