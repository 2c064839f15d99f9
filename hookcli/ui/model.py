"""What the full-screen view shows, as plain data: rows, their status, filters and body views.

No Textual and no I/O here (stdlib plus the core's patterns), so the view's rules (which
delivery a row shows, what a filter matches, how a body is displayed) are tested without a
terminal. The relay's history records (``GET /v1/events``) and the listener's typed updates
both become ``Row``s.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from hookcli.errors import UsageError
from hookcli.patterns import Pattern, compile_pattern

Status = Literal["delivered", "failed", "pending", "retrying", "replaying"]
STATUSES: tuple[Status, ...] = ("delivered", "failed", "pending", "retrying", "replaying")
#: Final statuses are not polled again.
FINAL: frozenset[str] = frozenset({"delivered", "failed"})


@dataclass(slots=True)
class Attempt:
    """One delivery attempt or result of an event, as the details view lists it."""

    at: float | None
    listener: str
    target: str
    status: str
    attempt: int
    latency_ms: float
    code: int | None = None
    error: str | None = None
    #: More than the one-line error: a response body, a stderr tail, a traceback (listen only).
    detail: str | None = None
    #: What the local code printed (listen only).
    output: str | None = None
    #: The relay's delivery row id, and for a replay the row it answers and who ran it.
    id: int | None = None
    replay: bool = False
    replay_of: int | None = None
    replayed_by: str | None = None

    @classmethod
    def from_delivery(cls, d: Mapping[str, Any]) -> Attempt:
        """A delivery row of ``GET /v1/events/<id>``."""
        return cls(
            at=d.get("at") if isinstance(d.get("at"), int | float) else None,
            listener=str(d.get("listener", "")),
            target=str(d.get("target") or ""),
            status=str(d.get("status", "")),
            attempt=int(d.get("attempt") or 1),
            latency_ms=float(d.get("latency_ms") or 0.0),
            code=d.get("code") if isinstance(d.get("code"), int) else None,
            error=d.get("error") if isinstance(d.get("error"), str) else None,
            id=d.get("id") if isinstance(d.get("id"), int) else None,
            replay=bool(d.get("replay")),
            replay_of=d.get("replay_of") if isinstance(d.get("replay_of"), int) else None,
            replayed_by=d.get("replayed_by") if isinstance(d.get("replayed_by"), str) else None,
        )


@dataclass(slots=True)
class Row:
    """One event in the Events list, with the delivery it stands for."""

    seq: int
    event: dict[str, Any]
    received: float | None = None
    status: Status = "pending"
    listener: str = ""
    target: str = ""
    code: int | None = None
    latency_ms: float | None = None
    attempts: int = 0
    #: Every delivery the relay recorded (oldest first), or the listener's own attempts.
    history: list[Attempt] = field(default_factory=list)
    #: A short line about the last action taken on this row (a replay's result).
    note: str = ""

    @property
    def id(self) -> str:
        """The event's full id."""
        return str(self.event.get("id", ""))

    @property
    def final(self) -> bool:
        """Delivered or failed: nothing more will change unless someone replays it."""
        return self.status in FINAL

    def latest_failure(self) -> Attempt | None:
        """The newest failed delivery, the one a replay answers."""
        return next((a for a in reversed(self.history) if a.status == "failed"), None)


def row_from_record(record: Mapping[str, Any], listener: str | None = None) -> Row:
    """A history record (``GET /v1/events`` row or ``/v1/events/<id>``) as a Row.

    The row shows one listener's latest delivery: ``listener`` when given and it has one, else
    a failing listener's (a failure is what the user must see), else the latest delivered.
    """
    row = Row(seq=int(record.get("seq", 0)), event=dict(record.get("event") or {}))
    received = record.get("received")
    row.received = float(received) if isinstance(received, int | float) else None
    apply_record(row, record, listener)
    return row


def apply_record(row: Row, record: Mapping[str, Any], listener: str | None = None) -> None:
    """Update ``row`` from a fresh history record of the same event (statuses move on)."""
    deliveries = [d for d in record.get("deliveries") or [] if isinstance(d, Mapping)]
    row.history = [Attempt.from_delivery(d) for d in deliveries]
    latest: dict[str, Attempt] = {}
    for attempt in row.history:
        latest[attempt.listener] = attempt
    chosen = latest.get(listener) if listener else None
    if chosen is None and listener is None:
        failed = [a for a in latest.values() if a.status == "failed"]
        chosen = failed[-1] if failed else (list(latest.values())[-1] if latest else None)
    if chosen is None:
        if row.status not in ("retrying", "replaying"):
            row.status = "pending"
        return
    row.status = "delivered" if chosen.status == "delivered" else "failed"
    row.listener = chosen.listener
    row.target = chosen.target
    row.code = chosen.code
    row.latency_ms = chosen.latency_ms
    row.attempts = chosen.attempt
    others = len(latest) - 1
    row.note = f"+{others} listener{'s' if others > 1 else ''}" if others > 0 else ""


# ------------------------------------------------------------------ cells


#: (title, width) of the Events columns: each followed by a space: 78 columns.
COLUMNS: tuple[tuple[str, int], ...] = (
    ("time", 8),
    ("id", 8),
    ("source", 11),
    ("detail-type", 12),
    ("listener", 9),
    ("status", 9),
    ("code", 4),
    ("ms", 5),
    ("try", 3),
)


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, an ellipsis marking a cut."""
    text = printable(text)
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters (escape sequences) shown as U+FFFD."""
    text = text.expandtabs(4).encode("utf-8", "replace").decode("utf-8")
    return "".join("\ufffd" if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in text)


def clock(epoch: float | None, *, now: datetime | None = None) -> str:
    """``HH:MM:SS`` for today, ``MM-DD HH:MM`` before."""
    if epoch is None:
        return "?"
    moment = datetime.fromtimestamp(epoch)
    same_day = moment.date() == (now or datetime.now()).date()
    return moment.strftime("%H:%M:%S" if same_day else "%m-%d %H:%M")


def short_listener(name: str, me: str = "") -> str:
    """A listener's name without the viewer's own ``user@host`` prefix (``:3000``)."""
    return name[len(me) :] if me and name.startswith(f"{me}:") else name


def cells(row: Row, me: str = "") -> tuple[str, ...]:
    """The Events columns of ``row``, each cut to its width."""
    values = (
        clock(row.received),
        row.id[:8],
        str(row.event.get("source", "")),
        str(row.event.get("detail-type", "")),
        short_listener(row.listener, me) or "-",
        row.status,
        "" if row.code is None else str(row.code),
        "" if row.latency_ms is None else f"{row.latency_ms:.0f}",
        str(row.attempts) if row.attempts else "",
    )
    return tuple(cut(value, width) for value, (_, width) in zip(values, COLUMNS, strict=True))


# ------------------------------------------------------------------ filters


@dataclass(frozen=True, slots=True)
class Filter:
    """What ``/`` typed: free words, ``key:value`` terms, or an EventBridge pattern."""

    text: str = ""
    words: tuple[str, ...] = ()
    statuses: frozenset[str] = frozenset()
    fields: tuple[tuple[str, str], ...] = ()
    pattern: Pattern | None = None

    def matches(self, row: Row) -> bool:
        """True when ``row`` passes every term (an empty filter passes everything)."""
        if self.statuses and row.status not in self.statuses:
            return False
        if self.pattern is not None and not self.pattern.matches(row.event):
            return False
        for key, value in self.fields:
            if value not in _field(row, key).lower():
                return False
        if self.words:
            haystack = " ".join(
                (
                    row.id,
                    str(row.event.get("source", "")),
                    str(row.event.get("detail-type", "")),
                    row.listener,
                    row.status,
                    "" if row.code is None else str(row.code),
                    row.target,
                )
            ).lower()
            return all(word in haystack for word in self.words)
        return True


#: ``key:value`` terms and the row text each looks at.
FIELD_KEYS = ("source", "type", "detail-type", "listener", "id", "code", "target")


def _field(row: Row, key: str) -> str:
    if key == "source":
        return str(row.event.get("source", ""))
    if key in ("type", "detail-type"):
        return str(row.event.get("detail-type", ""))
    if key == "listener":
        return row.listener
    if key == "id":
        return row.id
    if key == "code":
        return "" if row.code is None else str(row.code)
    return row.target


def parse_filter(text: str) -> Filter:
    """Parse what the user typed after ``/``.

    ``{...}`` is an EventBridge event pattern (validated like ``hook listen --pattern``);
    otherwise words, each either ``status:failed`` (``status:failed,pending`` for several),
    another ``key:value`` (source, type, listener, id, code, target) or free text matched
    anywhere in the row. Raises UsageError (or InvalidPatternError) saying what is wrong.
    """
    text = text.strip()
    if not text:
        return Filter()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"the filter is not valid JSON: {exc.msg} at column {exc.colno}",
                hint='a pattern looks like {"source": ["shop.orders"]}',
            ) from None
        if not isinstance(document, dict):
            raise UsageError("a pattern filter must be a JSON object")
        return Filter(text=text, pattern=compile_pattern(document))
    words: list[str] = []
    statuses: set[str] = set()
    fields: list[tuple[str, str]] = []
    for word in text.split():
        key, colon, value = word.partition(":")
        key = key.lower()
        if colon and key == "status":
            wanted = {part for part in value.lower().split(",") if part}
            unknown = sorted(wanted - set(STATUSES))
            if unknown or not wanted:
                raise UsageError(
                    f"unknown status {', '.join(unknown) or '(none)'}",
                    hint="status: " + ", ".join(STATUSES),
                )
            statuses |= wanted
        elif colon and key in FIELD_KEYS and value:
            fields.append((key, value.lower()))
        else:
            words.append(word.lower())
    return Filter(text=text, words=tuple(words), statuses=frozenset(statuses), fields=tuple(fields))


# ------------------------------------------------------------------ bodies


BodyKind = Literal["json", "text", "hex", "empty"]


@dataclass(frozen=True, slots=True)
class BodyView:
    """A raw body ready to show: pretty JSON, text, or a hex dump."""

    kind: BodyKind
    text: str


_TEXT = set(string.printable)


def body_view(body: bytes, limit: int = 64 * 1024) -> BodyView:
    """JSON pretty-printed; UTF-8 text as it is; anything else as a hex dump (first ``limit``)."""
    if not body:
        return BodyView("empty", "")
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError:
        return BodyView("hex", hexdump(body[:limit]) + _more(body, limit))
    try:
        text = json.dumps(json.loads(decoded), indent=2, ensure_ascii=False)
    except ValueError:
        if all(c in _TEXT or ord(c) >= 160 for c in decoded):
            return BodyView("text", decoded[:limit] + _more(body, limit))
        return BodyView("hex", hexdump(body[:limit]) + _more(body, limit))
    return BodyView("json", text.encode("utf-8", "backslashreplace").decode("utf-8"))


def _more(body: bytes, limit: int) -> str:
    return f"\n… {len(body) - limit} more bytes" if len(body) > limit else ""


def hexdump(data: bytes) -> str:
    """``offset  hex bytes  ascii``, 16 bytes a line (like ``xxd``)."""
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexes:<47}  {text}")
    return "\n".join(lines)
