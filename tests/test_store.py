"""The relay's SQLite store, on real files under tmp_path."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hookcli.errors import StoreError, UsageError
from hookcli.events import Event, EventId, RawRequest
from hookcli.relay.store import (
    _MIGRATIONS,
    APPLICATION_ID,
    SCHEMA_VERSION,
    Delivery,
    Store,
    StoredEvent,
)

TIMEOUT = 30.0 * float(os.environ.get("HOOK_TEST_TIMEOUT_SCALE", "1"))
T0 = 1_700_000_000.0


def event(
    name: str, *, source: str = "app.orders", detail_type: str = "OrderPlaced", **detail: Any
) -> Event:
    return Event(
        id=EventId(name),
        source=source,
        detail_type=detail_type,
        detail={"name": name, **detail},
        account="123456789012",
        region="eu-west-1",
        time="2026-05-01T12:00:00Z",
        resources=("arn:aws:s3:::bucket",),
    )


def delivery(
    item: StoredEvent, listener: str = "alice", status: str = "delivered", **kw: Any
) -> Delivery:
    fields: dict[str, Any] = {
        "attempt": 1,
        "latency_ms": 1.5,
        "code": 200 if status == "delivered" else 500,
        "error": None if status == "delivered" else "HTTP 500",
        "at": T0,
        "replay": False,
    }
    fields.update(kw)
    return Delivery(listener, item.seq, item.event.id, status, **fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "relay" / "store.db") as opened:
        yield opened


def fill(store: Store, count: int, **kw: Any) -> list[StoredEvent]:
    """Append events e1..e<count>, one received per second from T0."""
    stored: list[StoredEvent] = []
    for n in range(1, count + 1):
        stored += store.append([event(f"e{n}", **kw)], received=T0 + n)
    return stored


def seqs(items: list[StoredEvent]) -> list[int]:
    return [item.seq for item in items]


def history_seqs(store: Store, **kw: Any) -> list[int]:
    return [item.seq for item, _ in store.history(**kw)]


# -------------------------------------------------------------------------- append and read


def test_append_assigns_seqs_from_one_in_order(store: Store) -> None:
    """A batch gets consecutive seqs starting at 1, in the order given."""
    stored = store.append([event("a"), event("b"), event("c")])
    assert [(s.seq, s.event.id) for s in stored] == [(1, "a"), (2, "b"), (3, "c")]
    assert store.head() == 3


def test_seqs_keep_increasing_across_batches(store: Store) -> None:
    """Later batches continue the sequence."""
    store.append([event("a"), event("b")])
    assert seqs(store.append([event("c")])) == [3]


@pytest.mark.parametrize(
    ("after", "limit", "expected"),
    [
        (0, 10, [1, 2, 3, 4, 5]),
        (0, 2, [1, 2]),
        (3, 10, [4, 5]),
        (5, 10, []),
        (0, 0, []),
        (0, -1, []),
    ],
)
def test_read_returns_seqs_after_in_order_up_to_limit(
    store: Store, after: int, limit: int, expected: list[int]
) -> None:
    """read(after, limit) is seq > after, ascending, at most limit."""
    fill(store, 5)
    assert seqs(store.read(after, limit)) == expected


def test_read_returns_what_append_returned(store: Store) -> None:
    """A read yields the same seq, JSON texts, received time and event as the append."""
    appended = store.append([event("a", amount=42)], received=T0)
    [read] = store.read(0, 10)
    assert read == appended[0]
    assert read.event == appended[0].event
    assert read.received == T0


def test_event_json_is_the_compact_event(store: Store) -> None:
    """event_json is Event.to_json(), ready to send without re-encoding."""
    original = event("a", text="caf\u00e9")
    [stored] = store.append([original])
    assert stored.event_json == original.to_json()
    assert store.read(0, 1)[0].event_json == original.to_json()


def test_empty_append_stores_nothing(store: Store) -> None:
    """Appending no events returns nothing and assigns no seq."""
    assert store.append([]) == []
    assert store.head() == 0


@pytest.mark.parametrize(
    ("batches", "new_ids", "head"),
    [
        pytest.param([["a", "a", "b"]], [["a", "b"]], 2, id="same-batch"),
        pytest.param([["a", "b"], ["b", "c", "a"]], [["a", "b"], ["c"]], 3, id="across-batches"),
        pytest.param([["a"], ["a"], ["a"]], [["a"], [], []], 1, id="redelivered"),
    ],
)
def test_append_skips_ids_already_stored(
    store: Store, batches: list[list[str]], new_ids: list[list[str]], head: int
) -> None:
    """An id seen before (SQS redelivery) is skipped and burns no seq."""
    returned = [[s.event.id for s in store.append([event(i) for i in b])] for b in batches]
    assert returned == new_ids
    assert store.head() == head
    assert seqs(store.read(0, 10)) == list(range(1, head + 1))


def test_duplicate_keeps_the_first_copy(store: Store) -> None:
    """A redelivered id does not overwrite the stored event."""
    store.append([event("a", version=1)])
    store.append([event("a", version=2)])
    stored = store.get("a")
    assert stored is not None and stored.event.detail["version"] == 1


def test_request_round_trips_byte_exact(store: Store) -> None:
    """Body bytes (not UTF-8) and headers (order and repeats) come back exactly."""
    request = RawRequest(
        method="POST",
        path="/hooks/stripe",
        query="a=1&a=2",
        headers=(
            ("Stripe-Signature", "t=1,v1=abc"),
            ("X-Dup", "one"),
            ("Content-Type", "application/octet-stream"),
            ("X-Dup", "two"),
        ),
        body=b"\x00\xff\xfe{not json}\r\n\x80",
    )
    original = Event(
        id=EventId("w1"), source="webhook.stripe", detail_type="webhook", detail={}, request=request
    )
    store.append([original])
    stored = store.get("w1")
    assert stored is not None and stored.event.request == request
    assert stored.request_json == json.dumps(
        request.to_dict(), separators=(",", ":"), ensure_ascii=False
    )


def test_event_without_request_has_no_request_json(store: Store) -> None:
    """A bus event has request_json None and event.request None."""
    store.append([event("a")])
    [stored] = store.read(0, 1)
    assert stored.request_json is None and stored.event.request is None


def test_lone_surrogate_in_detail_is_stored(store: Store) -> None:
    """A JSON escape SQLite cannot store as UTF-8 is kept escaped and decodes back."""
    original = event("a", text="\ud800")
    store.append([original])
    stored = store.get("a")
    assert stored is not None and stored.event == original
    assert json.loads(stored.event_json)["detail"]["text"] == "\ud800"


@pytest.mark.parametrize(
    ("lookup", "found"),
    [("e2", 2), ("nope", None)],
)
def test_get_finds_by_id(store: Store, lookup: str, found: int | None) -> None:
    """get(id) returns the stored event, or None."""
    fill(store, 3)
    stored = store.get(lookup)
    assert (stored.seq if stored else None) == found


@pytest.mark.parametrize(("seq", "found"), [(2, "e2"), (0, None), (9, None)])
def test_get_seq_finds_by_seq(store: Store, seq: int, found: str | None) -> None:
    """get_seq(seq) returns the stored event, or None."""
    fill(store, 3)
    stored = store.get_seq(seq)
    assert (stored.event.id if stored else None) == found


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (T0, 0),
        (T0 + 1, 0),
        (T0 + 1.5, 1),
        (T0 + 3, 2),
        (T0 + 99, 3),
    ],
)
def test_seq_before_is_last_seq_received_strictly_before(
    store: Store, moment: float, expected: int
) -> None:
    """seq_before(t) is the highest seq received before t (0 if none)."""
    fill(store, 3)  # received T0+1, T0+2, T0+3
    assert store.seq_before(moment) == expected


# -------------------------------------------------------------------------- listeners


def test_save_listener_then_read_it(store: Store) -> None:
    """A saved listener comes back with cursor, pattern and last_seen."""
    store.save_listener("alice", cursor=7, pattern={"source": ["app"]}, seen=T0)
    assert store.listener("alice") == store.listeners()[0]
    listener = store.listener("alice")
    assert listener is not None
    assert (listener.name, listener.cursor, listener.pattern, listener.last_seen) == (
        "alice",
        7,
        {"source": ["app"]},
        T0,
    )


def test_unknown_listener_is_none(store: Store) -> None:
    """listener(name) is None for a name never saved."""
    assert store.listener("nobody") is None


def test_save_listener_replaces_cursor_and_pattern(store: Store) -> None:
    """Subscribing again sets the cursor exactly (even lower) and the new pattern."""
    store.save_listener("alice", cursor=9, pattern={"source": ["a"]}, seen=T0)
    store.save_listener("alice", cursor=4, pattern={"source": ["b"]}, seen=T0 + 1)
    listener = store.listener("alice")
    assert listener is not None
    assert (listener.cursor, listener.pattern, listener.last_seen) == (4, {"source": ["b"]}, T0 + 1)


@pytest.mark.parametrize(("move_to", "expected"), [(3, 5), (5, 5), (8, 8)])
def test_set_cursor_never_moves_back(store: Store, move_to: int, expected: int) -> None:
    """set_cursor only moves a cursor forward."""
    store.save_listener("alice", cursor=5, pattern={})
    store.set_cursor("alice", move_to)
    listener = store.listener("alice")
    assert listener is not None and listener.cursor == expected


def test_set_cursor_keeps_the_pattern(store: Store) -> None:
    """Moving the cursor does not touch the subscribed pattern."""
    store.save_listener("alice", cursor=1, pattern={"source": ["app"]})
    store.set_cursor("alice", 2)
    listener = store.listener("alice")
    assert listener is not None and listener.pattern == {"source": ["app"]}


def test_set_cursor_creates_an_unknown_listener(store: Store) -> None:
    """A cursor for an unsaved name is kept (with an empty pattern), not dropped."""
    store.set_cursor("bob", 3)
    listener = store.listener("bob")
    assert listener is not None and (listener.cursor, listener.pattern) == (3, {})


def test_listeners_are_listed_by_name(store: Store) -> None:
    """listeners() returns every listener, sorted by name."""
    for name in ("carol", "alice", "bob"):
        store.save_listener(name, cursor=0, pattern={})
    assert [listener.name for listener in store.listeners()] == ["alice", "bob", "carol"]


# -------------------------------------------------------------------------- deliveries


def test_deliveries_are_listed_oldest_first(store: Store) -> None:
    """Every recorded attempt for an event comes back, in record order."""
    [a] = store.append([event("a")])
    attempts = [
        delivery(a, status="failed", attempt=1, at=T0),
        delivery(a, status="failed", attempt=2, at=T0 + 1),
        delivery(a, listener="bob", at=T0 + 2),
    ]
    store.record(attempts[:2])
    store.record(attempts[2:])
    assert store.deliveries("a") == attempts


def test_delivery_fields_round_trip(store: Store) -> None:
    """A delivery keeps code, error, latency and the replay flag."""
    [a] = store.append([event("a")])
    recorded = delivery(
        a, status="failed", attempt=3, latency_ms=12.25, code=None, error="boom", replay=True
    )
    store.record([recorded])
    assert store.deliveries("a") == [recorded]


def test_delivery_error_with_lone_surrogate_is_recorded(store: Store) -> None:
    """An error text SQLite cannot store as UTF-8 is recorded with the surrogate replaced."""
    [a] = store.append([event("a")])
    store.record([delivery(a, status="failed", error="bad \udcff byte")])
    assert [d.error for d in store.deliveries("a")] == ["bad \ufffd\ufffd\ufffd byte"]


def test_deliveries_of_unknown_event_are_empty(store: Store) -> None:
    """deliveries(id) of an id never stored is an empty list."""
    assert store.deliveries("nope") == []


@pytest.mark.parametrize(
    ("seq", "event_id"),
    [pytest.param(99, "a", id="seq-not-stored"), pytest.param(1, "other", id="id-mismatch")],
)
def test_record_drops_results_without_their_event(store: Store, seq: int, event_id: str) -> None:
    """A result for an event no longer stored (or a seq/id mismatch) is dropped, not an error."""
    store.append([event("a")])
    store.record([Delivery("alice", seq, event_id, "delivered", 1, 1.0, 200, None, T0, False)])
    assert store.stats()["deliveries"] == 0


def test_answered_after_lists_seqs_answered_past_a_position(store: Store) -> None:
    """answered_after gives the seqs above a position that the listener answered."""
    stored = fill(store, 5)
    store.record([delivery(stored[i]) for i in (0, 2, 3)] + [delivery(stored[4], "bob")])
    assert store.answered_after("alice", 1) == {3, 4}


# -------------------------------------------------------------------------- history


def test_history_is_newest_first_with_deliveries(store: Store) -> None:
    """Without after, history pages from the newest event down, each with its deliveries."""
    stored = fill(store, 4)
    attempt = delivery(stored[2])
    store.record([attempt])
    rows = store.history(limit=3)
    assert [(item.seq, found) for item, found in rows] == [(4, []), (3, [attempt]), (2, [])]


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        pytest.param({"limit": 3}, [10, 9, 8], id="first-page"),
        pytest.param({"before": 8, "limit": 3}, [7, 6, 5], id="before"),
        pytest.param({"before": 2, "limit": 3}, [1], id="last-page"),
        pytest.param({"after": 0, "limit": 3}, [1, 2, 3], id="after-oldest-first"),
        pytest.param({"after": 3, "limit": 3}, [4, 5, 6], id="after-next-page"),
        pytest.param({"after": 3, "before": 6, "limit": 9}, [4, 5], id="between"),
        pytest.param({"limit": 0}, [], id="no-rows"),
    ],
)
def test_history_pages_by_seq(store: Store, kw: dict[str, Any], expected: list[int]) -> None:
    """before pages newest first, after pages oldest first."""
    fill(store, 10)
    assert history_seqs(store, **kw) == expected


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        pytest.param({"source": "app.b"}, [4, 2], id="source"),
        pytest.param({"detail_type": "Shipped"}, [3, 2], id="detail-type"),
        pytest.param({"source": "app.b", "detail_type": "Shipped"}, [2], id="both"),
        pytest.param({"since": T0 + 2}, [4, 3, 2], id="since"),
        pytest.param({"until": T0 + 2}, [1], id="until"),
        pytest.param({"since": T0 + 2, "until": T0 + 4}, [3, 2], id="since-until"),
    ],
)
def test_history_filters_events(store: Store, kw: dict[str, Any], expected: list[int]) -> None:
    """source, detail_type and the received window filter history."""
    for n, (source, detail_type) in enumerate(
        [("app.a", "Placed"), ("app.b", "Shipped"), ("app.a", "Shipped"), ("app.b", "Placed")],
        start=1,
    ):
        store.append([event(f"e{n}", source=source, detail_type=detail_type)], received=T0 + n)
    assert history_seqs(store, **kw) == expected


@pytest.fixture
def answered(store: Store) -> Store:
    """Six events: alice answered 1-4 (2 and 4 failing last), bob failed 1; cursor at 4."""
    e = fill(store, 6)
    store.record(
        [
            delivery(e[0]),
            delivery(e[1], status="failed"),
            delivery(e[2], status="failed"),
            delivery(e[2]),  # retried: latest is delivered
            delivery(e[3]),
            delivery(e[3], status="failed"),  # replayed and failed: latest is failed
            delivery(e[0], "bob", status="failed"),
        ]
    )
    store.save_listener("alice", cursor=4, pattern={})
    store.save_listener("bob", cursor=1, pattern={})
    return store


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        pytest.param({"listener": "alice", "status": "delivered"}, [3, 1], id="alice-delivered"),
        pytest.param({"listener": "alice", "status": "failed"}, [4, 2], id="alice-failed"),
        pytest.param({"listener": "bob", "status": "failed"}, [1], id="bob-failed"),
        pytest.param({"status": "failed"}, [4, 2, 1], id="any-failed"),
        pytest.param({"status": "delivered"}, [3, 1], id="any-delivered"),
        pytest.param({"listener": "alice", "status": "pending"}, [6, 5], id="alice-pending"),
        pytest.param({"listener": "bob", "status": "pending"}, [6, 5, 4, 3, 2], id="bob-pending"),
        pytest.param({"listener": "nobody", "status": "pending"}, [], id="unknown-pending"),
        pytest.param({"listener": "bob"}, [1], id="listener-only"),
    ],
)
def test_history_filters_by_latest_status(
    answered: Store, kw: dict[str, Any], expected: list[int]
) -> None:
    """status is the latest delivery's, per listener; pending is past the cursor, unanswered."""
    assert history_seqs(answered, **kw) == expected


def test_history_with_listener_shows_only_its_deliveries(answered: Store) -> None:
    """Filtering by listener lists that listener's deliveries only."""
    [(item, found)] = answered.history(listener="bob")
    assert item.seq == 1 and [d.listener for d in found] == ["bob"]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        pytest.param({"status": "pending"}, "needs a listener", id="pending-without-listener"),
        pytest.param({"status": "lost"}, "unknown status", id="unknown-status"),
    ],
)
def test_history_rejects_bad_status(store: Store, kw: dict[str, Any], message: str) -> None:
    """A status filter that cannot work is a UsageError."""
    with pytest.raises(UsageError, match=message):
        store.history(**kw)


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        pytest.param({"limit": 3}, [495, 395, 295], id="newest-first"),
        pytest.param({"after": 100, "limit": 3}, [195, 295, 395], id="oldest-first"),
        pytest.param({"limit": 10}, [495, 395, 295, 195, 95], id="fewer-than-limit"),
    ],
)
def test_history_keep_reads_pages_until_limit(
    store: Store, kw: dict[str, Any], expected: list[int]
) -> None:
    """keep filters rows in Python, reading further pages until limit rows are kept."""
    store.append([event(f"e{n}") for n in range(1, 501)])
    assert history_seqs(store, keep=lambda item: item.seq % 100 == 95, **kw) == expected


# -------------------------------------------------------------------------- failed


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        pytest.param({}, [1, 2, 4], id="any-listener"),
        pytest.param({"listener": "alice"}, [2, 4], id="alice"),
        pytest.param({"listener": "bob"}, [1], id="bob"),
        pytest.param({"limit": 2}, [1, 2], id="limit"),
    ],
)
def test_failed_lists_events_whose_latest_delivery_failed(
    answered: Store, kw: dict[str, Any], expected: list[int]
) -> None:
    """failed() is oldest first, by the latest delivery per listener."""
    assert seqs(answered.failed(**kw)) == expected


def test_failed_since_counts_the_failure_time(store: Store) -> None:
    """since keeps events whose latest failure was recorded at or after it."""
    a, b = store.append([event("a"), event("b")])
    store.record([delivery(a, status="failed", at=T0), delivery(b, status="failed", at=T0 + 10)])
    assert seqs(store.failed(since=T0 + 5)) == [2]


# -------------------------------------------------------------------------- retention


def test_sweep_removes_events_older_than_max_age(tmp_path: Path) -> None:
    """Events received before now - max_age are deleted; the count is returned."""
    with Store(tmp_path / "s.db", max_age=10, max_count=None) as store:
        fill(store, 5)  # received T0+1 .. T0+5
        assert store.sweep(now=T0 + 13) == 2
        assert seqs(store.read(0, 10)) == [3, 4, 5]


def test_sweep_keeps_only_the_newest_max_count(tmp_path: Path) -> None:
    """Beyond the newest max_count, events are deleted."""
    with Store(tmp_path / "s.db", max_age=None, max_count=2) as store:
        fill(store, 5)
        assert store.sweep(now=T0) == 3
        assert seqs(store.read(0, 10)) == [4, 5]


def test_sweep_deletes_deliveries_with_their_events(tmp_path: Path) -> None:
    """A deleted event's deliveries go with it."""
    with Store(tmp_path / "s.db", max_age=None, max_count=1) as store:
        stored = fill(store, 2)
        store.record([delivery(stored[0]), delivery(stored[1])])
        store.sweep()
        assert (store.deliveries("e1"), len(store.deliveries("e2"))) == ([], 1)


def test_seqs_are_never_reused_after_sweeping_everything(tmp_path: Path) -> None:
    """head() survives deleting every event, and the next event continues after it."""
    with Store(tmp_path / "s.db", max_age=1, max_count=None) as store:
        fill(store, 3)
        assert store.sweep(now=T0 + 100) == 3
        assert (store.head(), store.read(0, 10)) == (3, [])
    with Store(tmp_path / "s.db") as store:
        assert store.head() == 3
        assert seqs(store.append([event("new")])) == [4]


def test_stats_counts_the_store(answered: Store) -> None:
    """stats() counts events, deliveries, listeners, and gives head and the oldest seq."""
    answered.max_count = 4
    answered.sweep(now=T0)
    assert answered.stats() == {
        "events": 4,
        "deliveries": 4,
        "listeners": 2,
        "head": 6,
        "oldest_seq": 3,
    }


# -------------------------------------------------------------------------- durability


def test_store_survives_reopen(tmp_path: Path) -> None:
    """Events, deliveries and listeners are all there after close and reopen."""
    path = tmp_path / "s.db"
    with Store(path) as store:
        [a] = store.append([event("a")])
        store.record([delivery(a)])
        store.save_listener("alice", cursor=1, pattern={"source": ["app"]})
    with Store(path) as store:
        assert store.get("a") == a
        assert len(store.deliveries("a")) == 1
        listener = store.listener("alice")
        assert listener is not None and listener.cursor == 1


def test_empty_file_becomes_a_store(tmp_path: Path) -> None:
    """An existing empty file (as from touch) is adopted as a new store."""
    path = tmp_path / "s.db"
    path.touch()
    with Store(path) as store:
        assert seqs(store.append([event("a")])) == [1]


def test_store_uses_write_ahead_logging(tmp_path: Path) -> None:
    """The file is in WAL mode (durable commits without an fsync each)."""
    path = tmp_path / "s.db"
    Store(path).close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        db.close()


_KILL_AFTER_APPEND = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from hookcli.events import Event, EventId
    from hookcli.relay.store import Store

    store = Store(Path(sys.argv[1]))
    store.append([Event(id=EventId("survivor"), source="test", detail_type="T", detail={"n": 1})])
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.slow
def test_committed_event_survives_sigkill(tmp_path: Path) -> None:
    """An event committed just before the process is killed with SIGKILL is there on reopen."""
    path = tmp_path / "s.db"
    done = subprocess.run(
        [sys.executable, "-c", _KILL_AFTER_APPEND, str(path)],
        capture_output=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    assert Path(f"{path}-wal").stat().st_size > 0  # the commit lives in the WAL, not checkpointed
    with Store(path) as store:
        stored = store.get("survivor")
        assert stored is not None and stored.seq == 1 and stored.event.detail == {"n": 1}


# -------------------------------------------------------------------------- errors


def _text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("these are not the events you are looking for\n" * 100)
    return path


def _other_database(tmp_path: Path) -> Path:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    db.commit()
    db.close()
    return path


def _newer_store(tmp_path: Path) -> Path:
    path = tmp_path / "newer.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    return path


def _under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "plain").write_text("x")
    return tmp_path / "plain" / "store.db"


def _a_directory(tmp_path: Path) -> Path:
    (tmp_path / "dir.db").mkdir()
    return tmp_path / "dir.db"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(_text_file, "not a hook store", id="text-file"),
        pytest.param(_other_database, "not a hook store", id="other-sqlite-database"),
        pytest.param(_newer_store, "newer hook", id="newer-schema"),
        pytest.param(_under_a_file, "cannot create the store's directory", id="parent-is-a-file"),
        pytest.param(_a_directory, "cannot open the store file", id="path-is-a-directory"),
    ],
)
def test_unusable_path_is_a_store_error(tmp_path: Path, make: Any, message: str) -> None:
    """A path that cannot be a hook store raises StoreError saying why, with a hint."""
    with pytest.raises(StoreError, match=message) as caught:
        Store(make(tmp_path))
    assert caught.value.hint


def test_foreign_database_is_left_untouched(tmp_path: Path) -> None:
    """Refusing another application's database does not modify it."""
    path = _other_database(tmp_path)
    before = path.read_bytes()
    with pytest.raises(StoreError):
        Store(path)
    assert path.read_bytes() == before


def test_closed_store_raises_store_error(tmp_path: Path) -> None:
    """Using a closed store is a StoreError, not a sqlite3 exception."""
    store = Store(tmp_path / "s.db")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.head()


def test_background_checkpoint_moves_the_wal_into_the_database(tmp_path: Path) -> None:
    """With checkpoint_interval, a thread (not the committing caller) checkpoints the WAL."""
    from conftest import UNIT, wait_until

    path = tmp_path / "store.db"
    store = Store(path, checkpoint_interval=0.05)
    try:
        assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        # Measured before the appends: under load the thread may checkpoint while they run.
        size_before = path.stat().st_size
        for batch in range(30):
            store.append([event(f"e-{batch}-{n}", detail={"pad": "x" * 400}) for n in range(50)])
        wait_until(lambda: path.stat().st_size > size_before + 400_000, UNIT, "a checkpoint")
        assert len(store.read(0, 2000)) == 1500
    finally:
        store.close()
    with Store(path) as reopened:
        assert reopened.stats()["events"] == 1500


# --- id prefixes and replay history (issue 9) -----------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "limit", "expected"),
    [
        ("e4b6", 10, ["e4b6-1", "e4b6-2", "e4b6aa"]),
        ("e4b6-", 10, ["e4b6-1", "e4b6-2"]),
        ("e4b6-2", 10, ["e4b6-2"]),
        ("e4b6", 2, ["e4b6-1", "e4b6-2"]),
        ("e4b7", 10, []),
        ("E4B6", 10, []),  # ids are compared exactly, as EventBridge ids are
        ("", 10, []),
        ("ö", 10, ["öl"]),
    ],
)
def test_ids_with_prefix(store: Store, prefix: str, limit: int, expected: list[str]) -> None:
    """Stored ids starting with a prefix, in id order, at most ``limit``; exact bytes only."""
    store.append([event(name) for name in ("e4b6-2", "e4b6-1", "e4b6aa", "e4b5", "f", "öl")])
    assert store.ids_with_prefix(prefix, limit) == expected


def test_ids_with_prefix_scans_the_id_index(store: Store) -> None:
    """The prefix lookup is a range search on the unique index of ids, never a table scan."""
    plan = store._conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM events WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
        ("a", "a\U0010ffff", 3),
    ).fetchall()
    assert "USING COVERING INDEX sqlite_autoindex_events_1 (id>? AND id<?)" in plan[0][3]


def test_a_replay_delivery_keeps_target_replayer_and_the_failure_it_answers(store: Store) -> None:
    """Target, replayed_by and replay_of come back as recorded, with each row's id."""
    [a] = store.append([event("a")])
    store.record([delivery(a, status="failed", target="http://localhost:3000/")])
    [failed] = store.deliveries("a")
    assert failed.id is not None and failed.target == "http://localhost:3000/"
    replay = delivery(
        a, replay=True, target="exec cat", replayed_by="me@box:exec:abc123", replay_of=failed.id
    )
    store.record([replay])
    [_, again] = store.deliveries("a")
    assert (again.target, again.replayed_by, again.replay_of) == (
        "exec cat",
        "me@box:exec:abc123",
        failed.id,
    )
    assert store.delivery(failed.id) == failed
    assert store.delivery(10_000) is None


def test_a_schema_1_store_is_migrated_and_keeps_its_deliveries(tmp_path: Path) -> None:
    """A store written before issue 9 opens: old rows read back without target, new ones keep it."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for statement in _MIGRATIONS[0]:
        db.execute(statement)
    db.execute(
        "INSERT INTO events (id, source, detail_type, received, event_json)"
        " VALUES ('old', 's', 'd', 1.0, ?)",
        (json.dumps(event("old").to_dict()),),
    )
    db.execute(
        "INSERT INTO deliveries (seq, listener, event_id, status, attempt, latency_ms, at, replay)"
        " VALUES (1, 'alice', 'old', 'failed', 1, 2.0, 1.0, 0)"
    )
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with Store(path) as store:
        [old] = store.deliveries("old")
        assert (old.listener, old.status, old.target, old.replay_of) == (
            "alice",
            "failed",
            None,
            None,
        )
        item = store.get("old")
        assert item is not None
        store.record([delivery(item, target="http://localhost:3000/")])
        assert [d.target for d in store.deliveries("old")] == [None, "http://localhost:3000/"]
        version = store._conn.execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION
