"""Hypothesis against a live relay: random websocket messages and random history queries never
crash it, never log an exception, and never stop it serving a normal client."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from hookcli.relay.service import RunningRelay, start_relay

from conftest import UNIT, LoopThread, relay_settings

TOKEN = "fuzzing-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# Deterministic and bounded: reproducible runs, no example database on disk.
FUZZ = settings(
    derandomize=True,
    database=None,
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

EDGE_INTS = [0, 1, -1, 2, 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63, -(2**63), 10**30]
ints = st.sampled_from(EDGE_INTS) | st.integers() | st.just(1)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e30, -0.0, 1.5])
texts = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20)
scalars = st.none() | st.booleans() | ints | floats | texts
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
RESULT_FIELDS = ["seq", "id", "status", "attempt", "latency_ms", "code", "error", "type"]
FIELDS = [
    *RESULT_FIELDS,
    "items",
    "name",
    "pattern",
    "from",
    "mode",
    "window",
    "ack_wait",
    "pattern_change",
    "protocol",
    "client",
    "delivery",
    "fatal",
]
TYPES = ["hello", "subscribe", "result", "results", "event", "live", "error", "welcome", "zzz"]
result_items = st.dictionaries(st.sampled_from(RESULT_FIELDS), values | st.just(1), max_size=7)
messages = st.builds(
    lambda kind, fields, items: {
        "type": kind,
        **fields,
        **({"items": items} if kind == "results" else {}),
    },
    st.sampled_from(TYPES),
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=6),
    st.lists(result_items | values, max_size=4),
)
#: Answers to the three events really in flight, each with one random number (the others
#: left at their defaults): these pass the id check and reach the store.
POKED = ("attempt", "latency_ms", "code")
poke_values = st.sampled_from(EDGE_INTS) | floats | ints
real_answers = st.tuples(
    st.sampled_from(["delivered", "failed"]), poke_values, poke_values, poke_values
).map(
    lambda drawn: [{"status": drawn[0], name: v} for name, v in zip(POKED, drawn[1:], strict=True)]
)
frames = st.lists(messages.map(lambda m: json.dumps(m)) | texts, min_size=1, max_size=4)


class Problems(logging.Handler):
    """Keeps every record at ERROR or above, and any with a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


@pytest.fixture
def problems() -> Iterator[Problems]:
    handler = Problems()
    loggers = [logging.getLogger(name) for name in ("hook", "aiohttp", "asyncio")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture
def live_relay(tmp_path: Path) -> Iterator[tuple[LoopThread, RunningRelay]]:
    """A relay with a token and three stored events, in a background loop."""
    thread = LoopThread()
    relay = thread.run(start_relay(relay_settings(tmp_path / "relay", tokens={TOKEN: "team"})))

    async def seed() -> None:
        async with aiohttp.ClientSession() as session:
            for n in range(3):
                async with session.post(f"{relay.url}/v1/ingest/c", json={"n": n}) as r:
                    assert r.status == 202

    thread.run(seed())
    yield thread, relay
    thread.run(relay.stop())
    thread.stop()


async def still_serving(relay: RunningRelay) -> None:
    """A normal client still gets welcome, subscribed and the stored events; health is ok."""
    async with connect(relay.ws_url, additional_headers=AUTH) as ws:
        await ws.send(json.dumps({"type": "hello", "protocol": 1}))
        async with asyncio.timeout(UNIT):
            assert json.loads(await ws.recv())["type"] == "welcome"
            await ws.send(
                json.dumps({"type": "subscribe", "name": "probe", "from": 0, "mode": "tail"})
            )
            assert json.loads(await ws.recv())["type"] == "subscribed"
            assert json.loads(await ws.recv())["seq"] == 1
    async with aiohttp.ClientSession() as session:

        async def health() -> dict[str, Any]:
            async with session.get(f"{relay.url}/v1/health") as r:
                body: dict[str, Any] = await r.json()
                return body

        # Answers are written every 50 ms: wait for the write, so its failure shows here.
        async with asyncio.timeout(UNIT):
            while (status := await health())["ok"] and status["pending_results"]:
                await asyncio.sleep(0.01)
        assert status["ok"] is True, status


async def exchange(
    relay: RunningRelay, listen_first: bool, answers: list[dict[str, Any]], texts: list[str]
) -> None:
    """Send the frames (after a valid listen subscription and answers with random fields to
    the events it got, if asked), then wait until the relay has handled them all."""
    async with connect(relay.ws_url, additional_headers=AUTH, max_size=None) as ws:
        await ws.send(json.dumps({"type": "hello", "protocol": 1}))
        if listen_first:
            await ws.send(
                json.dumps(
                    {
                        "type": "subscribe",
                        "name": "fuzz",
                        "from": 0,
                        "window": 3,
                        "pattern_change": "keep-cursor",
                    }
                )
            )
            sent: list[dict[str, Any]] = []
            async with asyncio.timeout(UNIT):
                while len(sent) < 3:
                    message = json.loads(await ws.recv())
                    if message["type"] == "event":
                        sent.append(message)
            for fields, event in zip(answers, sent, strict=False):
                real = {"seq": event["seq"], "id": event["event"]["id"]}
                await ws.send(json.dumps({"type": "result", **fields, **real}))
        try:
            for text in texts:
                await ws.send(text)
            # A ping round trip: every frame sent before it has been handled.
            pong = await ws.ping()
            async with asyncio.timeout(UNIT):
                await pong
        except ConnectionClosed as exc:
            # Only a fatal error may close the connection, and then with the documented code.
            assert exc.rcvd is not None and exc.rcvd.code in (1000, 1008), exc


def test_random_websocket_messages_never_break_the_relay(
    live_relay: tuple[LoopThread, RunningRelay], problems: Problems
) -> None:
    """Random messages, fields and values: errors at most; no exception logged; still serving."""
    thread, relay = live_relay

    @FUZZ
    @given(real_answers | st.none(), frames)
    def check(answers: list[dict[str, Any]] | None, texts: list[str]) -> None:
        thread.run(exchange(relay, answers is not None, answers or [], texts))
        thread.run(still_serving(relay))
        assert not problems.records, [r.getMessage() for r in problems.records]

    check()


QUERY_KEYS = [
    "limit",
    "before",
    "after",
    "source",
    "detail_type",
    "listener",
    "status",
    "since",
    "until",
    "pattern",
    "full",
]
query_values = (
    st.sampled_from([str(n) for n in EDGE_INTS[::-1]])
    | floats.map(str)
    | st.integers().map(str)
    | texts
    | st.sampled_from(["pending", "failed", "delivered", "1", "now", "2024-01-01T00:00:00Z"])
    | values.map(json.dumps)
)
#: One parameter at a time (so an earlier 400 cannot hide it), or several together.
queries = st.builds(lambda key, value: {key: value}, st.sampled_from(QUERY_KEYS), query_values) | (
    st.dictionaries(st.sampled_from(QUERY_KEYS), query_values, max_size=5)
)


def test_random_history_queries_are_answered_below_500_with_hints(
    live_relay: tuple[LoopThread, RunningRelay], problems: Problems
) -> None:
    """Any query on ``GET /v1/events``: 200, or a 4xx JSON ``{"error", "hint"}``; never 500."""
    thread, relay = live_relay

    async def ask(query: dict[str, str]) -> tuple[int, Any]:
        async with aiohttp.ClientSession(headers=AUTH) as session:
            async with session.get(f"{relay.url}/v1/events", params=query) as r:
                return r.status, await r.json(content_type=None)

    @FUZZ
    @given(queries)
    def check(query: dict[str, str]) -> None:
        status, body = thread.run(ask(query))
        assert status < 500, (query, body)
        if status >= 400:
            assert body["error"] and body["hint"], (query, body)
        else:
            assert isinstance(body["events"], list)
        assert not problems.records, [r.getMessage() for r in problems.records]

    check()
