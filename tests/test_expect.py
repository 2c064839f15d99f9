"""`hook expect`: waits for N matching events in a real subprocess against a real relay; exit
codes, what it prints, the cursor it never moves, and a wait that survives a relay restart."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_commands import Background, answer_as, free_port, history, hook, ingest, ns

from hookcli.config import resolve
from hookcli.expect import ExpectSettings, expect
from hookcli.protocol import Start
from hookcli.relay.service import RunningRelay, start_relay
from hookcli.updates import Ready, Update

from conftest import UNIT, LoopThread, relay_settings, run, wait_until
from fixtures.cli import clean_env

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment for `hook`: no HOOK_* from the caller, no config file, no colour."""
    return clean_env(tmp_path, ("HOOK_",))


@pytest.fixture
def spawn(env: dict[str, str]) -> Iterator[Callable[..., Background]]:
    """Start `hook` in the background; whatever still runs at the end is killed."""
    started: list[Background] = []

    def start(*args: str) -> Background:
        started.append(Background(env, *args))
        return started[-1]

    yield start
    for proc in started:
        proc.kill()


def test_expect_exits_0_once_count_events_matched(
    relay: RunningRelay, spawn: Callable[..., Background]
) -> None:
    """Exit 0 as soon as N matching events came; stdout holds exactly those, one per line."""
    waiting = spawn(
        "expect", "--source", "webhook.shop", "--count", "2", "--timeout", "60s",
        "--relay", relay.url,
    )  # fmt: skip
    waiting.wait_for_line(waiting.err, lambda d: d.get("type") == "ready", "expect's ready line")
    ids = [
        ingest(relay, "other", b'{"n": 0}'),
        ingest(relay, "shop", b'{"n": 1}'),
        ingest(relay, "shop", b'{"n": 2}'),
    ]
    assert waiting.wait() == 0, waiting.err
    events = [json.loads(line) for line in waiting.out]
    assert [e["id"] for e in events] == ids[1:]
    assert [e["detail"] for e in events] == [{"n": 1}, {"n": 2}]
    assert all(json.loads(line)["type"] != "error" for line in waiting.err if line.startswith("{"))


def test_expect_times_out_with_exit_1_saying_what_arrived(
    relay: RunningRelay, env: dict[str, str]
) -> None:
    """Exit 1 on timeout: the matched event on stdout, the count and the near miss on stderr."""
    matched = ingest(relay, "shop", b'{"n": 1}')
    other = ingest(relay, "billing", b'{"n": 2}')
    ran = hook(
        env, "expect", "--source", "webhook.shop", "--count", "2", "--timeout", "1",
        "--from", "0", "--relay", relay.url,
    )  # fmt: skip
    assert ran.code == 1, ran.stderr
    assert [e["id"] for e in ran.lines()] == [matched]
    assert "Error: 1 of 2 expected event(s) arrived within 1 s" in ran.stderr
    assert f"webhook.billing  webhook  {other}" in ran.stderr
    assert 'detail {"n":2}' in ran.stderr


@pytest.mark.parametrize(
    ("start", "code", "matched"),
    [("0", 0, 1), ("2", 1, 0), ("now", 1, 0)],
)
def test_expect_counts_events_from_the_start_point(
    relay: RunningRelay, env: dict[str, str], start: str, code: int, matched: int
) -> None:
    """--from SEQ counts events stored before the wait began; --from now does not."""
    ingest(relay, "shop", b'{"n": 1}')  # seq 1
    ran = hook(
        env, "expect", "--source", "webhook.shop", "--timeout", "1", "--from", start,
        "--relay", relay.url,
    )  # fmt: skip
    assert ran.code == code, ran.stderr
    assert len(ran.lines()) == matched


def test_expect_takes_a_pattern_file(
    relay: RunningRelay, env: dict[str, str], tmp_path: Path
) -> None:
    """--pattern @file filters with EventBridge semantics (here a numeric range on detail)."""
    (tmp_path / "big.json").write_text('{"detail": {"n": [{"numeric": [">", 5]}]}}')
    for n in (1, 7, 9):
        ingest(relay, "shop", f'{{"n": {n}}}'.encode())
    ran = hook(
        env, "expect", "--pattern", f"@{tmp_path / 'big.json'}", "--count", "2",
        "--timeout", "10", "--from", "0", "--relay", relay.url,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    assert [e["detail"]["n"] for e in ran.lines()] == [7, 9]


def test_expect_moves_no_listener_cursor(relay: RunningRelay, env: dict[str, str]) -> None:
    """A wait that reads every stored event leaves a listener's pending events pending."""
    answer_as(relay, "carol", [])
    for n in range(3):
        ingest(relay, "shop", f'{{"n": {n}}}'.encode())
    ran = hook(env, "expect", "--count", "3", "--from", "0", "--relay", relay.url)
    assert ran.code == 0, ran.stderr
    assert ns(history(relay, status="pending", listener="carol")) == [2, 1, 0]


def test_expect_without_a_reachable_relay_exits_3(env: dict[str, str]) -> None:
    """A relay that never answers within the timeout is exit 3 (not a timeout's 1), saying so."""
    url = f"http://127.0.0.1:{free_port()}"
    ran = hook(env, "expect", "--timeout", "1", "--relay", url)
    assert ran.code == 3, ran.stderr
    assert f"Error: cannot reach the relay at {url} within 1 s" in ran.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "last"], "no cursor"),
        (["--timeout", "soon"], "is not a duration"),
        (["--timeout", "0"], "must be positive"),
        (["--pattern", '{"detail": 5}'], "Event pattern is not valid"),
        (["--source", "a", "--pattern", '{"source": ["b"]}'], "--source cannot be combined"),
    ],
)
def test_expect_refuses_bad_options_with_exit_2(
    env: dict[str, str], args: list[str], message: str
) -> None:
    """Bad options fail before any network I/O, with exit 2 and what to do."""
    ran = hook(env, "expect", *args, "--relay", f"http://127.0.0.1:{free_port()}")
    assert ran.code == 2
    assert message in ran.stderr


def test_expect_resumes_from_where_it_started_after_a_relay_restart(
    tmp_path: Path, loop_thread: LoopThread
) -> None:
    """Events stored while the relay was restarting count: the wait resumes at its start seq."""
    settings = relay_settings(tmp_path / "relay")
    running = loop_thread.run(start_relay(settings))
    port = int(running.url.rsplit(":", 1)[1])
    updates: list[Update] = []
    expect_settings = ExpectSettings(
        connection=resolve(running.url, None), pattern={}, count=2, timeout=UNIT * 4
    )

    async def wait() -> tuple[int, ...]:
        expected = await expect(expect_settings, updates.append)
        return tuple(int(e.detail["n"]) for e in expected.matched)

    future: concurrent.futures.Future[tuple[int, ...]] = asyncio.run_coroutine_threadsafe(
        wait(), loop_thread.loop
    )
    wait_until(lambda: any(isinstance(u, Ready) for u in updates), what="expect's first ready")
    loop_thread.run(running.stop())
    restarted = loop_thread.run(start_relay(relay_settings(tmp_path / "relay", port=port)))
    try:
        ingest(restarted, "shop", b'{"n": 1}')
        ingest(restarted, "shop", b'{"n": 2}')
        assert future.result(UNIT * 5) == (1, 2)
    finally:
        loop_thread.run(restarted.stop())
    ready = [u for u in updates if isinstance(u, Ready)]
    assert ready[-1].reconnect and ready[-1].start == 0


def test_expect_library_returns_what_arrived_on_timeout(relay: RunningRelay) -> None:
    """The library returns (never raises) a short wait: matched, others, and the summary."""
    ingest(relay, "shop", b'{"n": 1}')
    ingest(relay, "billing", b'{"n": 2}')
    settings = ExpectSettings(
        connection=resolve(relay.url, None),
        pattern={"source": ["webhook.shop"]},
        count=3,
        timeout=1.0,
        start=Start("seq", seq=1),
    )
    expected = run(expect(settings, lambda update: None))
    assert not expected.complete
    assert [e.detail for e in expected.matched] == [{"n": 1}]
    assert expected.other_count == 1
    assert [e.source for e in expected.others] == ["webhook.billing"]
    assert expected.summary().startswith("1 of 3 expected event(s) arrived within 1 s;")
