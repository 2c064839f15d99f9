"""An event's JSON text as received: kept byte for byte through the relay, and a key it gives
twice matched with every value, as `hook pattern test` reads the same text (issue 11).

The relay end of it runs a real relay on moto's SQS: the test writes EventBridge's message
body into the relay's queue itself, because moto's EventBridge re-encodes events (json.dumps),
which would drop a repeated key before the relay ever sees it.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_commands import hook, http, ingest
from websockets.asyncio.client import connect

from hookcli.events import (
    EventId,
    RawRequest,
    decode_event_text,
    event_from_request,
    parse_event,
    with_account,
)
from hookcli.patterns import compile_pattern, load_event
from hookcli.protocol import EventMessage, decode
from hookcli.relay.service import RunningRelay, start_relay
from hookcli.relay.store import StoredEvent
from hookcli.sources.emulator import CREDENTIALS
from hookcli.sources.eventbridge import AwsSettings, sqs_client

from conftest import UNIT, LoopThread, RecordingTarget, auth_headers, relay_settings, wait_until


def envelope(event_id: str, detail_text: str, *, extra: str = "") -> str:
    """EventBridge's SQS message body for one event, with ``detail`` spelled as given."""
    return (
        f'{{"version":"0","id":"{event_id}","detail-type":"Order Placed","source":"shop",'
        f'"account":"123456789012","time":"2026-12-01T10:00:00Z","region":"us-east-1",'
        f'"resources":[]{extra},"detail":{detail_text}}}'
    )


REPEATED = envelope("ev-1", '{"a":"x","a":"y"}')

# --------------------------------------------------------------------------- the core


@pytest.mark.parametrize(
    "text",
    [
        REPEATED,
        envelope("ev-2", '{ "n": 1e3, "price": 2.50, "big": 12345678901234567890 }'),
        envelope("ev-3", '{"name":"caf\\u00e9 \u2603","nested":{"k":[1, 2 ,3]}}'),
        "\n  " + envelope("ev-4", "{}") + " \r\n",
    ],
    ids=["repeated", "number-spelling", "escapes-and-spaces", "outer-whitespace"],
)
def test_parse_event_keeps_the_text_it_was_given(text: str) -> None:
    """to_json() is the received text (outer whitespace trimmed): no re-encoding."""
    assert parse_event(text).to_json() == text.strip()


@pytest.mark.parametrize("value", ["x", "y"])
def test_every_value_of_a_repeated_key_matches(value: str) -> None:
    """{"a":"x","a":"y"}: both values match, as load_event (hook pattern test) reads it."""
    event = parse_event(REPEATED)
    pattern = compile_pattern({"detail": {"a": [value]}})
    assert event.repeated_keys
    assert pattern.matches(event.document)
    assert pattern.matches(load_event(event.to_json()))


def test_line_breaks_between_tokens_are_dropped_so_json_lines_output_holds() -> None:
    """A pretty-printed body becomes one line (same JSON); an escaped \\n in a string stays."""
    text = (
        '{\r\n  "id": "ev-9",\n  "source": "s",\n  "detail-type": "d",\n'
        '  "detail": {"a": "x\\ny"}\n}'
    )
    kept = parse_event(text).to_json()
    assert "\n" not in kept and "\r" not in kept
    assert kept == text.replace("\r", "").replace("\n", "")
    assert json.loads(kept) == json.loads(text)


def test_a_value_the_text_never_gave_does_not_match() -> None:
    """The repeated-key structure adds candidates only: a third value still does not match."""
    assert not compile_pattern({"detail": {"a": ["z"]}}).matches(parse_event(REPEATED).document)


def test_an_ordinary_event_is_plain_json_data() -> None:
    """Without a repeated key the document is json.loads' plain dict (the fast paths)."""
    text = envelope("ev-5", '{"a":{"b":[1,2]}}')
    event = parse_event(text)
    assert not event.repeated_keys
    assert event.document == json.loads(text)
    assert type(event.document) is dict and type(event.detail["a"]) is dict


def test_a_repeated_top_level_key_offers_every_value() -> None:
    """A key repeated in the envelope itself (here "source") is matched with each value."""
    event = parse_event(envelope("ev-6", "{}", extra=',"source":"other"'))
    assert event.source == "other"
    assert compile_pattern({"source": ["shop"]}).matches(event.document)
    assert compile_pattern({"source": ["other"]}).matches(event.document)


def test_with_account_puts_the_account_in_front_and_keeps_the_rest() -> None:
    """moto's SQS bodies lack `account`: the relay adds it; every other byte stays."""
    text = REPEATED.replace('"account":"123456789012",', "")
    event = with_account(parse_event(text), "111122223333")
    assert event.account == "111122223333"
    assert event.to_json() == '{"account":"111122223333",' + text[1:]
    assert event.repeated_keys
    assert compile_pattern({"account": ["111122223333"], "detail": {"a": ["x"]}}).matches(
        event.document
    )


def test_with_account_on_a_repeated_top_level_key_keeps_both_values() -> None:
    """The rare shape where the envelope repeats a key is parsed again after the insert."""
    text = envelope("ev-7", "{}", extra=',"source":"other"').replace(
        '"account":"123456789012",', ""
    )
    event = with_account(parse_event(text), "1")
    assert compile_pattern({"account": ["1"], "source": ["shop"]}).matches(event.document)


def test_with_account_replaces_an_empty_account() -> None:
    """An `account` present but empty is set (the text is written again, account last)."""
    text = REPEATED.replace('"123456789012"', '""')
    event = with_account(parse_event(text), "42")
    assert event.account == "42"
    assert json.loads(event.to_json())["account"] == "42"


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        (b'{"type":"a","type":"b"}', {"detail": {"type": ["a"]}}),
        (b'{"type":"a",\n "type":"b"}', {"detail": {"type": ["b"]}}),
        (b'[{"k":1,"k":2}]', {"detail": {"body": {"k": [1]}}}),
    ],
    ids=["object", "pretty-object", "array"],
)
def test_a_webhook_body_repeating_a_key_keeps_every_value(
    body: bytes, pattern: dict[str, Any]
) -> None:
    """The envelope's text carries the body's text, so the store and listeners keep both."""
    request = RawRequest("POST", "", "", (("Content-Type", "application/json"),), body)
    made = event_from_request(
        "shop", request, detail_type=None, event_id=EventId("w1"), received=datetime.now(UTC)
    )
    again = parse_event(made.to_json())  # what a catch-up read or a listener gets
    assert made.repeated_keys and again.repeated_keys
    assert compile_pattern(pattern).matches(made.document)
    assert compile_pattern(pattern).matches(again.document)


def test_an_ordinary_webhook_body_is_written_compact_as_before() -> None:
    """Without a repeated key the event's text is json.dumps' (the body stays in `request`)."""
    request = RawRequest("POST", "", "", (), b'{ "a" : 1 }')
    made = event_from_request(
        "shop", request, detail_type=None, event_id=EventId("w2"), received=datetime.now(UTC)
    )
    assert not made.repeated_keys
    assert made.to_json().endswith(',"detail":{"a":1}}')


# --------------------------------------------------------------------------- the relay


@pytest.fixture
def sqs_relay(tmp_path: Path, loop_thread: LoopThread) -> Iterator[RunningRelay]:
    """A relay on moto's emulated bus and queue, named uniquely (moto's state is shared)."""
    name = f"text-{uuid.uuid4().hex[:8]}"
    running = loop_thread.run(
        start_relay(relay_settings(tmp_path / "relay", source=True, name=name))
    )
    yield running
    loop_thread.run(running.stop())


def put_in_queue(relay: RunningRelay, body: str) -> None:
    """Write an SQS message body into the relay's queue, as EventBridge's SQS target does."""
    sqs = sqs_client(
        AwsSettings(
            region=relay.info.region,
            endpoint_url=relay.info.endpoint_url,
            credentials=CREDENTIALS,
        )
    )
    sqs.send_message(QueueUrl=relay.info.queue_url, MessageBody=body)


async def first_event(relay: RunningRelay, pattern: dict[str, Any], start: Any) -> str:
    """Subscribe (tail mode) and return the first event frame's text."""
    async with connect(relay.ws_url, additional_headers=auth_headers()) as ws:
        await ws.send(json.dumps({"type": "hello", "protocol": 1}))
        await ws.recv()
        subscribe = {"type": "subscribe", "name": "t", "pattern": pattern, "from": start}
        await ws.send(json.dumps({**subscribe, "mode": "tail"}))
        assert json.loads(await ws.recv())["type"] == "subscribed"
        async with asyncio.timeout(UNIT * 2):
            while True:
                frame = await ws.recv()
                assert isinstance(frame, str)
                if frame.startswith('{"type":"event"'):
                    return frame


def stored(relay: RunningRelay, loop_thread: LoopThread, event_id: str) -> StoredEvent | None:
    """The relay's stored row for ``event_id`` (read on the relay's own loop thread)."""

    async def get() -> StoredEvent | None:
        return relay.relay.store.get(event_id)

    return loop_thread.run(get())


def event_text_of(frame: str) -> str:
    """The event's JSON text inside an ``event`` frame, as a listener forwards it."""
    message = decode(frame)
    assert isinstance(message, EventMessage)
    return message.event.to_json()


@pytest.mark.slow
@pytest.mark.parametrize("value", ["x", "y"])
def test_the_relay_fans_out_on_every_value_of_a_repeated_key(
    sqs_relay: RunningRelay, loop_thread: LoopThread, value: str
) -> None:
    """A live listener on {"a":[value]} gets the event; its text is the SQS body byte for
    byte, and `hook pattern test`'s reading of that text agrees with the relay."""
    pattern = {"detail": {"a": [value]}}
    body = envelope(f"live-{value}-{uuid.uuid4().hex[:6]}", '{"a":"x", "a":"y","n":2.50}')
    waiting = asyncio.run_coroutine_threadsafe(
        first_event(sqs_relay, pattern, "now"), loop_thread.loop
    )
    wait_until(lambda: sqs_relay.relay._sessions != {}, what="the subscription")
    put_in_queue(sqs_relay, body)
    frame = waiting.result(UNIT * 3)
    assert event_text_of(frame) == body
    assert f',"event":{body}}}' in frame
    assert compile_pattern(pattern).matches(load_event(event_text_of(frame)))


@pytest.mark.slow
@pytest.mark.parametrize("value", ["x", "y"])
def test_a_catching_up_listener_matches_every_value_of_a_repeated_key(
    sqs_relay: RunningRelay, loop_thread: LoopThread, value: str
) -> None:
    """Read back from the store (subscribe from 0), the stored text matches the same way."""
    event_id = f"stored-{value}-{uuid.uuid4().hex[:6]}"
    body = envelope(event_id, '{"a":"x","a":"y"}')
    put_in_queue(sqs_relay, body)
    wait_until(lambda: stored(sqs_relay, loop_thread, event_id) is not None, what="the event")
    frame = loop_thread.run(first_event(sqs_relay, {"detail": {"a": [value]}}, 0))
    assert event_text_of(frame) == body


@pytest.mark.slow
def test_history_filters_by_pattern_on_every_value(
    sqs_relay: RunningRelay, loop_thread: LoopThread
) -> None:
    """`GET /v1/events?pattern=` keeps the event for "x" and "y", not for "z"."""
    event_id = f"hist-{uuid.uuid4().hex[:8]}"
    put_in_queue(sqs_relay, envelope(event_id, '{"a":"x","a":"y"}'))
    wait_until(lambda: stored(sqs_relay, loop_thread, event_id) is not None, what="the event")

    def ids(value: str) -> list[str]:
        pattern = json.dumps({"id": [event_id], "detail": {"a": [value]}})
        query = urllib.parse.urlencode({"pattern": pattern})
        return [
            row["event"]["id"]
            for row in http("GET", f"{sqs_relay.url}/v1/events?{query}")["events"]
        ]

    assert (ids("x"), ids("y"), ids("z")) == ([event_id], [event_id], [])


@pytest.mark.slow
def test_an_event_without_account_is_stored_with_it_and_otherwise_as_received(
    sqs_relay: RunningRelay, loop_thread: LoopThread
) -> None:
    """moto drops `account`: the relay puts its bus's account in front, nothing else changes."""
    event_id = f"acct-{uuid.uuid4().hex[:8]}"
    body = envelope(event_id, '{ "a" : "x" }').replace('"account":"123456789012",', "")
    put_in_queue(sqs_relay, body)
    wait_until(lambda: stored(sqs_relay, loop_thread, event_id) is not None, what="the event")
    row = stored(sqs_relay, loop_thread, event_id)
    assert row is not None
    assert row.event_json == f'{{"account":"{sqs_relay.info.account}",' + body[1:]


def test_a_webhook_repeating_a_key_is_matched_on_every_value_from_the_store(
    relay: RunningRelay, loop_thread: LoopThread
) -> None:
    """Ingested, stored, then read back by a catching-up listener on the first value."""
    event_id = ingest(relay, "shop", b'{"type":"a","type":"b"}')
    frame = loop_thread.run(first_event(relay, {"detail": {"type": ["a"]}}, 0))
    message = decode(frame)
    assert isinstance(message, EventMessage) and message.event.id == event_id
    assert message.event.to_json().endswith(',"detail":{"type":"a","type":"b"}}')


# --------------------------------------------------------------------------- the check, at large

Pairs = list[tuple[str, Any]]
_keys = st.sampled_from(["a", "b", "c", "a.b", ""])
_leaves = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text("xy", max_size=2))


@st.composite
def _objects(draw: st.DrawFn, depth: int = 2) -> Pairs:
    """A JSON object as its member list: keys may repeat, values may nest."""
    values = _leaves if depth == 0 else st.one_of(_leaves, _objects(depth - 1))
    return draw(st.lists(st.tuples(_keys, values), max_size=4))


def _text_of(value: Any) -> str:
    if isinstance(value, list):
        return "{" + ",".join(f"{json.dumps(k)}:{_text_of(v)}" for k, v in value) + "}"
    return json.dumps(value)


def _repeats(value: Any) -> bool:
    if not isinstance(value, list):
        return False
    keys = [k for k, _ in value]
    return len(set(keys)) != len(keys) or any(_repeats(v) for _, v in value)


@settings(max_examples=200, deadline=None)
@given(_objects())
def test_the_repeated_key_check_agrees_with_load_event(members: Pairs) -> None:
    """Flagged exactly when some object repeats a key; the data reads as json.loads' (last
    values) and every top-level occurrence of a key is a candidate, as load_event's."""
    text = _text_of(members)
    data, repeated = decode_event_text(text)
    assert repeated == _repeats(members)
    assert data == load_event(text) == json.loads(text)
    assert decode_event_text(text, repeated)[0] == data
    for key, value in members:
        if isinstance(value, str) and key and "." not in key:
            assert compile_pattern({key: [value]}).matches(data)


@pytest.mark.slow
@pytest.mark.parametrize("value", ["x", "y"])
def test_hook_expect_agrees_with_the_relay_on_a_repeated_key(
    sqs_relay: RunningRelay, loop_thread: LoopThread, tmp_path: Path, value: str
) -> None:
    """`hook expect` (which matches locally) counts the event for either value, as the relay."""
    event_id = f"expect-{value}-{uuid.uuid4().hex[:6]}"
    put_in_queue(sqs_relay, envelope(event_id, '{"a":"x","a":"y"}'))
    wait_until(lambda: stored(sqs_relay, loop_thread, event_id) is not None, what="the event")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOK_", "AWS_"))}
    env["HOOK_CONFIG"] = str(tmp_path / "no-such-config.toml")
    pattern = json.dumps({"id": [event_id], "detail": {"a": [value]}})
    ran = hook(
        env, "expect", "--pattern", pattern, "--from", "0", "--timeout", "20s",
        "--relay", sqs_relay.url,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    assert [line["id"] for line in ran.lines()] == [event_id]


@pytest.mark.slow
def test_hook_replay_sends_the_stored_text_byte_for_byte(
    sqs_relay: RunningRelay,
    loop_thread: LoopThread,
    tmp_path: Path,
    http_target: RecordingTarget,
) -> None:
    """`hook replay ID` delivers the event's text as received, not a re-encoding of it."""
    event_id = f"replay-{uuid.uuid4().hex[:8]}"
    body = envelope(event_id, '{"a":"x", "a":"y","price":2.50,"n":1e3}')
    put_in_queue(sqs_relay, body)
    wait_until(lambda: stored(sqs_relay, loop_thread, event_id) is not None, what="the event")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOK_", "AWS_"))}
    env["HOOK_CONFIG"] = str(tmp_path / "no-such-config.toml")
    ran = hook(env, "replay", event_id, "--target", http_target.url, "--relay", sqs_relay.url)
    assert ran.code == 0, ran.stderr
    assert [r.body.decode() for r in http_target.requests] == [body]
