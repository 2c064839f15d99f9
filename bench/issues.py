"""How long ``GET /v1/issues`` takes to group failures on a full store (issue 10).

Seeds a store with ``Store.append`` (100,000 events, the default retention count), each
delivered to two listeners, and ``FAILURES`` of them failed for one listener under a few causes
(error texts whose second lines differ, as real ones do: grouping must look at the first line
only); a tenth of the failures are then answered by successful replays. Times, median of ``ROUNDS``:

- ``list_ms``: ``Store.failure_counts`` + ``failures.group_failures`` (what ``GET /v1/issues``
  computes), against ``failed_ms``: the existing ``Store.failed`` list of failed events (what
  ``hook replay --failed`` reads), the baseline measured in the same run;
- ``detail_ms``: the biggest group's first page of 100 events (``GET /v1/issues/{key}``).

Prints one JSON line. Run: ``.venv/bin/python bench/issues.py`` (~30 s, most of it seeding).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hookcli.events import Event, EventId
from hookcli.failures import group_failures, group_members
from hookcli.relay.store import Delivery, Store

EVENTS = 100_000
FAILURES = 3_000
ROUNDS = 15
BATCH = 1_000
TARGET = "http://127.0.0.1:3000/"
CAUSES = [
    (500, "500 Internal Server Error: KeyError 'customer'"),
    (502, "502 Bad Gateway"),
    (None, "connection refused"),
    (422, "invalid signature"),
]


def seed(store: Store) -> None:
    """EVENTS events, two listeners' deliveries, FAILURES failures, a tenth answered by replays."""
    failing_every = EVENTS // FAILURES
    now = time.time()
    for start in range(0, EVENTS, BATCH):
        events = [
            Event(
                id=EventId(f"evt-{n:08d}"),
                source="shop.orders",
                detail_type="OrderPlaced",
                detail={"n": n, "customer": f"c-{n % 100}"},
            )
            for n in range(start, start + BATCH)
        ]
        stored = store.append(events, received=now - EVENTS + start)
        deliveries = []
        for item in stored:
            n = item.seq - 1
            deliveries.append(_delivery("bob", item.seq, item.event_id, True, None, now))
            failed = n % failing_every == 0 and n // failing_every < FAILURES
            code, error = CAUSES[(n // failing_every) % len(CAUSES)]
            deliveries.append(
                _delivery(
                    "alice",
                    item.seq,
                    item.event_id,
                    not failed,
                    (code, f"{error}\nrequest {n}") if failed else None,
                    now - EVENTS + n,
                )
            )
            if failed and n % (failing_every * 10) == 0:
                # A successful replay answers this failure: it must leave its group.
                deliveries.append(_delivery("alice", item.seq, item.event_id, True, None, now))
        store.record(deliveries)


def _delivery(
    listener: str,
    seq: int,
    event_id: str,
    delivered: bool,
    failure: tuple[int | None, str] | None,
    at: float,
) -> Delivery:
    code, error = failure if failure else (200, None)
    return Delivery(
        listener=listener,
        seq=seq,
        event_id=event_id,
        status="delivered" if delivered else "failed",
        attempt=1,
        latency_ms=1.0,
        code=code,
        error=error,
        at=at,
        replay=False,
        target=TARGET,
    )


def median_ms(action: object) -> float:
    """Median wall time of ``action()`` over ROUNDS runs, in milliseconds."""
    assert callable(action)
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hook-bench-issues-") as tmp:
        with Store(Path(tmp) / "store.db", max_age=None, max_count=None) as store:
            seeding = time.perf_counter()
            seed(store)
            seeded_s = time.perf_counter() - seeding
            groups = group_failures(store.failure_counts())
            counts = store.failure_counts()
            biggest = max(groups, key=lambda g: g.count)
            (cause,) = group_members(counts, biggest.key)
            list_ms = median_ms(lambda: group_failures(store.failure_counts()))
            failed_ms = median_ms(lambda: store.failed(limit=FAILURES * 2))
            detail_ms = median_ms(lambda: store.failures_with(cause, limit=100))
            stats = store.stats()
    print(
        json.dumps(
            {
                "bench": "issues",
                "events": stats["events"],
                "deliveries": stats["deliveries"],
                "failures": sum(g.count for g in groups),
                "groups": len(groups),
                "rows": len(counts),
                "list_ms": list_ms,
                "failed_ms": failed_ms,
                "detail_ms": detail_ms,
                "seed_s": round(seeded_s, 1),
                "python": sys.version.split()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
