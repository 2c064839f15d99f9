"""``hook expect`` as a library: wait until N matching events have arrived, or a timeout.

For CI scripts and tests that trigger a producer and assert its events (AWS's Integration
Application Test Kit calls it ``wait_until_event_matched``). It is a tail (stream mode
``tail``): it answers nothing and moves no listener's cursor. It subscribes to every event
from the start point and matches here, with the relay's own pattern engine, so that a wait
that times out can say what did arrive instead of only "nothing matched".
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from websockets.asyncio.client import ClientConnection

from hookcli.client import Stream
from hookcli.config import Connection
from hookcli.errors import MissingEventsError, RelayError
from hookcli.events import Event, decode_event_text, short_text
from hookcli.patterns import Pattern, compile_pattern
from hookcli.protocol import EventMessage, Start, Subscribe, Subscribed, Welcome
from hookcli.updates import ConnectionState, Ready, Received, State, Update

Emit = Callable[[Update], None]
#: Events that arrived without matching, kept (the latest ones) to explain a timeout.
KEEP_OTHERS = 20


@dataclass(frozen=True, slots=True)
class ExpectSettings:
    """Everything ``hook expect`` takes, parsed."""

    connection: Connection
    pattern: dict[str, Any]
    count: int = 1
    timeout: float = 30.0
    start: Start = field(default_factory=lambda: Start("now"))


@dataclass(frozen=True, slots=True)
class Expected:
    """What arrived while waiting: the matching events (at most ``count``) and the others."""

    matched: tuple[Event, ...]
    count: int
    timeout: float
    #: Events that arrived and did not match: how many, and the latest few.
    other_count: int = 0
    others: tuple[Event, ...] = ()

    @property
    def complete(self) -> bool:
        """True when ``count`` matching events arrived."""
        return len(self.matched) >= self.count

    def summary(self) -> str:
        """One paragraph for a failed wait: how many matched, and what else arrived."""
        text = (
            f"{len(self.matched)} of {self.count} expected event(s) arrived within "
            f"{self.timeout:g} s"
        )
        if not self.other_count:
            return text + "; no other events arrived"
        lines = [f"{text}; {self.other_count} other event(s) arrived that did not match:"]
        if self.other_count > len(self.others):
            lines.append(f"  (the latest {len(self.others)})")
        for event in self.others:
            detail = json.dumps(event.detail, separators=(",", ":"), ensure_ascii=False)
            what = f"{event.source}  {event.detail_type}  {event.id}"
            lines.append(f"  {what}  detail {short_text(detail, 120)}")
        return "\n".join(lines)

    def error(self) -> MissingEventsError:
        """The error ``hook expect`` exits with when the wait timed out."""
        return MissingEventsError(
            self.summary(),
            hint="check that the producer ran and put its events on the relay's bus; "
            "`hook events` lists what the relay received",
        )


async def expect(settings: ExpectSettings, emit: Emit) -> Expected:
    """Wait for ``settings.count`` events matching the pattern; returns what arrived either way.

    Matching events are emitted as ``Received`` as they arrive. The stream reconnects until the
    timeout, so the relay may still be starting when the wait begins; a relay never reached
    within the timeout is a ``RelayError`` (exit 3), not a timeout.
    """
    matcher = compile_pattern(settings.pattern, allow_empty=True)
    waiter = _Waiter(settings, matcher, emit)
    subscribe = Subscribe(name="expect", pattern={}, start=settings.start, mode="tail")
    stream = Stream(settings.connection, subscribe, waiter.on_update)
    waiter.stream = stream
    emit(State(ConnectionState.CONNECTING))
    if settings.count > 0:
        try:
            async with asyncio.timeout(settings.timeout):
                await stream.run(waiter)
        except TimeoutError:
            if not waiter.connected:
                problem = (waiter.problem or "").removeprefix("cannot reach the relay: ")
                why = f" ({problem})" if problem else ""
                raise RelayError(
                    f"cannot reach the relay at {settings.connection.http_url} within "
                    f"{settings.timeout:g} s{why}",
                    hint="is `hook relay serve` running? check --relay / HOOK_RELAY",
                ) from None
    return Expected(
        matched=tuple(waiter.matched),
        count=settings.count,
        timeout=settings.timeout,
        other_count=waiter.other_count,
        others=tuple(waiter.others),
    )


class _Waiter:
    """The stream handler: match each event, keep the matches, stop at ``count``."""

    def __init__(self, settings: ExpectSettings, matcher: Pattern, emit: Emit) -> None:
        self.settings = settings
        self.matcher = matcher
        self.emit = emit
        self.stream: Stream | None = None
        self.matched: list[Event] = []
        #: The highest seq handled: the relay sends in seq order, so a resend after a
        #: reconnect is at or below it (constant memory, however long the wait).
        self.last_seq = -1
        self.other_count = 0
        self.others: deque[Event] = deque(maxlen=KEEP_OTHERS)
        self.connected = False
        self.problem: str | None = None

    def on_update(self, update: Update) -> None:
        if isinstance(update, State) and update.error:
            self.problem = update.error
        self.emit(update)

    async def on_ready(
        self, ws: ClientConnection, welcome: Welcome, subscribed: Subscribed
    ) -> None:
        first = not self.connected
        self.connected = True
        if first and self.stream is not None:
            # Pin the start to a sequence: a reconnect before any event arrived must resume
            # here, not at the head of that moment ("now" again would skip what came between).
            self.stream.subscribe = replace(
                self.stream.subscribe, start=Start("seq", seq=subscribed.start + 1)
            )
        self.emit(
            Ready(
                relay=self.settings.connection.http_url,
                relay_name=welcome.relay,
                listener="expect",
                pattern=self.settings.pattern,
                target="",
                start=subscribed.start,
                head=subscribed.head,
                resumed=False,
                reconnect=not first,
            )
        )

    async def on_event(self, message: EventMessage) -> bool:
        event = message.event
        if message.seq <= self.last_seq:
            return True
        self.last_seq = message.seq
        # The event's text as the relay matched it: a key given twice offers every value.
        if self.matcher.matches(decode_event_text(event.to_json())[0]):
            self.matched.append(event)
            self.emit(Received(message.seq, event))
            return len(self.matched) < self.settings.count
        self.other_count += 1
        self.others.append(event)
        return True
