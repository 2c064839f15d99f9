"""The relay <-> listener wire protocol: every message round-trips; bad input is a ProtocolError."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookcli.errors import ProtocolError, RelayError
from hookcli.events import ENVELOPE_FIELDS, Event, EventId, RawRequest
from hookcli.protocol import (
    MAX_NAME_LENGTH,
    MAX_WINDOW,
    PROTOCOL_VERSION,
    Error,
    EventMessage,
    Hello,
    Live,
    Message,
    Result,
    Start,
    Subscribe,
    Subscribed,
    Unknown,
    Welcome,
    decode,
    encode,
    encode_event,
)

EVENT = Event(
    id=EventId("6a7e8feb-b491-4cf7-a9f1-bf3703467718"),
    source="shop.orders",
    detail_type="Order Placed",
    detail={"order": {"id": 7, "total": 12.5}, "note": "caf\u00e9"},
    account="111122223333",
    region="eu-west-1",
    time="2024-05-01T12:00:00Z",
    resources=("arn:aws:s3:::bucket",),
)
REQUEST = RawRequest(
    method="POST",
    path="/v1/ingest/github",
    query="a=1",
    headers=(("Content-Type", "application/json"), ("X-Sig", "1"), ("x-sig", "2")),
    body=b'{ "order" : 7 }\xff',
)
WEBHOOK = Event(
    id=EventId("w1"),
    source="webhook.github",
    detail_type="push",
    detail={"order": 7},
    time="2024-05-01T12:00:00Z",
    request=REQUEST,
)
EVENT_BODY = json.loads(EVENT.to_json())

MESSAGES: list[Message] = [
    Hello(),
    Hello(protocol=2, client="hook/0.1.0"),
    Welcome(relay="team", version="0.1.0", mode="local"),
    Subscribe(name="alice", pattern={}, start=Start("now")),
    Subscribe(
        name="alice laptop",
        pattern={"source": ["shop.orders"], "detail": {"total": [{"numeric": [">", 10]}]}},
        start=Start("time", time="2024-05-01T12:00:00Z"),
        mode="tail",
        window=1000,
    ),
    Subscribe(name="b", pattern={}, start=Start("seq", seq=42), window=1),
    Subscribe(name="c", pattern={}, start=Start("last")),
    Subscribe(name="d", pattern={}, start=Start("last"), target="http://localhost:3000/"),
    Subscribed(name="alice", start=41, head=99, resumed=True, window=100),
    EventMessage(seq=1, event=EVENT),
    EventMessage(seq=2, event=WEBHOOK),
    Live(seq=99),
    Result(seq=1, id="e1", status="delivered", attempt=1, latency_ms=1.25),
    Result(seq=2, id="e2", status="failed", attempt=3, latency_ms=0.0, code=500, error="boom"),
    Result(seq=3, id="e3", status="failed", code=127),
    Result(seq=4, id="e4", status="failed", error="connection refused"),
    Error(code="invalid-pattern", message="bad pattern", fatal=True),
    Error(code="not-subscribed", message="subscribe first"),
    Unknown("future-thing", {"type": "future-thing", "x": [1, 2]}),
]


def message_id(message: Message) -> str:
    return type(message).__name__


def subscribe(**fields: Any) -> str:
    return json.dumps({"type": "subscribe", "name": "alice", **fields})


def result(**fields: Any) -> str:
    return json.dumps({"type": "result", "seq": 1, "id": "e1", "status": "delivered", **fields})


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("message", MESSAGES, ids=message_id)
def test_decode_inverts_encode(message: Message) -> None:
    """``decode(encode(m)) == m`` for every message type."""
    assert decode(encode(message)) == message


@pytest.mark.parametrize("message", MESSAGES, ids=message_id)
def test_encode_is_compact_json_with_type(message: Message) -> None:
    """Every encoded message is one compact JSON object whose ``type`` is the message's."""
    text = encode(message)
    assert json.loads(text)["type"] == message.type
    assert json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False) == text


def test_event_message_round_trips_raw_request() -> None:
    """An event's raw request survives the wire byte-exact (Event equality ignores it)."""
    decoded = decode(encode(EventMessage(seq=2, event=WEBHOOK)))
    assert isinstance(decoded, EventMessage)
    assert decoded.event.request == REQUEST


def test_event_message_without_request_has_none() -> None:
    """An event without a request has no ``request`` key and decodes with none."""
    text = encode(EventMessage(seq=1, event=EVENT))
    assert "request" not in json.loads(text)
    decoded = decode(text)
    assert isinstance(decoded, EventMessage) and decoded.event.request is None


@pytest.mark.parametrize("event", [EVENT, WEBHOOK], ids=["plain", "webhook"])
def test_encode_event_matches_encode(event: Event) -> None:
    """The relay's pre-serialized ``encode_event`` gives the same JSON as ``encode``."""
    request_json = json.dumps(event.request.to_dict()) if event.request else None
    fast = encode_event(7, event.to_json(), request_json)
    assert json.loads(fast) == json.loads(encode(EventMessage(seq=7, event=event)))


@pytest.mark.parametrize(
    ("message", "absent"),
    [
        (Result(seq=1, id="e", status="delivered"), {"code", "error"}),
        (Result(seq=1, id="e", status="failed", code=502), {"error"}),
        (Result(seq=1, id="e", status="failed", error="x"), {"code"}),
    ],
)
def test_result_omits_unset_code_and_error(message: Result, absent: set[str]) -> None:
    """A result leaves out ``code`` and ``error`` when they are not set."""
    assert not absent & set(json.loads(encode(message)))


def test_result_latency_is_rounded_to_microseconds() -> None:
    """``latency_ms`` goes on the wire with three decimals."""
    assert json.loads(encode(Result(1, "e", "delivered", latency_ms=1.23456789)))[
        "latency_ms"
    ] == pytest.approx(1.235)


def test_subscribe_defaults() -> None:
    """A bare subscribe means: all events, after the cursor, listen mode, window 100."""
    assert decode(subscribe()) == Subscribe(name="alice", pattern={}, start=Start("last"))


def test_decode_accepts_bytes() -> None:
    """Binary frames holding UTF-8 JSON decode like text."""
    assert decode(encode(Live(seq=3)).encode()) == Live(seq=3)


def test_hello_defaults_to_current_protocol() -> None:
    """``Hello()`` speaks the current protocol version."""
    assert json.loads(encode(Hello()))["protocol"] == PROTOCOL_VERSION


# --- Start.parse -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "start"),
    [
        ("now", Start("now")),
        ("last", Start("last")),
        (0, Start("seq", seq=0)),
        (42, Start("seq", seq=42)),
        ("42", Start("seq", seq=42)),
        ("007", Start("seq", seq=7)),
        ("2024-05-01T12:00:00Z", Start("time", time="2024-05-01T12:00:00Z")),
        ("2024-05-01T12:00:00+02:00", Start("time", time="2024-05-01T12:00:00+02:00")),
        ("2024-05-01T12:00:00.5Z", Start("time", time="2024-05-01T12:00:00.5Z")),
    ],
)
def test_start_parse_accepts(value: object, start: Start) -> None:
    """``from`` takes now, last, a sequence (int or digits) or an ISO time with a timezone."""
    assert Start.parse(value) == start


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-05-01T12:00:00", "needs a timezone"),
        ("2024-05-01", "needs a timezone"),
        (-1, "sequence must be >= 0"),
        ("-1", "is not now, last, a sequence number or an ISO time"),
        (True, "must be now, last, a sequence number or an ISO time"),
        (False, "must be now, last, a sequence number or an ISO time"),
        ("", "must be now, last, a sequence number or an ISO time"),
        (None, "must be now, last, a sequence number or an ISO time"),
        (1.5, "must be now, last, a sequence number or an ISO time"),
        (["now"], "must be now, last, a sequence number or an ISO time"),
        ("yesterday", "'yesterday' is not now, last"),
        ("NOW", "'NOW' is not now, last"),
    ],
)
def test_start_parse_rejects(value: object, message: str) -> None:
    """Anything else is a ProtocolError saying what ``from`` may be."""
    with pytest.raises(ProtocolError, match=re.escape(message)):
        Start.parse(value)


@pytest.mark.parametrize("value", ["\u00b2", "9" * 5000], ids=["superscript-two", "5000-digits"])
def test_start_parse_rejects_digits_int_cannot_read(value: str) -> None:
    """Digit strings ``int()`` refuses (non-decimal digits, past 4300 digits) are ProtocolErrors."""
    with pytest.raises(ProtocolError):
        Start.parse(value)


@pytest.mark.parametrize("start", [Start("now"), Start("last"), Start("seq", seq=5)])
def test_start_to_wire_parses_back(start: Start) -> None:
    """``Start.parse(start.to_wire()) == start``."""
    assert Start.parse(start.to_wire()) == start


# --- decode errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "message is not valid JSON"),
        ("", "message is not valid JSON"),
        (b"\xff\xfe\xfa", "message is not valid JSON"),
        ("[]", "message must be a JSON object"),
        ('"hello"', "message must be a JSON object"),
        ("null", "message must be a JSON object"),
        ("{}", "message needs a string 'type'"),
        ('{"type": 1}', "message needs a string 'type'"),
        ('{"type": null}', "message needs a string 'type'"),
        # subscribe
        (subscribe(name=""), f"subscribe: 'name' must be 1-{MAX_NAME_LENGTH} printable"),
        (subscribe(name="x" * 201), "subscribe: 'name' must be 1-200 printable"),
        (subscribe(name="a\nb"), "subscribe: 'name' must be 1-200 printable"),
        (subscribe(name="a\x00"), "subscribe: 'name' must be 1-200 printable"),
        (subscribe(name=5), "subscribe: 'name' must be str, got int"),
        ('{"type": "subscribe"}', "subscribe: 'name' must be str, got NoneType"),
        (subscribe(pattern=[]), "subscribe: 'pattern' must be a JSON object"),
        (subscribe(pattern="{}"), "subscribe: 'pattern' must be a JSON object"),
        (subscribe(mode="push"), "subscribe: 'mode' must be one of listen, tail"),
        (subscribe(mode=None), "subscribe: 'mode' must be one of listen, tail"),
        (subscribe(window=0), f"subscribe: 'window' must be an integer from 1 to {MAX_WINDOW}"),
        (subscribe(window=1001), "subscribe: 'window' must be an integer from 1 to 1000"),
        (subscribe(window=True), "subscribe: 'window' must be an integer from 1 to 1000"),
        (subscribe(window=10.0), "subscribe: 'window' must be an integer from 1 to 1000"),
        (subscribe(**{"from": "2024-05-01T00:00:00"}), "needs a timezone"),
        (subscribe(**{"from": -3}), "'from' sequence must be >= 0"),
        # result
        (result(status="ok"), "result: 'status' must be delivered or failed"),
        (result(status=None), "result: 'status' must be delivered or failed"),
        (result(attempt=0), "result: 'attempt' must be an integer >= 1"),
        (result(attempt=True), "result: 'attempt' must be an integer >= 1"),
        (result(attempt="2"), "result: 'attempt' must be an integer >= 1"),
        (result(latency_ms=-0.5), "result: 'latency_ms' must be a number >= 0"),
        (result(latency_ms=False), "result: 'latency_ms' must be a number >= 0"),
        (result(latency_ms="1"), "result: 'latency_ms' must be a number >= 0"),
        (result(seq="1"), "result: 'seq' must be int, got str"),
        (result(seq=1.0), "result: 'seq' must be int, got float"),
        (result(seq=True), "result: 'seq' must be a number"),
        (result(code=True), "result: 'code' must be a number"),
        (result(code="500"), "result: 'code' must be int, got str"),
        (result(error=5), "result: 'error' must be str, got int"),
        (result(id=None), "result: 'id' must be str, got NoneType"),
        # the others
        ('{"type": "live", "seq": "3"}', "live: 'seq' must be int, got str"),
        ('{"type": "live", "seq": true}', "live: 'seq' must be a number"),
        ('{"type": "live"}', "live: 'seq' must be int, got NoneType"),
        ('{"type": "hello"}', "hello: 'protocol' must be int, got NoneType"),
        ('{"type": "hello", "protocol": true}', "hello: 'protocol' must be a number"),
        ('{"type": "welcome", "version": "1", "mode": "m", "protocol": 1}', "welcome: 'relay'"),
        (
            '{"type": "subscribed", "name": "a", "start": 0, "head": "9", "window": 1}',
            "subscribed: 'head' must be int, got str",
        ),
        ('{"type": "error", "code": "internal"}', "error: 'message' must be str"),
        ('{"type": "event", "event": {}}', "event: 'seq' must be int, got NoneType"),
        ('{"type": "event", "seq": 1, "event": []}', "event: 'event' must be dict, got list"),
        ('{"type": "event", "seq": 1, "event": {}}', "event: event is missing 'id'"),
        (
            json.dumps({"type": "event", "seq": 1, "event": {**EVENT_BODY, "detail": []}}),
            "event: event field 'detail' must be a JSON object",
        ),
        (
            json.dumps({"type": "event", "seq": 1, "event": EVENT_BODY, "request": "raw"}),
            "event: 'request' must be a JSON object",
        ),
        (
            json.dumps(
                {"type": "event", "seq": 1, "event": EVENT_BODY, "request": {"body_b64": "!"}}
            ),
            "event: request: bad headers or body_b64",
        ),
    ],
)
def test_decode_rejects_with_clear_message(text: str | bytes, message: str) -> None:
    """A malformed message is a ProtocolError (a RelayError, exit 3) saying what is wrong."""
    with pytest.raises(ProtocolError) as info:
        decode(text)
    assert message in info.value.message
    assert isinstance(info.value, RelayError) and info.value.exit_code == 3


@pytest.mark.parametrize(
    "text",
    ['{"type": "shutdown-soon", "in": 5}', '{"type": ""}', '{"type": "HELLO", "protocol": 1}'],
)
def test_decode_returns_unknown_for_new_types(text: str) -> None:
    """An unknown type is returned as ``Unknown`` with its data, for peers to ignore."""
    decoded = decode(text)
    assert decoded == Unknown(json.loads(text)["type"], json.loads(text))


def test_subscribe_name_may_be_max_length() -> None:
    """A name of exactly the maximum length is accepted."""
    decoded = decode(subscribe(name="x" * MAX_NAME_LENGTH))
    assert isinstance(decoded, Subscribe) and len(decoded.name) == MAX_NAME_LENGTH


def test_result_error_is_capped() -> None:
    """A result's error text is cut to 2000 characters."""
    decoded = decode(result(error="e" * 5000))
    assert isinstance(decoded, Result) and decoded.error == "e" * 2000


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000, '{"type": "live", "seq": ' + "1" * 5000 + "}"],
    ids=["deep", "huge-int"],
)
def test_decode_rejects_json_the_parser_cannot_take(text: str) -> None:
    """JSON nested too deep or with a 5000-digit number is a ProtocolError, not a crash."""
    with pytest.raises(ProtocolError):
        decode(text)


@pytest.mark.parametrize("latency", [float("nan"), float("inf")], ids=["NaN", "Infinity"])
def test_decode_rejects_non_finite_latency(latency: float) -> None:
    """Python's non-standard NaN/Infinity (which json.dumps writes) are not latencies."""
    with pytest.raises(ProtocolError):
        decode(result(latency_ms=latency))


# --- properties --------------------------------------------------------------------------------

# Deterministic: a property run is reproducible and never flaky; no example database on disk.
PROPERTY = settings(
    derandomize=True,
    database=None,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

KNOWN_TYPES = ["hello", "welcome", "subscribe", "subscribed", "event", "live", "result", "error"]
FIELDS = [
    "protocol",
    "client",
    "relay",
    "version",
    "mode",
    "name",
    "pattern",
    "from",
    "window",
    "start",
    "head",
    "resumed",
    "seq",
    "event",
    "request",
    "id",
    "status",
    "attempt",
    "latency_ms",
    "code",
    "error",
    "message",
    "fatal",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["now", "last", "listen", "tail", "delivered", "failed", "", "0", "7"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=6,
)
event_bodies = st.fixed_dictionaries(
    {}, optional={name: json_values for name in (*ENVELOPE_FIELDS, "replay-name")}
)
request_bodies = st.fixed_dictionaries(
    {},
    optional={
        "method": json_values,
        "path": json_values,
        "query": json_values,
        "headers": st.lists(st.lists(st.text(max_size=5), max_size=3), max_size=3) | json_values,
        "body_b64": st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode())
        | json_values,
    },
)
field_values = json_values | event_bodies | request_bodies
messages = st.fixed_dictionaries(
    {"type": st.sampled_from(KNOWN_TYPES) | st.text(max_size=10)},
    optional={
        **{name: field_values for name in FIELDS},
        "event": event_bodies | json_values,
        "request": request_bodies | json_values,
    },
)


@PROPERTY
@given(st.text() | st.binary())
def test_decode_of_any_text_raises_only_protocol_error(text: str | bytes) -> None:
    """``decode`` on arbitrary text or bytes returns a message or raises ProtocolError."""
    try:
        decode(text)
    except ProtocolError:
        pass


@PROPERTY
@given(messages)
def test_decode_of_any_object_raises_only_protocol_error(data: dict[str, Any]) -> None:
    """``decode`` on arbitrary objects with known or random types never raises anything else."""
    try:
        decoded = decode(json.dumps(data))
    except ProtocolError:
        return
    assert decoded.type == data["type"]


printable_names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
    min_size=1,
    max_size=MAX_NAME_LENGTH,
).filter(str.isprintable)
offsets = st.integers(min_value=-1439, max_value=1439).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
times = st.builds(
    lambda moment, zone, zulu: (
        moment.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
        if zulu
        else moment.replace(tzinfo=zone).isoformat()
    ),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 31)),
    offsets,
    st.booleans(),
)
starts = (
    st.sampled_from([Start("now"), Start("last")])
    | st.integers(min_value=0, max_value=2**63 - 1).map(lambda n: Start("seq", seq=n))
    | times.map(lambda t: Start("time", time=t))
)
subscribes = st.builds(
    Subscribe,
    name=printable_names,
    pattern=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    start=starts,
    mode=st.sampled_from(["listen", "tail"]),
    window=st.integers(min_value=1, max_value=MAX_WINDOW),
)
results = st.builds(
    Result,
    seq=st.integers(min_value=0, max_value=2**63 - 1),
    id=st.text(max_size=40),
    status=st.sampled_from(["delivered", "failed"]),
    attempt=st.integers(min_value=1, max_value=1000),
    latency_ms=st.floats(min_value=0, max_value=86_400_000).map(lambda x: round(x, 3)),
    code=st.none() | st.integers(min_value=-64, max_value=599),
    error=st.none() | st.text(max_size=2000),
)


@PROPERTY
@given(subscribes | results)
def test_decode_inverts_encode_for_generated_messages(message: Subscribe | Result) -> None:
    """``decode(encode(m)) == m`` for any valid Subscribe or Result."""
    assert decode(encode(message)) == message


def test_results_batch_round_trips() -> None:
    """A results message carries several results and decodes to the same ones."""
    from hookcli.protocol import Results

    items = (
        Result(seq=1, id="a", status="delivered", attempt=1, latency_ms=1.5, code=200),
        Result(seq=2, id="b", status="failed", attempt=3, latency_ms=9.0, code=503, error="x"),
    )
    assert decode(encode(Results(items))) == Results(items)


@pytest.mark.parametrize(
    "text",
    ['{"type":"results","items":[]}', '{"type":"results","items":{}}'],
)
def test_results_batch_rejects_a_bad_list(text: str) -> None:
    """An empty or non-list batch is a ProtocolError naming results."""
    with pytest.raises(ProtocolError, match="result"):
        decode(text)


def test_results_batch_is_judged_item_by_item() -> None:
    """Valid items of a batch are kept; each bad one is rejected with its index and seq."""
    from hookcli.protocol import Rejected, Results

    text = json.dumps(
        {
            "type": "results",
            "items": [
                {"seq": 1, "id": "a", "status": "delivered"},
                1,
                {"seq": 3, "id": "c", "status": "maybe"},
                {"seq": 2**63, "id": "d", "status": "delivered"},
                {"seq": 5, "id": "e", "status": "failed", "code": 2**63},
            ],
        }
    )
    decoded = decode(text)
    assert isinstance(decoded, Results)
    assert [item.seq for item in decoded.items] == [1]
    assert [(r.index, r.seq) for r in decoded.rejected] == [(1, None), (2, 3), (3, None), (4, 5)]
    assert all(isinstance(r, Rejected) and r.message for r in decoded.rejected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (result(code=2**63), "'code' must be an integer from -2147483648 to 2147483647"),
        (result(code=-(2**31) - 1), "'code' must be an integer from"),
        (result(code=200.0), "'code' must be int, got float"),
        (result(attempt=1e30), "'attempt' must be an integer >= 1"),
        (result(attempt=10_001), "'attempt' must be an integer >= 1 (at most 10000)"),
        (result(latency_ms=1e30), "'latency_ms' must be a number >= 0 (at most 86400000"),
        (result(seq=2**63), "'seq' must be an integer from 0 to 9223372036854775807"),
        (result(seq=-1), "'seq' must be an integer from 0"),
        (result(id="x" * 201), "'id' must be at most 200 characters"),
        (subscribe(**{"from": 2**63}), "'from' sequence must be at most 9223372036854775807"),
        (subscribe(**{"from": "9" * 30}), "'from' sequence must be at most"),
        (subscribe(**{"from": 1e30}), "'from' must be now, last"),
        (subscribe(ack_wait=0), "'ack_wait' must be a number of seconds from 0.1 to 86400"),
        (subscribe(ack_wait=1e30), "'ack_wait' must be a number of seconds"),
        (subscribe(ack_wait=True), "'ack_wait' must be a number of seconds"),
        (subscribe(ack_wait="5"), "'ack_wait' must be a number of seconds"),
        (subscribe(pattern_change="jump"), "'pattern_change' must be one of refuse, keep-cursor"),
        (subscribe(target=3000), "'target' must be text of at most 2000 characters"),
        (subscribe(target="x" * 2001), "'target' must be text of at most 2000 characters"),
        ('{"type": "hello", "protocol": 1e30}', "hello: 'protocol' must be int, got float"),
        ('{"type": "hello", "protocol": 3000000000}', "hello: 'protocol' must be an integer"),
        ('{"type": "live", "seq": 9223372036854775808}', "live: 'seq' must be an integer"),
        (
            json.dumps({"type": "event", "seq": 1, "delivery": 0, "event": EVENT_BODY}),
            "event: 'delivery' must be an integer from 1",
        ),
    ],
)
def test_numbers_out_of_range_are_refused(text: str, message: str) -> None:
    """Every number from the wire is range-checked (SQLite's signed 64 bits, sane bounds)."""
    with pytest.raises(ProtocolError) as info:
        decode(text)
    assert message in info.value.message


@pytest.mark.parametrize(
    ("text", "seq"),
    [
        (result(code=2**63), 1),
        (result(seq=2**63), None),
        ('{"type":"result","seq":7,"status":"x"}', 7),
        ('{"type":"hello"}', None),
        ("[[[", None),
    ],
)
def test_result_seq_names_the_refused_result(text: str, seq: int | None) -> None:
    """``result_seq`` finds the valid seq of an undecodable result (to name it in the error)."""
    from hookcli.protocol import result_seq

    assert result_seq(text) == seq


def test_event_delivery_round_trips_through_the_fast_path() -> None:
    """A redelivered event keeps its delivery count and its exact JSON text."""
    event_json = json.dumps(EVENT_BODY, separators=(",", ":"))
    text = encode_event(9, event_json, None, delivery=3)
    decoded = decode(text)
    assert isinstance(decoded, EventMessage)
    assert (decoded.seq, decoded.delivery) == (9, 3)
    assert decoded.event.to_json() == event_json


def test_event_without_delivery_counts_as_first() -> None:
    """An event frame from an older relay (no ``delivery``) is a first delivery."""
    decoded = decode(json.dumps({"type": "event", "seq": 2, "event": EVENT_BODY}))
    assert isinstance(decoded, EventMessage) and decoded.delivery == 1


def test_error_round_trips_with_hint_and_context() -> None:
    """An error carries its hint and, when set, seq, index and the two patterns."""
    message = Error(
        code="pattern-changed",
        message="changed",
        hint="say pattern_change",
        seq=4,
        index=1,
        old_pattern={"a": [1]},
        new_pattern={},
    )
    assert decode(encode(message)) == message
    assert "seq" not in json.loads(encode(Error(code="internal", message="m")))


EVENT_TEXT = (
    '{"type":"event","seq":7,"event":{"version":"0","id":"a","detail-type":"d","source":"s",'
    '"account":"","time":"","region":"","resources":[],"detail":{"x":1e3,"p":2.50,"u":"\\u00e9"}}}'
)


def test_event_fast_path_keeps_the_wire_text() -> None:
    """An event's JSON reaches targets as the relay sent it (1e3 and 2.50 keep their spelling)."""
    message = decode(EVENT_TEXT)
    assert isinstance(message, EventMessage)
    assert message.event.to_json() == EVENT_TEXT[len('{"type":"event","seq":7,"event":') : -1]
    assert message.event.detail == {"x": 1000.0, "p": 2.5, "u": "é"}


def test_event_fast_path_agrees_with_the_general_path() -> None:
    """The same message with its keys reordered (general path) decodes to the same event."""
    reordered = json.dumps({"seq": 7, "event": json.loads(EVENT_TEXT)["event"], "type": "event"})
    fast, general = decode(EVENT_TEXT), decode(reordered)
    assert isinstance(fast, EventMessage) and isinstance(general, EventMessage)
    assert (fast.seq, fast.event) == (general.seq, general.event)


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"event","seq":',
        '{"type":"event","seq":x,"event":{}}',
        '{"type":"event","seq":-1,"event":{}}',
        '{"type":"event","seq":1,"event":[1]}',
        '{"type":"event","seq":1,"event":{"id":"a"}}',
        '{"type":"event","seq":1,"event":{"id":"a"},"request":7}',
        '{"type":"event","seq":1,"event":{"id":"a"} trailing',
        '{"type":"event","seq":1,"event":' + "[" * 100_000,
    ],
)
def test_event_fast_path_rejects_lookalikes(text: str) -> None:
    """Text that starts like an event but is not one gets a ProtocolError, nothing else."""
    with pytest.raises(ProtocolError):
        decode(text)


@pytest.mark.parametrize(
    "result",
    [
        Result(seq=1, id="a", status="delivered"),
        Result(seq=2, id='q"uote\\', status="failed", attempt=4, latency_ms=10000.0, code=503),
        Result(seq=3, id="x", status="failed", latency_ms=0.1234567, error="é\n\t\ud800 tab"),
        Result(seq=4, id="y", status="delivered", latency_ms=1e-7, code=0),
    ],
)
def test_result_encoding_is_json_for_any_text(result: Result) -> None:
    """The hand-built result message is valid JSON, decodes to the same result, and is ASCII."""
    text = encode(result)
    assert text.isascii()
    assert json.loads(text)["type"] == "result"
    decoded = decode(text)
    assert isinstance(decoded, Result)
    assert decoded.seq == result.seq and decoded.id == result.id
    assert (decoded.status, decoded.attempt, decoded.code) == (
        result.status,
        result.attempt,
        result.code,
    )
    assert decoded.error == result.error
    assert decoded.latency_ms == pytest.approx(round(result.latency_ms, 3))


numbers = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([2**63 - 1, 2**63, -(2**31) - 1, 2**31, 1e30, 0, 1])
)


@PROPERTY
@given(
    st.fixed_dictionaries(
        {"seq": numbers, "id": st.text(max_size=5), "status": st.sampled_from(["delivered"])},
        optional={"attempt": numbers, "latency_ms": numbers, "code": numbers},
    )
)
def test_a_decoded_result_has_every_number_in_range(fields: dict[str, Any]) -> None:
    """Whatever numbers a result carries, one that decodes fits SQLite and its documented range."""
    from hookcli.protocol import MAX_ATTEMPT, MAX_CODE, MAX_LATENCY_MS, MAX_SEQ, MIN_CODE

    try:
        decoded = decode(json.dumps({"type": "result", **fields}))
    except ProtocolError:
        return
    assert isinstance(decoded, Result)
    assert 0 <= decoded.seq <= MAX_SEQ and type(decoded.seq) is int
    assert 1 <= decoded.attempt <= MAX_ATTEMPT and type(decoded.attempt) is int
    assert 0 <= decoded.latency_ms <= MAX_LATENCY_MS
    assert decoded.code is None or MIN_CODE <= decoded.code <= MAX_CODE


@PROPERTY
@given(
    st.fixed_dictionaries(
        {"name": st.just("a")}, optional={"from": numbers, "window": numbers, "ack_wait": numbers}
    )
)
def test_a_decoded_subscribe_has_every_number_in_range(fields: dict[str, Any]) -> None:
    """A subscribe that decodes has its start seq, window and ack_wait within their ranges."""
    from hookcli.protocol import MAX_ACK_WAIT, MAX_SEQ, MIN_ACK_WAIT

    try:
        decoded = decode(json.dumps({"type": "subscribe", **fields}))
    except ProtocolError:
        return
    assert isinstance(decoded, Subscribe)
    assert 0 <= decoded.start.seq <= MAX_SEQ
    assert 1 <= decoded.window <= MAX_WINDOW
    assert MIN_ACK_WAIT <= decoded.ack_wait <= MAX_ACK_WAIT
