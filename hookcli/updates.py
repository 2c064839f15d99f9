"""Typed updates that listen, tail and replay emit; ``cli/render.py`` alone turns them into output.

Core module: plain frozen dataclasses, no I/O. Each has a ``kind`` that is also the ``type`` of
its ``--json`` line, so the JSON output contract is this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from hookcli.events import Event
from hookcli.targets import Outcome


class ConnectionState(Enum):
    """Where the listener's connection to the relay stands."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Ready:
    """Subscribed: events follow. Emitted after every (re)subscription."""

    relay: str
    relay_name: str
    listener: str
    pattern: dict[str, Any]
    target: str
    start: int
    head: int
    resumed: bool
    reconnect: bool = False
    kind: Literal["ready"] = "ready"


@dataclass(frozen=True, slots=True)
class Received:
    """An event arrived from the relay (for tail: the whole output)."""

    seq: int
    event: Event
    kind: Literal["event"] = "event"


@dataclass(frozen=True, slots=True)
class Retry:
    """An attempt failed and another will follow after ``delay`` seconds."""

    seq: int
    event: Event
    attempt: int
    outcome: Outcome
    delay: float
    kind: Literal["retry"] = "retry"


@dataclass(frozen=True, slots=True)
class Delivered:
    """The final result of handing one event to the target (delivered or failed)."""

    seq: int
    event: Event
    outcome: Outcome
    attempts: int
    duplicate: bool = False
    kind: Literal["result"] = "result"


@dataclass(frozen=True, slots=True)
class State:
    """The connection changed state; ``error`` says why when it dropped."""

    state: ConnectionState
    error: str | None = None
    retry_in: float | None = None
    kind: Literal["state"] = "state"


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should know that is not an event (reload, embedded relay, probe)."""

    message: str
    level: Literal["info", "warning"] = "info"
    kind: Literal["notice"] = "notice"


@dataclass(frozen=True, slots=True)
class Caught:
    """Every stored event up to ``seq`` was sent; what follows is live."""

    seq: int
    kind: Literal["live"] = "live"


Update = Ready | Received | Retry | Delivered | State | Notice | Caught


@dataclass(frozen=True, slots=True)
class ArchiveReplay:
    """Where an EventBridge archive replay stands (``hook replay --archive``), from DescribeReplay.

    Not part of ``Update``: it comes from AWS, not from a relay stream, and has its own renderer.
    """

    name: str
    archive: str
    state: str
    event_start: datetime | None
    event_end: datetime | None
    #: The event time the replay has reached (EventLastReplayedTime): its progress.
    reached: datetime | None = None
    reason: str = ""
    #: The rules the replay goes to: the relay's own, so production targets see nothing.
    rules: tuple[str, ...] = ()
    kind: Literal["archive-replay"] = "archive-replay"

    @property
    def done(self) -> bool:
        """True once the state is final."""
        return self.state in ("COMPLETED", "CANCELLED", "FAILED")

    @property
    def progress(self) -> float | None:
        """How much of the time window was replayed, 0 to 1 (None before the first event)."""
        if self.state == "COMPLETED":
            return 1.0
        if self.reached is None or self.event_start is None or self.event_end is None:
            return None
        span = (self.event_end - self.event_start).total_seconds()
        if span <= 0:
            return None
        done = (self.reached - self.event_start).total_seconds() / span
        return min(1.0, max(0.0, done))
