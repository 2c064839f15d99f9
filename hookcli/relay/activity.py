"""What the relay reports as it works: events received, listeners coming, resuming and going.

Typed updates only: the relay never prints. ``hook relay serve`` passes a callback
(``Relay(activity=...)``, ``start_relay(..., activity=...)``) and ``cli/render.py`` turns each
update into a line. Without a callback nothing is built, so the hot path pays one ``is None``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Received:
    """An event was committed to the store (from the bus or ingest)."""

    at: float
    seq: int
    id: str
    source: str
    detail_type: str
    #: Bytes: the webhook's body as sent, or the EventBridge event's JSON.
    size: int
    via: Literal["bus", "ingest"]


@dataclass(frozen=True, slots=True)
class Connected:
    """A listener (or tail) subscribed: from which seq, and how far behind the newest event."""

    at: float
    name: str
    mode: str
    start: int
    head: int
    resumed: bool

    @property
    def waiting(self) -> int:
        """Events stored after its start point (not all of them need match its pattern)."""
        return max(0, self.head - self.start)


@dataclass(frozen=True, slots=True)
class Left:
    """A listener (or tail) went away, and why."""

    at: float
    name: str
    mode: str
    reason: str


Activity = Received | Connected | Left
#: The callback ``Relay`` calls with each update.
ActivitySink = Callable[[Activity], None]

#: Websocket close codes (RFC 6455 section 7.4.1) as a reason a person reads.
CLOSE_REASONS = {
    1000: "closed by the client",
    1001: "going away",
    1006: "connection lost",
    1009: "message too big",
    # websockets clients close with 1011 when their task ends on an exception or a signal.
    1011: "the client stopped (1011)",
}


def close_reason(code: int | None) -> str:
    """Why a websocket ended, from its close code."""
    if code is None:
        return "connection lost"
    return CLOSE_REASONS.get(code, f"closed (code {code})")
