"""The relay <-> listener wire protocol: JSON text messages with a ``type`` field.

Core module: parse and serialize only, no sockets (like python-websockets' ``protocol.py``).
docs/protocol.md is the prose version, enough to write a client in another language.

    client                                relay
      hello {protocol, client}      ->
                                    <-    welcome {protocol, relay, version, mode}
      subscribe {name, pattern,     ->
                 from, mode, window,
                 ack_wait, pattern_change}
                                    <-    subscribed {name, start, head, resumed, window}
                                    <-    event {seq, delivery, event, request?}  (seq order;
                                                                            redelivered after
                                                                            ack_wait unanswered)
                                    <-    live {seq}                        (backlog sent)
      result {seq, id, status, ...} ->                                      (listen mode only)
      results {items: [result...]}  ->                                      (a batch of results)
                                    <-    error {code, message, hint, fatal, seq?, index?}

Every number from the wire is range-checked here (SQLite integers are signed 64-bit: a larger
one would raise deep inside the relay instead of getting a clear error).

Unknown message types are returned as ``Unknown`` so both sides can ignore them (newer peers).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from json.encoder import encode_basestring_ascii as _string
from typing import Any, Literal, TypeGuard

from hookcli.errors import InvalidEventError, ProtocolError, UsageError
from hookcli.events import Event, RawRequest, parse_event

PROTOCOL_VERSION = 1

Mode = Literal["listen", "tail"]
Status = Literal["delivered", "failed"]
ErrorCode = Literal[
    "bad-message",
    "id-mismatch",
    "start-past-head",
    "pattern-changed",
    "unsupported-protocol",
    "invalid-pattern",
    "not-subscribed",
    "already-subscribed",
    "unauthorized",
    "internal",
]
StartKind = Literal["now", "last", "seq", "time"]
#: What a listen subscription does when its name's stored pattern differs from the new one.
PatternChange = Literal["refuse", "keep-cursor", "restart"]
_MODES = ("listen", "tail")
_STATUSES = ("delivered", "failed")
_PATTERN_CHANGES = ("refuse", "keep-cursor", "restart")
MAX_NAME_LENGTH = 200
#: Longest target description a listener reports (``subscribe.target``, a replay's ``target``).
MAX_TARGET_LENGTH = 2000
MAX_WINDOW = 1000
#: Sequence numbers are SQLite INTEGERs: signed 64-bit.
MAX_SEQ = 2**63 - 1
#: Event ids are at most this long (EventBridge's are 36; webhooks get a uuid).
MAX_ID_LENGTH = 200
MAX_ATTEMPT = 10_000
#: A result's ``code`` (HTTP status or exit code) is a 32-bit signed integer.
MIN_CODE, MAX_CODE = -(2**31), 2**31 - 1
#: One attempt lasting longer than a day is not a latency but a bug.
MAX_LATENCY_MS = 86_400_000.0
MAX_ERROR_LENGTH = 2000
#: Seconds an event may stay unanswered before the relay sends it again (JetStream's AckWait).
DEFAULT_ACK_WAIT = 30.0
MIN_ACK_WAIT, MAX_ACK_WAIT = 0.1, 86_400.0
#: ``hello.protocol`` is a small version number; anything beyond this is not one.
MAX_PROTOCOL = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Start:
    """Where a subscription starts: ``now``, ``last`` (after the cursor), a sequence or a time."""

    kind: StartKind
    seq: int = 0
    time: str = ""

    @classmethod
    def parse(cls, value: object) -> Start:
        """Parse ``now`` | ``last`` | a sequence (int or digits) | an ISO-8601 time."""
        if isinstance(value, bool):
            raise ProtocolError("'from' must be now, last, a sequence number or an ISO time")
        if isinstance(value, int):
            if value < 0:
                raise ProtocolError("'from' sequence must be >= 0")
            if value > MAX_SEQ:
                raise ProtocolError(f"'from' sequence must be at most {MAX_SEQ}")
            return cls("seq", seq=value)
        if not isinstance(value, str) or not value:
            raise ProtocolError("'from' must be now, last, a sequence number or an ISO time")
        if value in ("now", "last"):
            return cls(value)  # type: ignore[arg-type]
        if value.isascii() and value.isdigit():
            if len(value) > 19 or int(value) > MAX_SEQ:
                raise ProtocolError(f"'from' sequence must be at most {MAX_SEQ}")
            return cls("seq", seq=int(value))
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ProtocolError(
                f"'from' value {value!r} is not now, last, a sequence number or an ISO time"
            ) from None
        if moment.tzinfo is None:
            raise ProtocolError(f"'from' time {value!r} needs a timezone (e.g. a trailing Z)")
        return cls("time", time=value)

    def to_wire(self) -> str | int:
        """The JSON value of ``from``."""
        if self.kind == "seq":
            return self.seq
        if self.kind == "time":
            return self.time
        return self.kind


@dataclass(frozen=True, slots=True)
class Hello:
    """Client's first message: the protocol version it speaks."""

    protocol: int = PROTOCOL_VERSION
    client: str = ""
    type: Literal["hello"] = "hello"


@dataclass(frozen=True, slots=True)
class Welcome:
    """Relay's answer to hello."""

    relay: str
    version: str
    mode: str
    protocol: int = PROTOCOL_VERSION
    type: Literal["welcome"] = "welcome"


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Ask for the events matching ``pattern`` ({} = all), from ``start``.

    ``window`` bounds the events in flight (sent, not yet answered) in listen mode; one left
    unanswered ``ack_wait`` seconds is sent again. ``pattern_change`` says what to do when the
    name's stored pattern differs: refuse (an error), keep the cursor, or restart from now.
    """

    name: str
    pattern: dict[str, Any]
    start: Start
    mode: Mode = "listen"
    window: int = 100
    ack_wait: float = DEFAULT_ACK_WAIT
    pattern_change: PatternChange = "refuse"
    #: What the listener delivers to (``http://localhost:3000/``): kept with each result.
    target: str | None = None
    type: Literal["subscribe"] = "subscribe"


@dataclass(frozen=True, slots=True)
class Subscribed:
    """The relay accepted the subscription; events with ``seq > start`` follow."""

    name: str
    start: int
    head: int
    resumed: bool
    window: int
    type: Literal["subscribed"] = "subscribed"


@dataclass(frozen=True, slots=True)
class EventMessage:
    """One stored event, in sequence order; ``delivery`` counts sends (2+: a redelivery)."""

    seq: int
    event: Event
    delivery: int = 1
    type: Literal["event"] = "event"


@dataclass(frozen=True, slots=True)
class Live:
    """Every stored event up to ``seq`` that matched was sent; what follows is live."""

    seq: int
    type: Literal["live"] = "live"


@dataclass(frozen=True, slots=True)
class Result:
    """The listener's answer for one event: what delivering it to the target did."""

    seq: int
    id: str
    status: Status
    attempt: int = 1
    latency_ms: float = 0.0
    code: int | None = None
    error: str | None = None
    type: Literal["result"] = "result"


@dataclass(frozen=True, slots=True)
class Rejected:
    """One item of a ``results`` batch that is not a valid result: its index and seq (if any)."""

    index: int
    seq: int | None
    message: str


@dataclass(frozen=True, slots=True)
class Results:
    """Several results in one message: what a listener finished in the same moment.

    Items are judged one by one: the valid ones are ``items``, the others ``rejected``.
    """

    items: tuple[Result, ...]
    rejected: tuple[Rejected, ...] = ()
    type: Literal["results"] = "results"


@dataclass(frozen=True, slots=True)
class Error:
    """Something the peer did wrong (or the relay failed); ``fatal`` closes the connection.

    ``seq``/``index`` name the refused result; ``old_pattern``/``new_pattern`` come with
    ``pattern-changed``.
    """

    code: ErrorCode
    message: str
    hint: str = ""
    fatal: bool = False
    seq: int | None = None
    index: int | None = None
    old_pattern: dict[str, Any] | None = None
    new_pattern: dict[str, Any] | None = None
    type: Literal["error"] = "error"


@dataclass(frozen=True, slots=True)
class Unknown:
    """A message type this version does not know; ignored so newer peers keep working."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)


Message = (
    Hello
    | Welcome
    | Subscribe
    | Subscribed
    | EventMessage
    | Live
    | Result
    | Results
    | Error
    | Unknown
)
#: The most results one ``results`` message may carry.
MAX_RESULTS = 1000


def encode(message: Message) -> str:
    """Serialize a message to compact JSON text."""
    data: dict[str, Any]
    match message:
        case EventMessage(seq=seq, event=event, delivery=delivery):
            data = {"type": "event", "seq": seq, "delivery": delivery, "event": event.to_dict()}
            if event.request is not None:
                data["request"] = event.request.to_dict()
        case Subscribe():
            data = {
                "type": "subscribe",
                "name": message.name,
                "pattern": message.pattern,
                "from": message.start.to_wire(),
                "mode": message.mode,
                "window": message.window,
                "ack_wait": message.ack_wait,
                "pattern_change": message.pattern_change,
            }
            if message.target is not None:
                data["target"] = message.target
        case Error():
            data = {
                name: value
                for name in message.__slots__
                if (value := getattr(message, name)) is not None
            }
        case Results(items=items):
            body = ",".join(encode(item) for item in items)
            return f'{{"type":"results","items":[{body}]}}'
        case Result():
            # Hand-built (one per delivered event, the listener's hot path); strings go through
            # json's C escaper (ASCII: a stray surrogate cannot break the frame's UTF-8), numbers
            # are ints and finite floats: valid JSON.
            latency = message.latency_ms if math.isfinite(message.latency_ms) else 0.0
            text = (
                f'{{"type":"result","seq":{message.seq},"id":{_string(message.id)},'
                f'"status":"{message.status}","attempt":{message.attempt},'
                f'"latency_ms":{round(latency, 3)!r}'
            )
            if message.code is not None:
                text += f',"code":{message.code}'
            if message.error is not None:
                text += f',"error":{_string(message.error)}'
            return text + "}"
        case Unknown():
            data = {**message.data, "type": message.type}
        case _:
            data = {name: getattr(message, name) for name in message.__slots__}
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def encode_event(seq: int, event_json: str, request_json: str | None, delivery: int = 1) -> str:
    """An ``event`` message from already-serialized parts (the relay's hot path: no re-encode)."""
    tail = f',"request":{request_json}' if request_json else ""
    return f'{{"type":"event","seq":{seq},"delivery":{delivery},"event":{event_json}{tail}}}'


_EVENT_PREFIX = '{"type":"event","seq":'
_DELIVERY_FIELD = ',"delivery":'
_REQUEST_FIELD = ',"request":'
_DECODER = json.JSONDecoder()


def decode(text: str | bytes) -> Message:
    """Parse one message; raises ProtocolError saying what is wrong (never anything else)."""
    if isinstance(text, str) and text.startswith(_EVENT_PREFIX):
        fast = _decode_event(text)
        if fast is not None:
            return fast
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, too deep
        raise ProtocolError(f"message is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ProtocolError("message must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("message needs a string 'type'")
    parser = _PARSERS.get(kind)
    if parser is None:
        return Unknown(kind, data)
    try:
        message: Message = parser(data)
    except InvalidEventError as exc:
        raise ProtocolError(f"{kind}: {exc.message}") from exc
    return message


def result_seq(text: str | bytes) -> int | None:
    """The valid ``seq`` of a ``result`` message that failed to decode, to name it in the error."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("type") != "result":
        return None
    seq = data.get("seq")
    return seq if _is_int(seq) and 0 <= seq <= MAX_SEQ else None


def parse_result(data: Mapping[str, Any]) -> Result:
    """One result object (the ``type`` key is not needed); raises ProtocolError when invalid."""
    return _result(data)


def _is_int(value: object) -> TypeGuard[int]:
    # JSON true/false are Python bools, an int subclass; 1.0 and 1e30 are floats: not integers.
    return isinstance(value, int) and not isinstance(value, bool)


def _field(data: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = data.get(name)
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ProtocolError(f"{where}: '{name}' must be a number")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ProtocolError(f"{where}: '{name}' must be {names}, got {type(value).__name__}")
    return value


def _int(data: Mapping[str, Any], name: str, where: str, low: int, high: int) -> int:
    """An integer field within [low, high] (a JSON float such as 1e30 is not an integer)."""
    value: int = _field(data, name, int, where)
    if not low <= value <= high:
        raise ProtocolError(f"{where}: '{name}' must be an integer from {low} to {high}")
    return value


def _seq(data: Mapping[str, Any], name: str, where: str) -> int:
    return _int(data, name, where, 0, MAX_SEQ)


def _opt(data: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    return None if data.get(name) is None else _field(data, name, kind, where)


def _hello(data: Mapping[str, Any]) -> Hello:
    return Hello(
        protocol=_int(data, "protocol", "hello", 0, MAX_PROTOCOL),
        client=str(data.get("client", ""))[:MAX_NAME_LENGTH],
    )


def _welcome(data: Mapping[str, Any]) -> Welcome:
    return Welcome(
        relay=_field(data, "relay", str, "welcome"),
        version=_field(data, "version", str, "welcome"),
        mode=_field(data, "mode", str, "welcome"),
        protocol=_int(data, "protocol", "welcome", 0, MAX_PROTOCOL),
    )


def _subscribe(data: Mapping[str, Any]) -> Subscribe:
    name = _field(data, "name", str, "subscribe")
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise ProtocolError(f"subscribe: 'name' must be 1-{MAX_NAME_LENGTH} printable characters")
    pattern = data.get("pattern", {})
    if not isinstance(pattern, dict):
        raise ProtocolError("subscribe: 'pattern' must be a JSON object")
    mode = data.get("mode", "listen")
    if mode not in _MODES:
        raise ProtocolError(f"subscribe: 'mode' must be one of {', '.join(_MODES)}")
    window = data.get("window", 100)
    if not _is_int(window) or not 1 <= window <= MAX_WINDOW:
        raise ProtocolError(f"subscribe: 'window' must be an integer from 1 to {MAX_WINDOW}")
    ack_wait = data.get("ack_wait", DEFAULT_ACK_WAIT)
    if (
        isinstance(ack_wait, bool)
        or not isinstance(ack_wait, int | float)
        or not MIN_ACK_WAIT <= ack_wait <= MAX_ACK_WAIT  # also refuses NaN
    ):
        raise ProtocolError(
            f"subscribe: 'ack_wait' must be a number of seconds from {MIN_ACK_WAIT:g}"
            f" to {MAX_ACK_WAIT:g}"
        )
    change = data.get("pattern_change", "refuse")
    if change not in _PATTERN_CHANGES:
        raise ProtocolError(
            f"subscribe: 'pattern_change' must be one of {', '.join(_PATTERN_CHANGES)}"
        )
    target = data.get("target")
    if target is not None and (not isinstance(target, str) or len(target) > MAX_TARGET_LENGTH):
        raise ProtocolError(
            f"subscribe: 'target' must be text of at most {MAX_TARGET_LENGTH} characters"
        )
    return Subscribe(
        name=name,
        pattern=pattern,
        start=Start.parse(data.get("from", "last")),
        mode=mode,
        window=window,
        ack_wait=float(ack_wait),
        pattern_change=change,
        target=target,
    )


def _subscribed(data: Mapping[str, Any]) -> Subscribed:
    return Subscribed(
        name=_field(data, "name", str, "subscribed"),
        start=_seq(data, "start", "subscribed"),
        head=_seq(data, "head", "subscribed"),
        resumed=bool(data.get("resumed", False)),
        window=_int(data, "window", "subscribed", 1, MAX_WINDOW),
    )


def _event(data: Mapping[str, Any]) -> EventMessage:
    seq = _seq(data, "seq", "event")
    delivery = _int(data, "delivery", "event", 1, MAX_SEQ) if "delivery" in data else 1
    body = _field(data, "event", dict, "event")
    event = parse_event(body)
    request = data.get("request")
    if request is not None:
        if not isinstance(request, dict):
            raise ProtocolError("event: 'request' must be a JSON object")
        event = _with_request(event, RawRequest.from_dict(request))
    return EventMessage(seq=seq, event=event, delivery=delivery)


def _decode_event(text: str) -> EventMessage | None:
    """The event fast path for ``encode_event``'s layout: parse once, and keep the event's own
    JSON text, so a target receives the exact bytes the relay stored (no re-encoding: numbers
    like ``1e3`` or ``2.50`` keep their spelling). None: not that layout, use the general path.
    """
    try:
        seq_end = text.index(',"event":', len(_EVENT_PREFIX))
        numbers = text[len(_EVENT_PREFIX) : seq_end]
        seq_text, found, delivery_text = numbers.partition(_DELIVERY_FIELD)
        # Digits only: int() would also take " 7", "+7" or "7_0", which are not JSON.
        if not (seq_text.isascii() and seq_text.isdigit() and len(seq_text) <= 19):
            return None
        seq = int(seq_text)
        delivery = 1
        if found:
            if not (delivery_text.isascii() and delivery_text.isdigit()):
                return None
            if len(delivery_text) > 19:
                return None
            delivery = int(delivery_text)
        start = seq_end + len(',"event":')
        body, end = _DECODER.raw_decode(text, start)
        request = None
        if text.startswith(_REQUEST_FIELD, end):
            # Decoded where it stands (no copy of the ~1.4x body text it carries in base64).
            request, request_end = _DECODER.raw_decode(text, end + len(_REQUEST_FIELD))
            if len(text) != request_end + 1:
                return None
        elif len(text) != end + 1:
            return None
        if text[-1] != "}":
            return None
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict) or seq > MAX_SEQ or not 1 <= delivery <= MAX_SEQ:
        return None
    try:
        event = parse_event(body)
        if request is not None:
            if not isinstance(request, dict):
                raise ProtocolError("event: 'request' must be a JSON object")
            event = _with_request(event, RawRequest.from_dict(request))
    except InvalidEventError as exc:
        raise ProtocolError(f"event: {exc.message}") from exc
    object.__setattr__(event, "_json", text[start:end])
    return EventMessage(seq=seq, event=event, delivery=delivery)


def _with_request(event: Event, request: RawRequest) -> Event:
    # The event was just parsed and is not shared yet: set the field instead of copying every
    # field with dataclasses.replace (once per webhook on the listener's hot path).
    object.__setattr__(event, "request", request)
    return event


def _live(data: Mapping[str, Any]) -> Live:
    return Live(seq=_seq(data, "seq", "live"))


def _result(data: Mapping[str, Any]) -> Result:
    status = data.get("status")
    if status not in _STATUSES:
        raise ProtocolError("result: 'status' must be delivered or failed")
    attempt = data.get("attempt", 1)
    if not _is_int(attempt) or not 1 <= attempt <= MAX_ATTEMPT:
        raise ProtocolError(f"result: 'attempt' must be an integer >= 1 (at most {MAX_ATTEMPT})")
    latency = data.get("latency_ms", 0.0)
    if (
        isinstance(latency, bool)
        or not isinstance(latency, int | float)
        or not 0 <= latency <= MAX_LATENCY_MS  # also refuses NaN (every comparison is False)
    ):
        raise ProtocolError(
            f"result: 'latency_ms' must be a number >= 0 (at most {MAX_LATENCY_MS:.0f}, a day)"
        )
    code = _opt(data, "code", int, "result")
    if code is not None and not MIN_CODE <= code <= MAX_CODE:
        raise ProtocolError(
            f"result: 'code' must be an integer from {MIN_CODE} to {MAX_CODE} (a 32-bit integer)"
        )
    error = _opt(data, "error", str, "result")
    seq = _field(data, "seq", int, "result")
    if not 0 <= seq <= MAX_SEQ:
        raise ProtocolError(f"result: 'seq' must be an integer from 0 to {MAX_SEQ}")
    event_id = _field(data, "id", str, "result")
    if len(event_id) > MAX_ID_LENGTH:
        raise ProtocolError(f"result: 'id' must be at most {MAX_ID_LENGTH} characters")
    return Result(
        seq=seq,
        id=event_id,
        status=status,
        attempt=attempt,
        latency_ms=float(latency),
        code=code,
        error=error[:MAX_ERROR_LENGTH] if error else error,
    )


def _results(data: Mapping[str, Any]) -> Results:
    """A batch, judged item by item: one bad result must not cost the good ones beside it."""
    items = data.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_RESULTS:
        raise ProtocolError(f"results: 'items' must be a list of 1 to {MAX_RESULTS} results")
    parsed: list[Result] = []
    rejected: list[Rejected] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            rejected.append(Rejected(index, None, "results: every item must be a result object"))
            continue
        try:
            parsed.append(_result(item))
        except ProtocolError as exc:
            seq = item.get("seq")
            valid = seq if _is_int(seq) and 0 <= seq <= MAX_SEQ else None
            rejected.append(Rejected(index, valid, exc.message))
    return Results(tuple(parsed), tuple(rejected))


def _error(data: Mapping[str, Any]) -> Error:
    hint = data.get("hint")
    seq = data.get("seq")
    index = data.get("index")
    old, new = data.get("old_pattern"), data.get("new_pattern")
    return Error(
        code=str(data.get("code", "internal")),  # type: ignore[arg-type]
        message=_field(data, "message", str, "error"),
        hint=hint if isinstance(hint, str) else "",
        fatal=bool(data.get("fatal", False)),
        seq=seq if _is_int(seq) else None,
        index=index if _is_int(index) else None,
        old_pattern=old if isinstance(old, dict) else None,
        new_pattern=new if isinstance(new, dict) else None,
    )


_PARSERS: dict[str, Callable[[Mapping[str, Any]], Message]] = {
    "hello": _hello,
    "welcome": _welcome,
    "subscribe": _subscribe,
    "subscribed": _subscribed,
    "event": _event,
    "live": _live,
    "result": _result,
    "results": _results,
    "error": _error,
}


# ---------------------------------------------------------------------- GET /v1/issues queries

#: ``GET /v1/issues``: at most this many groups per answer (the default is all, up to this).
MAX_ISSUES = 1000
#: ``GET /v1/issues/{key}``: at most this many events per page (the default 100).
MAX_ISSUE_EVENTS = 1000
DEFAULT_ISSUE_EVENTS = 100
#: Failure groups' keys: hex digits of their cause's SHA-256 (``failures.KEY_LENGTH``).
_ISSUE_KEY_LENGTH = 8
_ISSUE_HINT = "see GET /v1/issues in docs/protocol.md"


@dataclass(frozen=True, slots=True)
class IssueQuery:
    """The checked query of ``GET /v1/issues`` and ``GET /v1/issues/{key}``.

    ``since`` stays text (ISO time or unix seconds) for the relay's time parser; ``after``
    and ``limit`` page a group's events (``limit`` caps the number of groups in a list).
    """

    listener: str | None = None
    source: str | None = None
    detail_type: str | None = None
    since: str | None = None
    limit: int | None = None
    after: int = 0


def parse_issue_query(query: Mapping[str, str], *, max_limit: int = MAX_ISSUES) -> IssueQuery:
    """Check an issues query: names within their lengths, ``limit`` 1..``max_limit``, ``after``
    a seq. Raises UsageError (the relay's 400) with a hint saying what fits."""
    texts: dict[str, str | None] = {}
    for name, longest in (
        ("listener", MAX_NAME_LENGTH),
        ("source", MAX_NAME_LENGTH),
        ("detail_type", MAX_NAME_LENGTH),
        ("since", 64),
    ):
        value = query.get(name) or None
        if value is not None and len(value) > longest:
            raise UsageError(f"'{name}' must be at most {longest} characters", hint=_ISSUE_HINT)
        texts[name] = value
    return IssueQuery(
        listener=texts["listener"],
        source=texts["source"],
        detail_type=texts["detail_type"],
        since=texts["since"],
        limit=_query_int(query, "limit", 1, max_limit),
        after=_query_int(query, "after", 0, MAX_SEQ) or 0,
    )


def parse_issue_key(text: str) -> str:
    """A failure group's key as given: 8 hex digits (any case); raises UsageError otherwise."""
    key = text.lower()
    if len(key) != _ISSUE_KEY_LENGTH or any(c not in "0123456789abcdef" for c in key):
        raise UsageError(
            f"issue keys are {_ISSUE_KEY_LENGTH} hex digits, not {text[:40]!r}",
            hint="`hook events --issues` (GET /v1/issues) lists the groups with their keys",
        )
    return key


def _query_int(query: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    """An integer query parameter within [low, high], ASCII digits only; None when absent."""
    value = query.get(name)
    if value is None or value == "":
        return None
    if (
        not (value.isascii() and value.isdigit())
        or len(value) > 19
        or not low <= int(value) <= high
    ):
        raise UsageError(
            f"'{name}' must be an integer from {low} to {high}, not {value[:40]!r}",
            hint=_ISSUE_HINT,
        )
    return int(value)
