"""Archive replays that keep the original event id (issue 11): the relay stores a replayed copy
apart from its original (dedupe on id + replay-name), a bare id names the original and
``ID@REPLAY`` the copy, listeners deliver both, and a store of the previous schema migrates.

AWS does not document whether a replayed event keeps its id; moto gives it a new one, so the
relay tests write the copies into the relay's SQS queue themselves, as EventBridge would.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_commands import Background, hook, http
from test_event_text import put_in_queue, stored
from test_store import delivery, event

from hookcli.relay.service import RunningRelay, start_relay
from hookcli.relay.store import _MIGRATIONS, APPLICATION_ID, SCHEMA_VERSION, Store

from conftest import LoopThread, RecordingTarget, relay_settings, wait_until
from fixtures.cli import clean_env

# --------------------------------------------------------------------------- the store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store.db") as opened:
        yield opened


def test_a_replayed_copy_is_stored_apart_from_its_original(store: Store) -> None:
    """Same id, another replay-name: a new event (own seq); the same pair again: a duplicate."""
    original = event("a")
    first = store.append([original, replace(original, replay_name="r1")])
    again = store.append([original, replace(original, replay_name="r1")])
    other = store.append([replace(original, replay_name="r2")])
    assert [s.event.replay_name for s in first + other] == [None, "r1", "r2"]
    assert again == []
    assert store.stats()["events"] == 3


@pytest.mark.parametrize("copy_first", [False, True])
def test_a_bare_id_names_the_original(store: Store, copy_first: bool) -> None:
    """get(id) is the copy without replay-name, whichever was stored first."""
    original = event("a")
    copies = [replace(original, replay_name="r1"), original]
    store.append(copies if copy_first else copies[::-1])
    found = store.get("a")
    assert found is not None and found.event.replay_name is None


def test_a_replay_name_names_its_copy(store: Store) -> None:
    """get(id, name) is that replay's copy; "" is the original; an unknown name is None."""
    original = event("a")
    store.append([original, replace(original, replay_name="r1")])
    copy = store.get("a", "r1")
    assert copy is not None and copy.event.replay_name == "r1"
    plain = store.get("a", "")
    assert plain is not None and plain.event.replay_name is None
    assert store.get("a", "r9") is None


def test_without_its_original_a_bare_id_names_the_earliest_copy(tmp_path: Path) -> None:
    """Retention removed the original: the id names the first replayed copy still kept."""
    with Store(tmp_path / "s.db", max_age=None, max_count=2) as store:
        original = event("a")
        store.append([original])
        store.append([replace(original, replay_name="r1")])
        store.append([replace(original, replay_name="r0")])
        assert store.sweep() == 1
        found = store.get("a")
        assert found is not None and found.event.replay_name == "r1"


def test_deliveries_follow_the_copy_they_were_recorded_for(store: Store) -> None:
    """A result for the replayed copy's seq is the copy's; deliveries(id) is the original's."""
    original = event("a")
    first, copy = store.append([original, replace(original, replay_name="r1")])
    store.record([delivery(copy, status="failed")])
    assert store.deliveries("a") == []
    assert [d.status for d in store.deliveries_at(copy.seq)] == ["failed"]


def test_an_id_stored_twice_is_one_prefix_candidate(store: Store) -> None:
    """ids_with_prefix lists each id once, so a short id is not ambiguous with itself."""
    original = event("abcdef")
    store.append([original, replace(original, replay_name="r1"), event("abcxyz")])
    assert store.ids_with_prefix("abcd") == ["abcdef"]
    assert store.ids_with_prefix("abc") == ["abcdef", "abcxyz"]


def schema_2_store(path: Path, rows: list[tuple[str, str | None]], head: int) -> None:
    """A store as hook wrote it before this change (schema 2, id unique), with ``rows``
    (id, replay-name) as seqs 1.., a failed delivery of seq 1, and AUTOINCREMENT at ``head``."""
    db = sqlite3.connect(path)
    for step in _MIGRATIONS[:2]:
        for statement in step:
            db.execute(statement)
    for seq, (event_id, replay_name) in enumerate(rows, 1):
        text = event(event_id).to_json()
        if replay_name is not None:
            text = text[:-1] + f',"replay-name":"{replay_name}"}}'
        db.execute(
            "INSERT INTO events (seq, id, source, detail_type, received, event_json)"
            " VALUES (?, ?, 'app.orders', 'OrderPlaced', 1.0, ?)",
            (seq, event_id, text),
        )
    if rows:
        db.execute(
            "INSERT INTO deliveries (seq, listener, event_id, status, attempt, latency_ms, at,"
            " replay, target) VALUES (1, 'alice', ?, 'failed', 1, 2.0, 1.0, 0, 'exec cat')",
            (rows[0][0],),
        )
    db.execute("DELETE FROM sqlite_sequence")
    db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)", (head,))
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()


def test_a_schema_2_store_migrates_keeping_events_deliveries_and_head(tmp_path: Path) -> None:
    """Every row keeps its seq and text, deliveries stay attached, the head (which retention
    may have left above the last row) is kept, and a stored replay-name becomes the key."""
    path = tmp_path / "old.db"
    schema_2_store(path, [("a", None), ("b", "r1")], head=7)
    with Store(path) as store:
        assert store.head() == 7
        assert [s.seq for s in store.read(0, 10)] == [1, 2]
        assert [(d.listener, d.status, d.target) for d in store.deliveries("a")] == [
            ("alice", "failed", "exec cat")
        ]
        copy = store.get("b", "r1")
        assert copy is not None and copy.seq == 2
        assert store.append([replace(event("b"), replay_name="r1")]) == []
        (new,) = store.append([replace(event("a"), replay_name="r1")])
        assert new.seq == 8
        version = store._conn.execute("PRAGMA user_version").fetchone()[0]
        foreign_keys = store._conn.execute("PRAGMA foreign_keys").fetchone()[0]
    assert (version, foreign_keys) == (SCHEMA_VERSION, 1)


def test_a_migrated_store_still_removes_deliveries_with_their_event(tmp_path: Path) -> None:
    """The rebuilt events table is still what deliveries reference (ON DELETE CASCADE)."""
    path = tmp_path / "old.db"
    schema_2_store(path, [("a", None), ("b", None)], head=2)
    with Store(path, max_age=None, max_count=1) as store:
        assert store.sweep() == 1
        assert store.stats()["deliveries"] == 0


def test_an_empty_schema_2_store_migrates_and_keeps_its_head(tmp_path: Path) -> None:
    """Retention emptied the store: the next event still gets a seq above every old one."""
    path = tmp_path / "old.db"
    schema_2_store(path, [], head=41)
    with Store(path) as store:
        (first,) = store.append([event("a")])
    assert first.seq == 42


# --------------------------------------------------------------------------- the relay


@pytest.fixture
def sqs_relay(tmp_path: Path, loop_thread: LoopThread) -> Iterator[RunningRelay]:
    """A relay on moto's emulated bus and queue, named uniquely (moto's state is shared)."""
    name = f"ids-{uuid.uuid4().hex[:8]}"
    running = loop_thread.run(
        start_relay(relay_settings(tmp_path / "relay", source=True, name=name))
    )
    yield running
    loop_thread.run(running.stop())


def body(event_id: str, replay_name: str | None = None) -> str:
    """EventBridge's SQS body for an order, as the original or as a replay's copy."""
    replay = "" if replay_name is None else f',"replay-name":"{replay_name}"'
    return (
        f'{{"version":"0","id":"{event_id}","detail-type":"OrderPlaced","source":"shop",'
        f'"account":"123456789012","time":"2026-12-01T10:00:00Z","region":"us-east-1",'
        f'"resources":[],"detail":{{"n":1}}{replay}}}'
    )


@pytest.fixture
def replayed(sqs_relay: RunningRelay, loop_thread: LoopThread) -> str:
    """An event id stored twice: the original, then a replay `r1`'s copy under the same id."""
    event_id = str(uuid.uuid4())
    put_in_queue(sqs_relay, body(event_id))
    wait_until(lambda: stored(sqs_relay, loop_thread, event_id) is not None, what="original")
    put_in_queue(sqs_relay, body(event_id, "r1"))
    put_in_queue(sqs_relay, body(event_id, "r1"))  # SQS at-least-once: a duplicate of the copy

    def copies() -> int:
        rows = http("GET", f"{sqs_relay.url}/v1/events?limit=100")["events"]
        return sum(row["event"]["id"] == event_id for row in rows)

    wait_until(lambda: copies() == 2 and sqs_relay.source.received >= 3, what="the copy")
    return event_id


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment for `hook`: no HOOK_* or AWS_* from the caller, no config, no colour."""
    return clean_env(tmp_path, ("HOOK_", "AWS_"))


@pytest.mark.slow
def test_the_relay_keeps_the_original_and_the_replayed_copy(
    sqs_relay: RunningRelay, replayed: str
) -> None:
    """Two rows, one per delivery: the second copy of the replay's message was deduplicated."""
    rows = http("GET", f"{sqs_relay.url}/v1/events?limit=100")["events"]
    names = sorted(
        str(row["event"].get("replay-name")) for row in rows if row["event"]["id"] == replayed
    )
    assert names == ["None", "r1"]
    assert http("GET", f"{sqs_relay.url}/v1/info")["head"] == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    ("address", "replay_name"),
    [("{id}", None), ("{id}@r1", "r1"), ("{short}@r1", "r1"), ("{short}", None)],
)
def test_get_event_names_the_original_or_the_replay_copy(
    sqs_relay: RunningRelay, replayed: str, address: str, replay_name: str | None
) -> None:
    """GET /v1/events/<id>: the original; <id>@<replay-name> (or a prefix@name): the copy."""
    given = address.format(id=replayed, short=replayed[:8])
    record = http("GET", f"{sqs_relay.url}/v1/events/{given}")
    assert record["event"]["id"] == replayed
    assert record["event"].get("replay-name") == replay_name


@pytest.mark.slow
def test_an_unknown_replay_of_a_known_id_is_a_404_with_a_hint(
    sqs_relay: RunningRelay, replayed: str
) -> None:
    """ID@NAME for a replay that never re-sent the event: 404 saying what ID@REPLAY means."""
    with pytest.raises(urllib.error.HTTPError) as info:
        http("GET", f"{sqs_relay.url}/v1/events/{replayed}@r2")
    answer = json.loads(info.value.read())
    assert info.value.code == 404
    assert "no copy from the replay 'r2'" in answer["error"]
    assert "ID@REPLAY" in answer["hint"]


@pytest.mark.slow
def test_a_result_for_id_at_replay_is_recorded_on_the_copy(
    sqs_relay: RunningRelay, replayed: str
) -> None:
    """`hook replay ID@REPLAY` records its result on the copy, not on the original."""
    result = {"listener": "alice", "status": "delivered", "attempt": 1, "latency_ms": 1.0}
    http(
        "POST",
        f"{sqs_relay.url}/v1/events/{replayed}@r1/results",
        json.dumps(result).encode(),
        **{"Content-Type": "application/json"},
    )
    copy = http("GET", f"{sqs_relay.url}/v1/events/{replayed}@r1")
    original = http("GET", f"{sqs_relay.url}/v1/events/{replayed}")
    assert [d["listener"] for d in copy["deliveries"]] == ["alice"]
    assert original["deliveries"] == []


@pytest.mark.slow
def test_hook_events_show_takes_id_at_replay(
    sqs_relay: RunningRelay, replayed: str, env: dict[str, str]
) -> None:
    """`hook events show ID@REPLAY --json` shows the replay's copy."""
    ran = hook(env, "events", "show", f"{replayed[:8]}@r1", "--json", "--relay", sqs_relay.url)
    assert ran.code == 0, ran.stderr
    (line,) = ran.lines()
    assert line["event"]["replay-name"] == "r1"


@pytest.mark.slow
def test_a_listener_delivers_the_original_and_the_replayed_copy(
    sqs_relay: RunningRelay, replayed: str, env: dict[str, str], http_target: RecordingTarget
) -> None:
    """`hook listen` does not take the copy for a duplicate of the original: both reach the
    target, each as its own text."""
    listener = Background(
        env, "listen", "--target", http_target.url, "--from", "0", "--json",
        "--relay", sqs_relay.url,
    )  # fmt: skip

    def results() -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in list(listener.out) if line.startswith("{")]
        return [line for line in lines if line.get("type") == "result"]

    try:
        wait_until(lambda: len(results()) >= 2, what="two results")
    finally:
        listener.kill()
    bodies = [r.body.decode() for r in http_target.requests]
    assert bodies == [body(replayed), body(replayed, "r1")]
    assert [line["duplicate"] for line in results()] == [False, False]


@pytest.mark.slow
def test_hook_replay_id_at_replay_delivers_and_records_the_copy(
    sqs_relay: RunningRelay, replayed: str, env: dict[str, str], http_target: RecordingTarget
) -> None:
    """`hook replay ID@REPLAY` sends the replay's copy and records the result on it only."""
    ran = hook(
        env, "replay", f"{replayed}@r1", "--target", http_target.url, "--json",
        "--relay", sqs_relay.url,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    assert [r.body.decode() for r in http_target.requests] == [body(replayed, "r1")]
    copy = http("GET", f"{sqs_relay.url}/v1/events/{replayed}@r1")
    original = http("GET", f"{sqs_relay.url}/v1/events/{replayed}")
    assert [(d["status"], d["replay"]) for d in copy["deliveries"]] == [("delivered", True)]
    assert original["deliveries"] == []
