"""The event envelope: an EventBridge event, plus the raw HTTP request for ingested webhooks.

Core module: stdlib only, no I/O. An HTTP-ingested event keeps its method, path, query, headers and
body bytes exactly (``RawRequest``), so a later delivery to a local app is byte-exact and the
app's signature check still passes (smee-client breaks it by re-serializing the JSON body).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import os
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NewType

from hookcli.errors import InvalidEventError
from hookcli.providers import provider_event_type

EventId = NewType("EventId", str)

#: The EventBridge envelope's fields, in the order AWS writes them.
ENVELOPE_FIELDS = (
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
)
_REQUIRED = ("id", "source", "detail-type", "detail")
_STRING_FIELDS = ("version", "id", "detail-type", "source", "account", "time", "region")
#: Largest decoded body ``event_from_request`` parses for ``detail`` unless told otherwise.
DECODED_LIMIT = 1024 * 1024
# RFC 9110 section 8.4.1: "x-gzip" is an alias of gzip; zlib's wbits pick the container.
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


@dataclass(frozen=True, slots=True)
class RawRequest:
    """An HTTP request exactly as it reached ``/v1/ingest/<channel>``, replayed byte for byte."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def to_dict(self) -> dict[str, Any]:
        """The wire form: headers as ``[name, value]`` pairs (order, repeats kept), body base64."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": [[k, v] for k, v in self.headers],
            "body_b64": base64.b64encode(self.body).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RawRequest:
        """Parse the wire form; raises InvalidEventError naming the bad field."""
        raw = data.get("body_b64", "")
        if not isinstance(raw, str):
            raise InvalidEventError("request.body_b64 must be a string")
        try:
            # Once per webhook on the listener's hot path: a list comprehension (no generator
            # resumed per header) that converts only what is not a str already.
            headers = tuple(
                [
                    (k, v) if k.__class__ is str and v.__class__ is str else (str(k), str(v))
                    for k, v in data.get("headers", ())
                ]
            )
            # base64.b64decode(raw, validate=True) without its Python wrapper: ASCII text only,
            # nothing but the alphabet and padding.
            body = binascii.a2b_base64(raw, strict_mode=True)
        except (TypeError, ValueError, binascii.Error) as exc:
            raise InvalidEventError(f"request: bad headers or body_b64 ({exc})") from exc
        method = data.get("method", "POST")
        path = data.get("path", "")
        query = data.get("query", "")
        if not (isinstance(method, str) and isinstance(path, str) and isinstance(query, str)):
            name = next(
                n
                for n, v in (("method", method), ("path", path), ("query", query))
                if not isinstance(v, str)
            )
            raise InvalidEventError(f"request.{name} must be a string")
        return cls(method=method, path=path, query=query, headers=headers, body=body)


@dataclass(frozen=True, slots=True)
class Event:
    """One EventBridge-shaped event; ``request`` is set when it arrived as a webhook."""

    id: EventId
    source: str
    detail_type: str
    detail: Any
    account: str = ""
    region: str = ""
    time: str = ""
    resources: tuple[str, ...] = ()
    version: str = "0"
    replay_name: str | None = None
    request: RawRequest | None = field(default=None, compare=False)
    #: What the target gets instead of the event's JSON: a rule target's Input, InputPath or
    #: InputTransformer result (``transform.py``). None: the event itself.
    input: str | None = field(default=None, compare=False)
    #: ``to_json()``'s text: the event's JSON text as received when it was parsed from text
    #: (``parse_event``, a relay frame), else computed once; a target's body and a --json line
    #: share it.
    _json: str | None = field(default=None, init=False, compare=False, repr=False)
    #: The JSON data parsed from that received text, for matching (``document``).
    _document: Mapping[str, Any] | None = field(default=None, init=False, compare=False, repr=False)
    #: Whether that received text repeats a key in some object (``repeated_keys``).
    _repeated: bool = field(default=False, init=False, compare=False, repr=False)

    @property
    def short_id(self) -> str:
        """The first 8 characters of the id, for one-line terminal output."""
        return self.id[:8]

    @property
    def key(self) -> str:
        """What tells this delivery of the event from others: the id, plus ``@replay-name``.

        An archive replay re-sends an event; if it kept the original id, the id alone would
        make the replayed copy look like a duplicate of the original (and of other replays').
        """
        return self.id if self.replay_name is None else f"{self.id}@{self.replay_name}"

    @property
    def repeated_keys(self) -> bool:
        """Whether the event's received JSON text gives some key twice in one object."""
        return self._repeated

    @property
    def document(self) -> Mapping[str, Any]:
        """The event as JSON data to match patterns against, as ``hook pattern test`` reads it.

        For an event parsed from text: that text's data, every occurrence of a repeated key
        kept (``patterns.load_event``), so the relay matches what its listeners receive.
        Otherwise ``to_dict()``.
        """
        document = self._document
        return self.to_dict() if document is None else document

    def to_dict(self) -> dict[str, Any]:
        """The EventBridge JSON shape (what a target receives, and what patterns match)."""
        data: dict[str, Any] = {
            "version": self.version,
            "id": self.id,
            "detail-type": self.detail_type,
            "source": self.source,
            "account": self.account,
            "time": self.time,
            "region": self.region,
            "resources": list(self.resources),
            "detail": self.detail,
        }
        if self.replay_name is not None:
            data["replay-name"] = self.replay_name
        return data

    def payload(self) -> str:
        """The text a target receives: the transformed ``input`` if set, else ``to_json()``."""
        return self.to_json() if self.input is None else self.input

    def to_json(self) -> str:
        """The event's JSON text: as received if parsed from text, else compact ``to_dict()``."""
        text = self._json
        if text is None:
            text = json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)
            object.__setattr__(self, "_json", text)
        return text


def parse_event(data: str | bytes | Mapping[str, Any]) -> Event:
    """Parse EventBridge event JSON (text, bytes or an already-decoded object).

    Raises InvalidEventError naming what is wrong. ``id``, ``source``, ``detail-type`` and
    ``detail`` are required; the other envelope fields default to what hook's own events carry.
    An event parsed from text keeps that text as its ``to_json()`` (trimmed, on one line:
    ``_one_line``), and a key repeated in it keeps every value for matching (``document``).
    """
    text: str | None = None
    repeated = False
    if isinstance(data, Mapping):
        document = data
    else:
        raw = _text(data, "event")
        document, repeated = _load_checked(raw)
        text = _one_line(raw)
    missing = [name for name in _REQUIRED if name not in document]
    if missing:
        raise InvalidEventError(
            f"event is missing {', '.join(repr(m) for m in missing)}",
            hint="An EventBridge event has id, source, detail-type and detail at the top level.",
        )
    for name in _STRING_FIELDS:
        if name in document and not isinstance(document[name], str):
            raise InvalidEventError(f"event field {name!r} must be a string")
    if not document["id"]:
        raise InvalidEventError("event field 'id' must not be empty")
    if not isinstance(document["detail"], dict):
        raise InvalidEventError("event field 'detail' must be a JSON object")
    resources = document.get("resources", [])
    if not isinstance(resources, list) or (
        resources and not all(isinstance(r, str) for r in resources)
    ):
        raise InvalidEventError("event field 'resources' must be a list of strings")
    replay_name = document.get("replay-name")
    if replay_name is not None and not isinstance(replay_name, str):
        raise InvalidEventError("event field 'replay-name' must be a string")
    event = Event(
        id=EventId(document["id"]),
        source=document["source"],
        detail_type=document["detail-type"],
        detail=document["detail"],
        account=document.get("account", ""),
        region=document.get("region", ""),
        time=document.get("time", ""),
        resources=tuple(resources),
        version=document.get("version", "0"),
        replay_name=replay_name,
    )
    if text is not None:
        _keep_text(event, text, document, repeated)
    return event


def with_account(event: Event, account: str) -> Event:
    """``event`` with ``account`` set (moto's SQS target drops it), its received text kept.

    A text without an ``account`` key gets one in front, the rest byte for byte. One whose
    ``account`` is present but empty is written again (a rare case; a repeated key then keeps
    only its last value, as it does in the text written).
    """
    text, document = event._json, event._document
    if text is None or document is None:
        return replace(event, account=account)
    if "account" in document:
        return parse_event(_compact({**document, "account": account}))
    updated = replace(event, account=account)
    new_text = f'{{"account":{json.dumps(account)},{text[1:]}'
    if document.__class__ is dict:
        _keep_text(updated, new_text, {**document, "account": account}, event._repeated)
    else:  # a repeated top-level key: its occurrences live in the parsed structure, parse again
        new_document, repeated = _load_checked(new_text)
        _keep_text(updated, new_text, new_document, repeated)
    return updated


def with_request(event: Event, request: RawRequest) -> Event:
    """``event`` with its raw webhook ``request`` attached, its received text kept."""
    updated = replace(event, request=request)
    if event._json is not None and event._document is not None:
        _keep_text(updated, event._json, event._document, event._repeated)
    return updated


class _RepeatedKey(Exception):
    """Raised by the decoder at the first object that gives a key twice: parse it again."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _RepeatedKey
    return obj


_UNIQUE_DECODER = json.JSONDecoder(object_pairs_hook=_unique_pairs)
_JSON_WHITESPACE = " \t\n\r"  # RFC 8259 section 2: what may surround a JSON value


def decode_event_text(text: str, repeated: bool | None = None) -> tuple[Any, bool]:
    """Event text as JSON data for matching, and whether some object in it repeats a key.

    ``repeated`` None: find out while parsing (json's own decoder with a hook that only
    compares key counts, so an ordinary event costs one pass and stays plain dicts). A text
    that repeats a key is parsed with ``patterns.load_event``, which keeps every value (as
    event-ruler and ``hook pattern test`` read it; issue 11). ``repeated`` known (the store's
    flag): the fast ``json.loads`` when False. Raises what ``json.loads`` raises.
    """
    if repeated is False:
        return json.loads(text), False
    if repeated is None:
        try:
            return _UNIQUE_DECODER.decode(text), False
        except _RepeatedKey:
            pass
    from hookcli.patterns import load_event  # only for the rare text that repeats a key

    return load_event(text), True


def _load_checked(text: str) -> tuple[dict[str, Any], bool]:
    """``decode_event_text`` for an event's text, with load_json_object's errors."""
    try:
        document, repeated = decode_event_text(text)
    except json.JSONDecodeError as exc:
        raise InvalidEventError(
            f"event is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except (ValueError, RecursionError) as exc:  # nested too deep, or an absurdly long number
        raise InvalidEventError(f"event is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidEventError(f"event must be a JSON object, not {type(document).__name__}")
    return document, repeated


def _one_line(text: str) -> str:
    """JSON text trimmed, and on one line, so a JSON Lines output can carry it as it is.

    Line breaks in valid JSON are whitespace between tokens (strings cannot hold raw ones,
    RFC 8259 section 7), so removing them leaves the same JSON; EventBridge's own event text is
    one line already, and is kept byte for byte.
    """
    text = text.strip(_JSON_WHITESPACE)
    if "\n" in text or "\r" in text:
        text = text.replace("\r", "").replace("\n", "")
    return text


def _keep_text(event: Event, text: str, document: Mapping[str, Any], repeated: bool) -> None:
    object.__setattr__(event, "_json", text)
    object.__setattr__(event, "_document", document)
    object.__setattr__(event, "_repeated", repeated)


def _text(data: str | bytes, what: str) -> str:
    """JSON text from ``data``; bytes in any encoding JSON allows (RFC 8259 section 8.1)."""
    if isinstance(data, str):
        return data
    try:
        return data.decode(json.detect_encoding(data))
    except UnicodeDecodeError as exc:
        raise InvalidEventError(f"{what} is not UTF-8 text: {exc.reason}") from exc


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def load_json_object(data: str | bytes, what: str) -> dict[str, Any]:
    """Decode JSON text that must be an object; the error names ``what`` and the position."""
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise InvalidEventError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise InvalidEventError(f"{what} is not UTF-8 text: {exc.reason}") from exc
    except (ValueError, RecursionError) as exc:  # nested too deep, or an absurdly long number
        raise InvalidEventError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidEventError(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class Document:
    """One JSON object read from an events file, and where it was (``line 3``, ``entry 2``)."""

    position: str
    value: dict[str, Any]

    def where(self, name: str) -> str:
        """``name`` and the position, for error messages: ``events.jsonl line 3``."""
        return f"{name} {self.position}" if self.position else name


def split_documents(text: str, name: str) -> list[Document]:
    """The objects in an events file: JSON Lines, a JSON array, or one (pretty-printed) object.

    A first non-blank line that is a JSON object on its own means JSON Lines (one per line,
    blank lines skipped); anything else is read as one JSON document. Errors name the file and
    the line or entry, and a document's error says where in it (line and column), so a
    pretty-printed event is never reported as "line 1 is not valid JSON".
    """
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        return []
    if _is_object(lines[0][1]):
        return [
            Document(f"line {n}", load_json_object(line, f"{name} line {n}")) for n, line in lines
        ]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidEventError(
            f"{name} is neither JSON Lines nor one JSON document: {exc.msg} at line "
            f"{exc.lineno} column {exc.colno}",
            hint="give one event object per line, a JSON array of events, or one event object",
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise InvalidEventError(f"{name} is not valid JSON: {exc}") from exc
    if isinstance(value, dict):
        return [Document("", value)]
    if not isinstance(value, list):
        raise InvalidEventError(
            f"{name} must hold event objects, not {type(value).__name__}",
            hint="give one event object per line, a JSON array of events, or one event object",
        )
    documents = []
    for n, item in enumerate(value, 1):
        if not isinstance(item, dict):
            raise InvalidEventError(
                f"{name} entry {n} must be a JSON object, not {type(item).__name__}"
            )
        documents.append(Document(f"entry {n}", item))
    return documents


def _is_object(line: str) -> bool:
    """Whether one line is a complete JSON object by itself (JSON Lines' first line)."""
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return False


def new_event_id() -> EventId:
    """A fresh event id in EventBridge's format: a random (version 4) UUID, as ``uuid.uuid4``.

    Spelled from 16 random bytes directly: one per webhook, and building a ``uuid.UUID`` to
    print it cost ~6 us where this costs ~1.5.
    """
    h = os.urandom(16).hex()
    # Version 4 in the 13th digit; RFC 9562's variant (binary 10xx) in the 17th.
    return EventId(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}")


_VARIANT: dict[str, str] = {f"{n:x}": f"{n & 0x3 | 0x8:x}" for n in range(16)}


def format_time(moment: datetime) -> str:
    """EventBridge's ``time`` format: UTC, second precision, ``Z`` suffix."""
    # Per whole second, and remembered: every webhook of the same second shares the text.
    return _utc_second(math.floor(moment.timestamp()))


@functools.lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


def event_from_request(
    channel: str,
    request: RawRequest,
    *,
    detail_type: str | None,
    event_id: EventId,
    received: datetime,
    decoded_limit: int = DECODED_LIMIT,
) -> Event:
    """The envelope for a webhook: source ``webhook.<channel>``, the JSON body as ``detail``.

    ``detail_type`` None means the sender's own event type when it is a well-known provider
    (``providers.provider_event_type``: GitHub's ``X-GitHub-Event``, Stripe's ``type``, ...),
    else ``webhook``.

    A body that is a JSON object becomes ``detail`` as is; other JSON goes under
    ``detail.body``; a non-JSON body leaves ``detail`` empty and lives only in ``request``.
    A gzip or deflate body (``Content-Encoding``) is decoded for ``detail`` only, up to
    ``decoded_limit`` bytes; ``request.body`` always stays the bytes as they came off the wire.
    A key the body gives twice keeps every value for matching, as for an event from the bus;
    the event's text then holds the body's own JSON text (on one line), which keeps them.
    """
    detail: Any = {}
    # One pass over the headers, then a dict lookup per question: provider detection asks for
    # a dozen headers, each a scan of them all through ``RawRequest.header``.
    headers = _HeaderIndex(request.headers)
    detail_text: str | None = None
    repeated = False
    raw = decode_content(request.body, headers.header("Content-Encoding"), decoded_limit)
    if raw:
        try:
            text = raw.decode(json.detect_encoding(raw))
            body, repeated = decode_event_text(text)
        except (ValueError, RecursionError):  # not JSON (or too deep): bytes only
            pass
        else:
            detail = body if isinstance(body, dict) else {"body": body}
            if repeated:  # json.dumps would keep only the last value: keep the text instead
                text = _one_line(text)
                detail_text = text if isinstance(body, dict) else f'{{"body":{text}}}'
    if detail_type is None:
        detail_type = provider_event_type(headers, detail) or "webhook"
    event = Event(
        id=event_id,
        source=f"webhook.{channel}",
        detail_type=detail_type,
        detail=detail,
        time=format_time(received),
        request=request,
    )
    if detail_text is not None:
        document = event.to_dict()
        head = _compact({k: v for k, v in document.items() if k != "detail"})
        _keep_text(event, f'{head[:-1]},"detail":{detail_text}}}', document, repeated)
    return event


class _HeaderIndex:
    """Case-insensitive lookup of the first value of each header, built in one pass."""

    __slots__ = ("_first",)

    def __init__(self, headers: Sequence[tuple[str, str]]) -> None:
        first: dict[str, str] = {}
        for key, value in headers:
            first.setdefault(key.lower(), value)
        self._first = first

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (as ``RawRequest.header``), or None."""
        return self._first.get(name.lower())


def decode_content(body: bytes, encoding: str | None, limit: int) -> bytes | None:
    """``body`` with its ``Content-Encoding`` undone (gzip, deflate), or None if it cannot be.

    None when an encoding is unknown (br, zstd: not in the stdlib), the data is corrupt or
    truncated, or the decoded size passes ``limit``: a zip bomb small on the wire costs at most
    ``limit`` bytes of memory, never its decoded size.
    """
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    decoded: bytes | None = body
    for coding in reversed(codings):  # RFC 9110 section 8.4: listed in the order applied
        if decoded is None or coding == "identity":
            continue
        if coding not in _WBITS:
            return None
        raw = decoded
        decoded = _inflate(raw, _WBITS[coding], limit)
        if decoded is None and coding == "deflate":
            # Some senders' "deflate" is raw DEFLATE without the zlib header (RFC 9110 8.4.1.2).
            decoded = _inflate(raw, -zlib.MAX_WBITS, limit)
    return decoded


def _inflate(data: bytes, wbits: int, limit: int) -> bytes | None:
    """Decompress one zlib/gzip/raw stream, producing at most ``limit`` bytes, else None."""
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(data, limit + 1)
    except zlib.error:
        return None
    # More output pending (unconsumed_tail) or past the limit: too big. Not at the end of the
    # stream: truncated. Either way, no detail rather than a wrong one.
    if len(out) > limit or decoder.unconsumed_tail or not decoder.eof:
        return None
    return out


def short_text(value: Any, limit: int = 120) -> str:
    """A one-line, length-bounded rendering of any JSON value or text, for terminal lines."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    # A lone surrogate (valid in JSON strings) cannot be printed as UTF-8: show U+FFFD.
    text = " ".join(text.encode("utf-8", "replace").decode("utf-8").split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def headers_from(pairs: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Freeze header pairs in their original order (repeats kept, as HTTP allows)."""
    return tuple((str(k), str(v)) for k, v in pairs)
