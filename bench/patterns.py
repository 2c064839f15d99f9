"""Benchmark the pattern engine; prints one JSON line of figures.

Every figure is process CPU time (``time.process_time``: it moves least with the load of a
shared machine), measured against a baseline taken in the same run:

* single-pattern matching throughput (matches/s) on a realistic mix of EventBridge-shaped
  events (~0.5-1 KB: orders, EC2 state change, S3 object created) and patterns (exact, prefix,
  suffix, numeric, anything-but, exists, wildcard, cidr, arrays of objects, $or), against
  moto's ``EventPattern`` on the cases both accept as valid;
* ``PatternSet`` cost per event (us) with 10, 100 and 1,000 patterns of three families, against
  testing each ``Pattern`` in turn, in alternating rounds (median):
  - ``subscribers``: one customer id each (exact or prefix), plus detail-type or numeric;
  - ``keyed`` (issue 12's first family): source (4 values), a unique or a shared detail-type,
    ``detail.amount`` numeric > k and ``detail.customer.country`` (4 values);
  - ``generated`` (issue 12's second): seeded patterns of 2-3 fields rich in wildcard,
    equals-ignore-case, prefix/suffix (also ignore-case), anything-but (values, prefix,
    wildcard), numeric and $or, on small events; each family checks PatternSet.matches
    against Pattern.matches on every event before timing it;
  and, per family at 1,000 patterns, the memory of the index and of the compiled patterns
  (tracemalloc), the time to add them all, the first match after (which finishes the index),
  and one add + match + remove + match cycle, as the relay does on subscribe/unsubscribe.

``goal_met`` reports issue 12's goals: 1,000 patterns cost at most 5x 10 patterns in every
family, and the generated family at 1,000 stays within 500 us (3x event-ruler's 140-176 us,
measured by the issue's author; Maven Central is out of reach here, so it is a constant).
Every loop is bounded by a count and a time budget; the whole run takes about a minute.

    .venv/bin/python bench/patterns.py
"""

from __future__ import annotations

import copy
import json
import platform
import random
import statistics
import time
import tracemalloc
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
    """CPU seconds per call of ``calls`` (which returns how many calls it made), per round.

    Process CPU time, not wall time: on a shared machine it moves least with the others' load.
    """
    per_call = []
    deadline = time.perf_counter() + budget
    for _ in range(rounds):
        start = time.process_time()
        made = calls()
        per_call.append((time.process_time() - start) / made)
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


# The two families, beside the subscribers above. ------------------------------------

SOURCES = ["shop.orders", "shop.payments", "shop.shipping", "shop.returns"]
COUNTRIES = ["DE", "FR", "NL", "US"]


def keyed_pattern(i: int) -> dict[str, Any]:
    """Pattern i of the issue's first family: source (4 values), a unique detail-type (odd i)
    or a shared one (even i), detail.amount numeric > k, detail.customer.country (4 values)."""
    return {
        "source": [SOURCES[i % 4]],
        "detail-type": ["Order Placed" if i % 2 == 0 else f"Order Type {i}"],
        "detail": {
            "amount": [{"numeric": [">", (i * 37) % 1000]}],
            "customer": {"country": [COUNTRIES[(i // 4) % 4]]},
        },
    }


def keyed_events(count: int, seed: int = 11) -> list[dict[str, Any]]:
    """Events for the first family: half with the shared detail-type, half with a unique one."""
    rng = random.Random(seed)
    return [
        {
            "version": "0",
            "id": f"e-{n}",
            "source": rng.choice(SOURCES),
            "detail-type": "Order Placed"
            if rng.random() < 0.5
            else f"Order Type {rng.randrange(1000)}",
            "account": "123456789012",
            "time": "2026-12-02T00:00:00Z",
            "region": "eu-west-1",
            "resources": [],
            "detail": {
                "orderId": f"o-{n}",
                "amount": round(rng.uniform(0, 1000), 2),
                "customer": {"id": f"c-{rng.randrange(10_000)}", "country": rng.choice(COUNTRIES)},
            },
        }
        for n in range(count)
    ]


WORDS = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
]  # fmt: skip
STRING_FIELDS = {
    "source": [f"{w}.{kind}" for w in WORDS[:8] for kind in ("orders", "billing")],
    "detail-type": [f"{a.title()} {b.title()}" for a in WORDS[:5] for b in ("Created", "Deleted")],
    "region": ["eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-south-1"],
    "detail.state": ["pending", "running", "stopping", "stopped", "terminated"],
    "detail.user.name": WORDS,
    "detail.bucket": [f"{w}-logs" for w in WORDS[:10]],
    "detail.key": [
        f"{d}/{w}.{x}" for d in ("img", "doc") for w in WORDS[:5] for x in ("png", "pdf")
    ],
}
NUMBER_FIELDS = {"detail.count": (0, 100), "detail.price": (0.0, 500.0)}


def generated_item(rng: random.Random, field: str) -> Any:
    """One value-list item for ``field``, drawn from the operators the issue names."""
    if field in NUMBER_FIELDS:
        low, high = NUMBER_FIELDS[field]
        a, b = sorted(round(rng.uniform(low, high), 1) for _ in range(2))
        return rng.choice(
            [
                {"numeric": [">", a]},
                {"numeric": ["<=", b]},
                {"numeric": [">=", a, "<", b + 1]},
                {"anything-but": [round(a), round(b)]},
                round(a),
            ]
        )
    value: str = rng.choice(STRING_FIELDS[field])
    # Literals keep more than half of the value, so they pick out values as real rules do.
    size = rng.randrange(len(value) // 2 + 1, len(value))
    head, tail, star = value[:size], value[-size:], rng.randrange(1, len(value) - 1)
    kind = rng.randrange(12)
    return [
        value,
        {"wildcard": head + "*"},
        {"wildcard": "*" + tail},
        {"wildcard": value[:star] + "*" + value[star + 1 :]},
        {"wildcard": "*" + value[1:-1] + "*"},
        {"equals-ignore-case": value.upper()},
        {"prefix": head},
        {"suffix": tail},
        {"prefix": {"equals-ignore-case": head.upper()}},
        {"anything-but": rng.sample(STRING_FIELDS[field], 2)},
        {"anything-but": {"prefix": head}},
        {"anything-but": {"wildcard": "*" + tail}},
    ][kind]


def nest_fields(fields: dict[str, list[Any]]) -> dict[str, Any]:
    pattern: dict[str, Any] = {}
    for path, values in fields.items():
        *parents, last = path.split(".")
        node = pattern
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = values
    return pattern


def generated_pattern(rng: random.Random) -> dict[str, Any]:
    """A seeded pattern of 2-3 fields (1-2 items each); one in four is 1-2 fields AND an $or
    of two alternatives of 1-2 fields each."""
    fields = [*STRING_FIELDS, *NUMBER_FIELDS]

    def some_fields(least: int, most: int) -> dict[str, list[Any]]:
        chosen = rng.sample(fields, rng.randint(least, most))
        return {f: [generated_item(rng, f) for _ in range(rng.randint(1, 2))] for f in chosen}

    if rng.random() < 0.25:
        base = some_fields(1, 2)
        alternatives = [some_fields(1, 2), some_fields(1, 2)]
        for alternative in alternatives:
            for path in base:
                alternative.pop(path, None)  # keep each alternative's fields its own
        alternatives = [a or {"detail.count": [{"numeric": [">", 50]}]} for a in alternatives]
        return {**nest_fields(base), "$or": [nest_fields(a) for a in alternatives]}
    return nest_fields(some_fields(2, 3))


def generated_events(count: int, seed: int = 13) -> list[dict[str, Any]]:
    """Small events (~400 bytes) drawing every field from the patterns' vocabulary; the object
    key is unique to each event (``img/alpha-17.png``), as S3 keys are."""
    rng = random.Random(seed)
    events = []
    for n in range(count):
        stem, extension = rng.choice(STRING_FIELDS["detail.key"]).rsplit(".", 1)
        detail: dict[str, Any] = {
            "state": rng.choice(STRING_FIELDS["detail.state"]),
            "user": {"name": rng.choice(WORDS), "id": n},
            "bucket": rng.choice(STRING_FIELDS["detail.bucket"]),
            "key": f"{stem}-{n}.{extension}",
            "count": rng.randrange(100),
            "price": round(rng.uniform(0, 500), 2),
        }
        events.append(
            {
                "version": "0",
                "id": f"e-{n}",
                "source": rng.choice(STRING_FIELDS["source"]),
                "detail-type": rng.choice(STRING_FIELDS["detail-type"]),
                "account": "123456789012",
                "time": "2026-12-02T00:00:00Z",
                "region": rng.choice(STRING_FIELDS["region"]),
                "resources": [],
                "detail": detail,
            }
        )
    return events


def generated_patterns(count: int, seed: int = 17) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [generated_pattern(rng) for _ in range(count)]


def family_cost(
    patterns: list[dict[str, Any]], events: list[dict[str, Any]], budget: float
) -> dict[str, Any]:
    """PatternSet us/event at 10, 100, 1,000 of ``patterns`` vs testing each Pattern in turn.

    Each round times every size, indexed and one by one, so all of them share the machine's
    noise (the 1,000/10 ratio above all); the figure is the median of the rounds.
    """
    rounds: list[tuple[str, Callable[[], int], Callable[[], int]]] = []
    delivered: dict[str, float] = {}
    for size in SIZES:
        compiled = [compile_pattern(pattern) for pattern in patterns[:size]]
        pattern_set = PatternSet()
        for i, pattern in enumerate(compiled):
            pattern_set.add(f"p{i}", pattern)
        matched = [pattern_set.matches(event) for event in events]  # builds the index
        expected = [{f"p{i}" for i, p in enumerate(compiled) if p.matches(e)} for e in events]
        assert matched == expected, "PatternSet disagrees with Pattern.matches"
        delivered[str(size)] = round(sum(map(len, matched)) / len(events), 1)
        naive_events = events[: max(20, len(events) * 10 // size)]

        def indexed_round(pattern_set: PatternSet = pattern_set) -> int:
            for event in events:
                pattern_set.matches(event)
            return len(events)

        def naive_round(compiled: list[Pattern] = compiled, sample: Any = naive_events) -> int:
            for event in sample:
                for pattern in compiled:
                    pattern.matches(event)
            return len(sample)

        rounds.append((str(size), indexed_round, naive_round))
    fast: dict[str, list[float]] = {size: [] for size, _, _ in rounds}
    slow: dict[str, list[float]] = {size: [] for size, _, _ in rounds}
    deadline = time.perf_counter() + budget
    while len(fast["10"]) < 5 or (time.perf_counter() < deadline and len(fast["10"]) < 40):
        for size, indexed_round, naive_round in rounds:
            fast[size] += timed(indexed_round, budget=0, rounds=1)
            slow[size] += timed(naive_round, budget=0, rounds=1)
    indexed = {size: statistics.median(times) * 1e6 for size, times in fast.items()}
    naive = {size: statistics.median(times) * 1e6 for size, times in slow.items()}
    return {
        "us_per_event": {size: round(cost, 2) for size, cost in indexed.items()},
        "cost_ratio_1000_vs_10": round(indexed["1000"] / indexed["10"], 2),
        "baseline_each_pattern_us_per_event": {size: round(c, 2) for size, c in naive.items()},
        "speedup_vs_baseline_at_1000": round(naive["1000"] / indexed["1000"], 1),
        "matches_per_event": delivered,
    }


def upkeep(patterns: list[dict[str, Any]], events: list[dict[str, Any]]) -> dict[str, Any]:
    """What 1,000 patterns cost to hold and to change: memory (tracemalloc), adding them all,
    the first match after (which finishes the index), and one subscribe/unsubscribe cycle."""
    compiled = [compile_pattern(pattern) for pattern in patterns[:1000]]
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    pattern_set = PatternSet()
    for i, pattern in enumerate(compiled):
        pattern_set.add(f"p{i}", pattern)
    pattern_set.matches(events[0])
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    index_bytes = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    again = [compile_pattern(pattern) for pattern in patterns[:1000]]
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    compiled_bytes = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    del again
    adds: list[float] = []
    firsts: list[float] = []
    for _ in range(3):
        start = time.perf_counter()
        fresh = PatternSet()
        for i, pattern in enumerate(compiled):
            fresh.add(f"p{i}", pattern)
        middle = time.perf_counter()
        fresh.matches(events[0])
        firsts.append(time.perf_counter() - middle)
        adds.append(middle - start)
    extra = compile_pattern(patterns[-1])
    cycles: list[float] = []
    for n in range(200):
        event = events[n % len(events)]
        start = time.perf_counter()
        pattern_set.add("extra", extra)
        pattern_set.matches(event)
        pattern_set.remove("extra")
        pattern_set.matches(event)
        cycles.append(time.perf_counter() - start)
    return {
        "index_kib_per_1000_patterns": round(index_bytes / 1024),
        "compiled_patterns_kib_per_1000": round(compiled_bytes / 1024),
        "add_1000_ms": round(statistics.median(adds) * 1e3, 2),
        "first_match_after_adding_1000_ms": round(statistics.median(firsts) * 1e3, 2),
        "add_match_remove_match_at_1000_us": round(statistics.median(cycles) * 1e6, 1),
    }


SIZES = (10, 100, 1000)
EVENT_RULER_US_AT_1000 = {"low": 140, "high": 176}
"""The issue author's aws/event-ruler v2.0.1 figure (Java, JSON parse included) for 1,000
generated patterns on this machine; Maven Central is out of reach here, so it is a constant."""


def pattern_families(budget_per_family: float) -> dict[str, Any]:
    """The three families: each one's cost curve, upkeep and goals."""
    base = load_events()[0]
    families = {
        "subscribers": ([subscriber_pattern(i) for i in range(1000)], subscriber_events(base, 300)),
        "keyed": ([keyed_pattern(i) for i in range(1000)], keyed_events(300)),
        "generated": (generated_patterns(1000), generated_events(300)),
    }
    out: dict[str, Any] = {}
    for name, (patterns, events) in families.items():
        out[name] = family_cost(patterns, events, budget_per_family / 3)
        out[name]["upkeep"] = upkeep(patterns, events)
    ratio_ok = all(out[name]["cost_ratio_1000_vs_10"] <= 5 for name in families)
    generated_at_1000 = out["generated"]["us_per_event"]["1000"]
    out["event_ruler_reference_us_at_1000"] = EVENT_RULER_US_AT_1000
    out["generated_vs_event_ruler_at_1000"] = round(
        generated_at_1000 / EVENT_RULER_US_AT_1000["high"], 2
    )
    out["goal_met"] = {
        "ratio_1000_vs_10_at_most_5_every_family": ratio_ok,
        "generated_at_1000_at_most_500_us": generated_at_1000 <= 500,
    }
    return out


def main() -> None:
    started = time.perf_counter()
    events = load_events()
    result = {
        "bench": "patterns",
        "python": platform.python_version(),
        "event_bytes": [len(json.dumps(event)) for event in events],
        "single_pattern": single_pattern(events, budget=10.0),
        "pattern_set": pattern_families(budget_per_family=15.0),
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
