"""Failed deliveries grouped by cause: the "issues" of ``hook events --issues`` and ``hook ui``.

A *failure* is an (event, listener) pair whose latest recorded delivery failed: a later
successful attempt or replay for that listener makes it go away, so a group shrinks as its
events succeed. Failures are grouped by their *cause*: the listener, the target, the HTTP status
or exit status, and the first line of the error text. A group's ``key`` is a digest of the cause
alone, so it stays the same across calls and relay restarts and scripts can keep it; its
``number`` (1, 2, ... by first seen) is for humans and shifts as older groups go away.

Core module: no I/O. The relay's store gives ``FailureCount`` rows (one per distinct raw cause,
already counted in SQL); ``group_failures`` merges rows whose normalised causes agree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

#: The longest error line a group keeps (and compares): the start says what went wrong.
MAX_ERROR_LINE: Final = 200
#: Hex digits of a group's key: 32 bits, plenty for the few groups a relay has at once.
KEY_LENGTH: Final = 8

Kind = Literal["http", "exec", "handler"]


@dataclass(frozen=True, slots=True)
class FailureCount:
    """Failures sharing one raw cause, as the store counts them (one failure: ``count`` 1).

    ``first_at``/``last_at`` are the unix times of those failures' latest failed deliveries;
    ``example`` and ``example_seq`` name the event of the newest one.
    """

    listener: str
    target: str | None
    code: int | None
    error: str | None
    count: int
    first_at: float
    last_at: float
    example: str
    example_seq: int


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Failures with the same cause: listener, target, status or exit code, first error line."""

    key: str
    number: int
    listener: str
    target: str | None
    #: The HTTP status for an HTTP target, the exit status for ``--exec``; None when there was
    #: no answer (refused, timed out) or the handler raised.
    code: int | None
    #: The first line of the error text, stripped and capped at ``MAX_ERROR_LINE``.
    error: str
    count: int
    #: ISO 8601 UTC times of the oldest and newest failure in the group.
    first_seen: str
    last_seen: str
    #: The id and seq of the newest failing event (what ``hook events show`` takes).
    example: str
    example_seq: int

    @property
    def kind(self) -> Kind | None:
        """What the target is, from its description: http, exec or handler (None: unknown)."""
        return target_kind(self.target)

    @property
    def cause(self) -> str:
        """The cause in a few words: ``HTTP 500: nope``, ``exit 2: boom``, or the error alone."""
        code = code_text(self.kind, self.code)
        if code and self.error:
            return f"{code}: {self.error}"
        return code or self.error or "failed"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``GET /v1/issues`` and ``hook events --issues --json`` give."""
        return {
            "key": self.key,
            "number": self.number,
            "listener": self.listener,
            "target": self.target,
            "kind": self.kind,
            "code": self.code,
            "error": self.error,
            "cause": self.cause,
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "example": self.example,
            "example_seq": self.example_seq,
        }


def first_line(error: str | None) -> str:
    """The error's first non-blank line, stripped and capped: the part a group compares."""
    if not error:
        return ""
    for line in error.strip().splitlines():
        line = line.strip()
        if line:
            return line[:MAX_ERROR_LINE]
    return ""


def cause_key(listener: str, target: str | None, code: int | None, error: str | None) -> str:
    """The stable key of a cause: the first ``KEY_LENGTH`` hex digits of its SHA-256."""
    text = json.dumps([listener, target, code, first_line(error)], ensure_ascii=False)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:KEY_LENGTH]


def target_kind(target: str | None) -> Kind | None:
    """http, exec or handler, from a target description as listeners report it."""
    if target is None:
        return None
    if target.startswith(("http://", "https://")):
        return "http"
    if target.startswith("exec "):
        return "exec"
    if target.startswith("handler "):
        return "handler"
    return None


def code_text(kind: Kind | None, code: int | None) -> str:
    """``HTTP 500`` for an HTTP status, ``exit 2`` for an exit status, ``""`` for none."""
    if code is None:
        return ""
    if kind == "exec":
        return f"exit {code}"
    if kind == "http":
        return f"HTTP {code}"
    return str(code)


def iso_time(epoch: float) -> str:
    """``2024-05-01T12:00:00.123Z``: a unix time as ISO 8601 UTC with milliseconds."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def group_failures(rows: Iterable[FailureCount]) -> list[FailureGroup]:
    """Merge counted rows into groups by normalised cause, numbered 1.. by first seen.

    Rows whose errors differ only after the first line (or in surrounding blanks) fall into
    one group. Ties in first seen are ordered by key, so numbering never depends on row order.
    """
    merged: dict[str, _Tally] = {}
    for row in rows:
        key = cause_key(row.listener, row.target, row.code, row.error)
        tally = merged.get(key)
        if tally is None:
            merged[key] = _Tally(row)
        else:
            tally.add(row)
    ordered = sorted(merged.items(), key=lambda item: (item[1].first_at, item[0]))
    return [tally.group(key, number) for number, (key, tally) in enumerate(ordered, start=1)]


def group_members(rows: Iterable[FailureCount], key: str) -> list[FailureCount]:
    """The rows whose cause has this key (what a group's detail lists)."""
    return [row for row in rows if cause_key(row.listener, row.target, row.code, row.error) == key]


class _Tally:
    """A group being counted: totals, the time span and the newest example so far."""

    __slots__ = ("count", "first_at", "newest", "row")

    def __init__(self, row: FailureCount) -> None:
        self.row = row
        self.count = row.count
        self.first_at = row.first_at
        self.newest = row

    def add(self, row: FailureCount) -> None:
        self.count += row.count
        self.first_at = min(self.first_at, row.first_at)
        if (row.last_at, row.example_seq) > (self.newest.last_at, self.newest.example_seq):
            self.newest = row

    def group(self, key: str, number: int) -> FailureGroup:
        row, newest = self.row, self.newest
        return FailureGroup(
            key=key,
            number=number,
            listener=row.listener,
            target=row.target,
            code=row.code,
            error=first_line(row.error),
            count=self.count,
            first_seen=iso_time(self.first_at),
            last_seen=iso_time(newest.last_at),
            example=newest.example,
            example_seq=newest.example_seq,
        )
