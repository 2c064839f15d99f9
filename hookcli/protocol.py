"""The relay <-> listener wire protocol: JSON text messages with a ``type`` field.

Core module: parse and serialize only, no sockets (like python-websockets' ``protocol.py``).
docs/protocol.md is the prose version, enough to write a client in another language.

    client                                relay
      hello {protocol, client}      ->
                                    <-    welcome {protocol, relay, version, mode}
      subscribe {name, pattern,     ->
                 from, mode, window}
                                    <-    subscribed {name, start, head, resumed, window}
                                    <-    event {seq, event, request?}      (in seq order)
                                    <-    live {seq}                        (backlog sent)
      result {seq, id, status, ...} ->                                      (listen mode only)
      results {items: [result...]}  ->                                      (a batch of results)
                                    <-    error {code, message, fatal}      (any time)

Unknown message types are returned as ``Unknown`` so both sides can ignore them (newer peers).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from json.encoder import encode_basestring_ascii as _string
from typing import Any, Literal

from hookcli.errors import InvalidEventError, ProtocolError
from hookcli.events import Event, RawRequest, parse_event

PROTOCOL_VERSION = 1

Mode = Literal["listen", "tail"]
Status = Literal["delivered", "failed"]
ErrorCode = Literal[
    "bad-message",
    "unsupported-protocol",
    "invalid-pattern",
    "not-subscribed",
    "already-subscribed",
    "unauthorized",
    "internal",
]
StartKind = Literal["now", "last", "seq", "time"]
_MODES = ("listen", "tail")
_STATUSES = ("delivered", "failed")
MAX_NAME_LENGTH = 200
MAX_WINDOW = 1000


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
            return cls("seq", seq=value)
        if not isinstance(value, str) or not value:
            raise ProtocolError("'from' must be now, last, a sequence number or an ISO time")
        if value in ("now", "last"):
            return cls(value)  # type: ignore[arg-type]
        if value.isascii() and value.isdigit():
            try:
                return cls("seq", seq=int(value))
            except ValueError:
                raise ProtocolError("'from' sequence number is too large") from None
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

    ``window`` bounds the events in flight (sent, not yet answered) in listen mode.
    """

    name: str
    pattern: dict[str, Any]
    start: Start
    mode: Mode = "listen"
    window: int = 100
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
    """One stored event, in sequence order."""

    seq: int
    event: Event
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
class Results:
    """Several results in one message: what a listener finished in the same moment."""

    items: tuple[Result, ...]
    type: Literal["results"] = "results"


@dataclass(frozen=True, slots=True)
class Error:
    """Something the peer did wrong (or the relay failed); ``fatal`` closes the connection."""

    code: ErrorCode
    message: str
    fatal: bool = False
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
        case EventMessage(seq=seq, event=event):
            data = {"type": "event", "seq": seq, "event": event.to_dict()}
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


def encode_event(seq: int, event_json: str, request_json: str | None) -> str:
    """An ``event`` message from already-serialized parts (the relay's hot path: no re-encode)."""
    tail = f',"request":{request_json}' if request_json else ""
    return f'{{"type":"event","seq":{seq},"event":{event_json}{tail}}}'


_EVENT_PREFIX = '{"type":"event","seq":'
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


def _field(data: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = data.get(name)
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ProtocolError(f"{where}: '{name}' must be a number")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ProtocolError(f"{where}: '{name}' must be {names}, got {type(value).__name__}")
    return value


def _opt(data: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    return None if data.get(name) is None else _field(data, name, kind, where)


def _hello(data: Mapping[str, Any]) -> Hello:
    return Hello(
        protocol=_field(data, "protocol", int, "hello"),
        client=str(data.get("client", "")),
    )


def _welcome(data: Mapping[str, Any]) -> Welcome:
    return Welcome(
        relay=_field(data, "relay", str, "welcome"),
        version=_field(data, "version", str, "welcome"),
        mode=_field(data, "mode", str, "welcome"),
        protocol=_field(data, "protocol", int, "welcome"),
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
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= MAX_WINDOW:
        raise ProtocolError(f"subscribe: 'window' must be an integer from 1 to {MAX_WINDOW}")
    return Subscribe(
        name=name,
        pattern=pattern,
        start=Start.parse(data.get("from", "last")),
        mode=mode,
        window=window,
    )


def _subscribed(data: Mapping[str, Any]) -> Subscribed:
    return Subscribed(
        name=_field(data, "name", str, "subscribed"),
        start=_field(data, "start", int, "subscribed"),
        head=_field(data, "head", int, "subscribed"),
        resumed=bool(data.get("resumed", False)),
        window=_field(data, "window", int, "subscribed"),
    )


def _event(data: Mapping[str, Any]) -> EventMessage:
    seq = _field(data, "seq", int, "event")
    body = _field(data, "event", dict, "event")
    event = parse_event(body)
    request = data.get("request")
    if request is not None:
        if not isinstance(request, dict):
            raise ProtocolError("event: 'request' must be a JSON object")
        event = _with_request(event, RawRequest.from_dict(request))
    return EventMessage(seq=seq, event=event)


def _decode_event(text: str) -> EventMessage | None:
    """The event fast path for ``encode_event``'s layout: parse once, and keep the event's own
    JSON text, so a target receives the exact bytes the relay stored (no re-encoding: numbers
    like ``1e3`` or ``2.50`` keep their spelling). None: not that layout, use the general path.
    """
    try:
        seq_end = text.index(',"event":', len(_EVENT_PREFIX))
        seq = int(text[len(_EVENT_PREFIX) : seq_end])
        start = seq_end + len(',"event":')
        body, end = _DECODER.raw_decode(text, start)
        rest = text[end:]
        if rest == "}":
            request = None
        elif rest.startswith(',"request":') and rest.endswith("}"):
            request = json.loads(rest[len(',"request":') : -1])
        else:
            return None
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict) or seq < 0:
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
    return EventMessage(seq=seq, event=event)


def _with_request(event: Event, request: RawRequest) -> Event:
    from dataclasses import replace

    return replace(event, request=request)


def _live(data: Mapping[str, Any]) -> Live:
    return Live(seq=_field(data, "seq", int, "live"))


def _result(data: Mapping[str, Any]) -> Result:
    status = data.get("status")
    if status not in _STATUSES:
        raise ProtocolError("result: 'status' must be delivered or failed")
    attempt = data.get("attempt", 1)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ProtocolError("result: 'attempt' must be an integer >= 1")
    latency = data.get("latency_ms", 0.0)
    if (
        isinstance(latency, bool)
        or not isinstance(latency, int | float)
        or not math.isfinite(latency)
        or latency < 0
    ):
        raise ProtocolError("result: 'latency_ms' must be a number >= 0")
    error = _opt(data, "error", str, "result")
    return Result(
        seq=_field(data, "seq", int, "result"),
        id=_field(data, "id", str, "result"),
        status=status,
        attempt=attempt,
        latency_ms=float(latency),
        code=_opt(data, "code", int, "result"),
        error=error[:2000] if error else error,
    )


def _results(data: Mapping[str, Any]) -> Results:
    items = data.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_RESULTS:
        raise ProtocolError(f"results: 'items' must be a list of 1 to {MAX_RESULTS} results")
    parsed = []
    for item in items:
        if not isinstance(item, dict):
            raise ProtocolError("results: every item must be a result object")
        parsed.append(_result(item))
    return Results(tuple(parsed))


def _error(data: Mapping[str, Any]) -> Error:
    return Error(
        code=str(data.get("code", "internal")),  # type: ignore[arg-type]
        message=_field(data, "message", str, "error"),
        fatal=bool(data.get("fatal", False)),
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
