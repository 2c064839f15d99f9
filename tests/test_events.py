"""The event envelope: parsing, serializing, raw requests kept byte-exact, webhook envelopes."""

from __future__ import annotations

import gzip
import json
import re
import uuid
import zlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from hookcli.errors import InvalidEventError, UsageError
from hookcli.events import (
    ENVELOPE_FIELDS,
    Event,
    EventId,
    RawRequest,
    decode_content,
    event_from_request,
    format_time,
    headers_from,
    load_json_object,
    new_event_id,
    parse_event,
    short_text,
)

FULL: dict[str, Any] = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "Order Placed",
    "source": "shop.orders",
    "account": "111122223333",
    "time": "2024-05-01T12:00:00Z",
    "region": "eu-west-1",
    "resources": ["arn:aws:s3:::bucket"],
    "detail": {"order": {"id": 7, "total": 12.5, "items": ["a", "b"]}, "note": "caf\u00e9"},
}
MINIMAL: dict[str, Any] = {"id": "e1", "source": "s", "detail-type": "t", "detail": {}}

RECEIVED = datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=UTC)
#: JSON that CPython's parser cannot take: nested past the recursion limit, and an integer past
#: the 4300-digit int() limit (both raise something other than JSONDecodeError).
DEEP = "[" * 100_000
HUGE_INT = '{"n": ' + "1" * 5000 + "}"


def webhook(body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> Event:
    """The envelope ``event_from_request`` builds for ``body`` on channel ``github``."""
    request = RawRequest("POST", "/v1/ingest/github", "", headers, body)
    return event_from_request(
        "github", request, detail_type="push", event_id=EventId("w1"), received=RECEIVED
    )


def without(name: str) -> dict[str, Any]:
    return {k: v for k, v in MINIMAL.items() if k != name}


# --- parse_event -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [json.dumps(FULL), json.dumps(FULL).encode(), FULL],
    ids=["str", "bytes", "dict"],
)
def test_parse_event_accepts_text_bytes_and_objects(data: str | bytes | dict[str, Any]) -> None:
    """The same event parses from JSON text, UTF-8 bytes and a decoded object."""
    event = parse_event(data)
    assert event == Event(
        id=EventId(FULL["id"]),
        source="shop.orders",
        detail_type="Order Placed",
        detail=FULL["detail"],
        account="111122223333",
        region="eu-west-1",
        time="2024-05-01T12:00:00Z",
        resources=("arn:aws:s3:::bucket",),
        version="0",
    )


def test_parse_event_defaults_optional_fields() -> None:
    """Optional envelope fields default to empty values and version "0"."""
    event = parse_event(MINIMAL)
    assert (event.account, event.region, event.time, event.resources, event.version) == (
        "",
        "",
        "",
        (),
        "0",
    )
    assert event.replay_name is None and event.request is None


@pytest.mark.parametrize("name", ["id", "source", "detail-type", "detail"])
def test_parse_event_names_missing_required_field(name: str) -> None:
    """Each missing required field is named in the error, with a hint."""
    with pytest.raises(InvalidEventError, match=f"missing '{name}'") as info:
        parse_event(without(name))
    assert info.value.hint
    assert info.value.exit_code == 2


def test_parse_event_names_every_missing_field() -> None:
    """All missing required fields are listed at once."""
    with pytest.raises(InvalidEventError) as info:
        parse_event({"detail": {}})
    assert info.value.message == "event is missing 'id', 'source', 'detail-type'"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("id", 5),
        ("source", None),
        ("detail-type", ["x"]),
        ("version", 0),
        ("account", 111122223333),
        ("time", 1714564800),
        ("region", {}),
    ],
)
def test_parse_event_names_field_of_wrong_type(name: str, value: object) -> None:
    """A non-string envelope field is named in the error."""
    with pytest.raises(InvalidEventError, match=f"'{name}' must be a string"):
        parse_event({**MINIMAL, name: value})


def test_parse_event_rejects_empty_id() -> None:
    """An empty id cannot identify an event."""
    with pytest.raises(InvalidEventError, match="'id' must not be empty"):
        parse_event({**MINIMAL, "id": ""})


@pytest.mark.parametrize("detail", [None, [], "text", 3, True])
def test_parse_event_requires_detail_object(detail: object) -> None:
    """``detail`` must be a JSON object, as in EventBridge."""
    with pytest.raises(InvalidEventError, match="'detail' must be a JSON object"):
        parse_event({**MINIMAL, "detail": detail})


@pytest.mark.parametrize("resources", ["arn", {"a": "b"}, [1], ["ok", None], None])
def test_parse_event_requires_resources_list_of_strings(resources: object) -> None:
    """``resources`` must be a list of strings."""
    with pytest.raises(InvalidEventError, match="'resources' must be a list of strings"):
        parse_event({**MINIMAL, "resources": resources})


def test_parse_event_reads_replay_name() -> None:
    """EventBridge's ``replay-name`` is kept."""
    assert parse_event({**MINIMAL, "replay-name": "r1"}).replay_name == "r1"


def test_parse_event_rejects_non_string_replay_name() -> None:
    """A non-string ``replay-name`` is named in the error."""
    with pytest.raises(InvalidEventError, match="'replay-name' must be a string"):
        parse_event({**MINIMAL, "replay-name": 1})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("[1, 2]", "event must be a JSON object, not list"),
        ("42", "event must be a JSON object, not int"),
        ('{"id": ', "event is not valid JSON: Expecting value at line 1 column 8"),
        (b"\xff\xfe\xfa", "event is not UTF-8 text"),
    ],
)
def test_parse_event_rejects_non_object_text(data: str | bytes, message: str) -> None:
    """Text that is not a JSON object is an InvalidEventError saying why."""
    with pytest.raises(InvalidEventError) as info:
        parse_event(data)
    assert info.value.message.startswith(message)


# --- to_dict / to_json -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [FULL, MINIMAL, {**MINIMAL, "replay-name": "r1"}, {**MINIMAL, "detail": {"x": [None, 1.5]}}],
    ids=["full", "minimal", "replay", "nested"],
)
def test_to_json_round_trips(data: dict[str, Any]) -> None:
    """``parse_event(event.to_json())`` equals the original event."""
    event = parse_event(data)
    assert parse_event(event.to_json()) == event


def test_to_dict_writes_envelope_fields_in_aws_order() -> None:
    """``to_dict`` has exactly the envelope fields, in the order AWS writes them."""
    assert tuple(parse_event(FULL).to_dict()) == ENVELOPE_FIELDS


def test_to_dict_adds_replay_name_only_when_set() -> None:
    """``replay-name`` appears only for replayed events."""
    assert "replay-name" not in parse_event(MINIMAL).to_dict()
    assert parse_event({**MINIMAL, "replay-name": "r"}).to_dict()["replay-name"] == "r"


def test_to_json_is_compact_and_keeps_non_ascii() -> None:
    """``to_json`` is compact and writes non-ASCII characters as themselves."""
    text = parse_event(FULL).to_json()
    assert ", " not in text and ": " not in text
    assert "caf\u00e9" in text


def test_short_id_is_first_eight_characters() -> None:
    """``short_id`` is the id's first 8 characters."""
    assert parse_event(FULL).short_id == "6a7e8feb"


def test_new_event_id_is_a_fresh_uuid() -> None:
    """New ids are distinct UUID strings."""
    first, second = new_event_id(), new_event_id()
    assert first != second
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", first)


# --- RawRequest --------------------------------------------------------------------------------

SIGNED = RawRequest(
    method="POST",
    path="/v1/ingest/github",
    query="a=1&a=2&b",
    headers=(
        ("Content-Type", "application/json"),
        ("X-Hub-Signature-256", "sha256=abc"),
        ("Set-Cookie", "one=1"),
        ("set-cookie", "two=2"),
        ("Set-Cookie", "three=3"),
    ),
    body=b'{ "spaced" :  true }\n\xff\x00\x80',
)


@pytest.mark.parametrize(
    "request_",
    [
        SIGNED,
        RawRequest("GET", "/", "", (), b""),
        RawRequest("PUT", "/x", "q", (("A", ""),), bytes(range(256))),
    ],
    ids=["signed", "empty", "all-bytes"],
)
def test_raw_request_round_trips_byte_exact(request_: RawRequest) -> None:
    """``from_dict(to_dict())`` gives back the same method, path, query, headers and body bytes."""
    wire = json.loads(json.dumps(request_.to_dict()))
    assert RawRequest.from_dict(wire) == request_


def test_raw_request_keeps_repeated_headers_in_order() -> None:
    """Repeated headers keep their order and their spelling on the wire."""
    pairs = SIGNED.to_dict()["headers"]
    assert [v for k, v in pairs if k.lower() == "set-cookie"] == ["one=1", "two=2", "three=3"]
    assert [k for k, _ in pairs] == [k for k, _ in SIGNED.headers]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("content-type", "application/json"),
        ("CONTENT-TYPE", "application/json"),
        ("x-hub-signature-256", "sha256=abc"),
        ("SET-COOKIE", "one=1"),
        ("X-Missing", None),
    ],
)
def test_header_is_case_insensitive_first_value(name: str, value: str | None) -> None:
    """``header()`` finds the first value whatever the case, or None."""
    assert SIGNED.header(name) == value


def test_raw_request_from_dict_defaults() -> None:
    """Missing wire fields default to a POST with no path, query, headers or body."""
    assert RawRequest.from_dict({}) == RawRequest("POST", "", "", (), b"")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"body_b64": "not base64!"}, "bad headers or body_b64"),
        ({"body_b64": "\u00e9"}, "bad headers or body_b64"),
        ({"headers": [["only-name"]]}, "bad headers or body_b64"),
        ({"headers": 5}, "bad headers or body_b64"),
        ({"headers": None}, "bad headers or body_b64"),
        ({"method": 1}, "request.method must be a string"),
        ({"path": None}, "request.path must be a string"),
        ({"query": []}, "request.query must be a string"),
    ],
)
def test_raw_request_from_dict_rejects_bad_fields(data: dict[str, Any], message: str) -> None:
    """A malformed wire request is an InvalidEventError naming the field."""
    with pytest.raises(InvalidEventError, match=re.escape(message)):
        RawRequest.from_dict(data)


def test_raw_request_from_dict_rejects_null_body() -> None:
    """A ``body_b64`` of null is rejected, not decoded as the text 'None'."""
    with pytest.raises(InvalidEventError):
        RawRequest.from_dict({"body_b64": None})


def test_headers_from_freezes_pairs_in_order() -> None:
    """``headers_from`` keeps order and repeats."""
    assert headers_from([("A", "1"), ("a", "2")]) == (("A", "1"), ("a", "2"))


# --- event_from_request ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"action": "opened", "n": 1}', {"action": "opened", "n": 1}),
        (b"{}", {}),
        (b"[1, 2]", {"body": [1, 2]}),
        (b'"text"', {"body": "text"}),
        (b"42", {"body": 42}),
        (b"true", {"body": True}),
        (b"a=1&b=2", {}),
        (b"{not json", {}),
        (b"\xff\xfe\xfa", {}),
        (b"", {}),
    ],
    ids=[
        "object",
        "empty-object",
        "array",
        "string",
        "number",
        "bool",
        "form",
        "broken",
        "binary",
        "empty",
    ],
)
def test_event_from_request_detail(body: bytes, detail: dict[str, Any]) -> None:
    """A JSON object body is the detail, other JSON goes under ``body``, anything else is {}."""
    assert webhook(body).detail == detail


def test_event_from_request_null_body_goes_under_body() -> None:
    """A JSON ``null`` body is other JSON, so it goes under ``detail.body``."""
    assert webhook(b"null").detail == {"body": None}


@pytest.mark.parametrize("body", [DEEP.encode(), HUGE_INT.encode()], ids=["deep", "huge-int"])
def test_event_from_request_survives_unparseable_json(body: bytes) -> None:
    """A body too deep or with too long a number for the JSON parser gets an empty detail."""
    assert webhook(body).detail == {}


def test_event_from_request_envelope() -> None:
    """Source is ``webhook.<channel>``; id, detail-type and request are as given."""
    event = webhook(b"{}", (("X-Sig", "s"),))
    assert (event.source, event.detail_type, event.id) == ("webhook.github", "push", "w1")
    assert event.request is not None and event.request.header("x-sig") == "s"


@pytest.mark.parametrize(
    ("received", "text"),
    [
        (RECEIVED, "2024-05-01T12:30:45Z"),
        (
            datetime(2024, 5, 1, 14, 30, 45, tzinfo=timezone(timedelta(hours=2))),
            "2024-05-01T12:30:45Z",
        ),
        (datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "1999-12-31T23:59:59Z"),
    ],
)
def test_format_time_is_utc_seconds_with_z(received: datetime, text: str) -> None:
    """``format_time`` writes EventBridge's ``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    assert format_time(received) == text


def test_event_from_request_time_format() -> None:
    """A webhook's ``time`` is the receive time in EventBridge's format."""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", webhook(b"{}").time)
    assert webhook(b"{}").time == "2024-05-01T12:30:45Z"


@pytest.mark.parametrize(
    ("headers", "body", "detail_type"),
    [
        ((("x-github-event", "push"),), b"{}", "push"),
        ((("X-GITHUB-EVENT", "issues"), ("X-GitHub-Event", "push")), b"{}", "issues"),
        ((("stripe-signature", "t=1,v1=ab"),), b'{"type": "charge.succeeded"}', "charge.succeeded"),
        ((("Content-Type", "application/json"),), b'{"type": "charge.succeeded"}', "webhook"),
        ((), b"{}", "webhook"),
    ],
    ids=["lower-case", "first-of-repeats", "stripe-body-type", "unknown-sender", "no-headers"],
)
def test_event_from_request_sender_type(
    headers: tuple[tuple[str, str], ...], body: bytes, detail_type: str
) -> None:
    """Without a configured detail-type, a known sender's own type is found whatever the case
    of its header's name (the first value of a repeated one); any other sender's is webhook."""
    request = RawRequest("POST", "", "", headers, body)
    event = event_from_request(
        "hooks", request, detail_type=None, event_id=EventId("w1"), received=RECEIVED
    )
    assert event.detail_type == detail_type


def test_webhook_event_survives_the_wire() -> None:
    """A webhook event's JSON parses back to an equal event."""
    event = webhook(b'{"a": [1, {"b": null}]}')
    assert parse_event(event.to_json()) == event


# --- load_json_object --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "pattern is not valid JSON: Expecting property name enclosed in double quotes"),
        ('{"a": 1,\n  "b": }', "pattern is not valid JSON: Expecting value at line 2 column 8"),
        ("", "pattern is not valid JSON: Expecting value at line 1 column 1"),
        ("null", "pattern must be a JSON object, not NoneType"),
        ('"x"', "pattern must be a JSON object, not str"),
        (b"\x80", "pattern is not UTF-8 text"),
    ],
)
def test_load_json_object_errors_name_what_and_where(text: str | bytes, message: str) -> None:
    """Errors name the input and, for syntax errors, the line and column."""
    with pytest.raises(InvalidEventError) as info:
        load_json_object(text, "pattern")
    assert info.value.message.startswith(message)
    assert isinstance(info.value, UsageError)


def test_load_json_object_returns_object() -> None:
    """A JSON object comes back as a dict."""
    assert load_json_object(b'{"a": [1]}', "x") == {"a": [1]}


@pytest.mark.parametrize("text", [DEEP, HUGE_INT], ids=["deep", "huge-int"])
def test_load_json_object_rejects_unparseable_json(text: str) -> None:
    """JSON too deep or with a too-long number is an InvalidEventError, not a crash."""
    with pytest.raises(InvalidEventError):
        load_json_object(text, "event")


# --- short_text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "limit", "text"),
    [
        ("short", 120, "short"),
        ("line one\n  line two\t\tend", 120, "line one line two end"),
        ("  padded  ", 120, "padded"),
        ("abcdefghij", 10, "abcdefghij"),
        ("abcdefghijk", 10, "abcdefghi\u2026"),
        ({"a": [1, 2]}, 120, '{"a":[1,2]}'),
        ({"text": "x\ny"}, 120, '{"text":"x\\ny"}'),
        (None, 120, "null"),
        ("x" * 500, 120, "x" * 119 + "\u2026"),
    ],
)
def test_short_text_is_one_bounded_line(value: Any, limit: int, text: str) -> None:
    """``short_text`` folds whitespace to single spaces and cuts to ``limit`` with an ellipsis."""
    result = short_text(value, limit)
    assert result == text
    assert len(result) <= limit and "\n" not in result


_JSON = b'{"a": [1, 2, 3]}'


@pytest.mark.parametrize(
    ("body", "encoding", "limit", "expected"),
    [
        (_JSON, None, 4, _JSON),  # not encoded: the body as is, whatever the limit
        (gzip.compress(_JSON), "gzip", 100, _JSON),
        (gzip.compress(_JSON), "X-GZIP", 100, _JSON),
        (zlib.compress(_JSON), "deflate", 100, _JSON),
        (zlib.compress(_JSON)[2:-4], "deflate", 100, _JSON),  # raw DEFLATE, no zlib wrapper
        (gzip.compress(zlib.compress(_JSON)), "deflate, gzip", 100, _JSON),
        (gzip.compress(_JSON), "identity, gzip", 100, _JSON),
        (gzip.compress(_JSON), "gzip", len(_JSON) - 1, None),  # decodes past the limit
        (gzip.compress(bytes(10**7)), "gzip", 1024, None),  # a zip bomb stops at the limit
        (gzip.compress(_JSON)[:-4], "gzip", 100, None),  # truncated
        (b"not gzip at all", "gzip", 100, None),
        (_JSON, "br", 100, None),  # not in the stdlib: left undecoded
    ],
)
def test_decode_content(
    body: bytes, encoding: str | None, limit: int, expected: bytes | None
) -> None:
    """Content-Encoding is undone within the limit; anything else gives None."""
    assert decode_content(body, encoding, limit) == expected


def test_compressed_webhook_keeps_wire_bytes_and_parses_detail() -> None:
    """A gzip JSON body becomes detail while request.body stays compressed."""
    wire = gzip.compress(_JSON)
    request = RawRequest("POST", "", "", (("Content-Encoding", "gzip"),), wire)
    event = event_from_request(
        "c", request, detail_type="webhook", event_id=new_event_id(), received=datetime.now(UTC)
    )
    assert event.detail == {"a": [1, 2, 3]}
    assert event.request is not None and event.request.body == wire


# --- ids and times as ingest makes them (built by hand for speed: same text as the stdlib) ---


def test_new_event_id_is_a_canonical_random_uuid() -> None:
    """Each id reads back as the same version-4, RFC-variant UUID, and ids do not repeat."""
    ids = [new_event_id() for _ in range(2000)]
    for text in ids:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 5, 1, 12, 30, 45, 999_999, tzinfo=UTC),
        datetime(2024, 5, 1, 14, 30, 45, tzinfo=timezone(timedelta(hours=2))),
        datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),
        datetime(2024, 12, 31, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2024, 2, 29, 0, 0, 0),
    ],
    ids=["utc-fraction", "offset", "before-1970", "offset-new-year", "naive-local"],
)
def test_format_time_matches_strftime_of_the_utc_moment(moment: datetime) -> None:
    """The second-cached text is what strftime gives for the moment in UTC."""
    assert format_time(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
