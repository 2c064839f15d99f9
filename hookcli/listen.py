"""``hook listen`` and ``hook tail`` as a library: subscribe, deliver, answer, emit updates.

Nothing here prints; every line the user sees is an ``Update`` rendered by ``cli/render.py``.
``tail`` is ``listen`` without a target: the same stream, the same reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import shlex
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection

from hookcli.client import Stream, relay_answers, send_results
from hookcli.config import DEFAULT_RELAY, Connection, is_loopback
from hookcli.delivery import Attempt, RetryPolicy, deliver
from hookcli.errors import ConfigError, StoreError
from hookcli.events import Event
from hookcli.patterns import compile_pattern
from hookcli.protocol import (
    DEFAULT_ACK_WAIT,
    MAX_ACK_WAIT,
    EventMessage,
    PatternChange,
    Result,
    Start,
    Subscribe,
    Subscribed,
    Welcome,
)
from hookcli.rules import RuleSource, load_rule
from hookcli.targets import Notice as NoticeCallback
from hookcli.targets import Outcome, Target, make_target, parse_handler_spec, parse_target_url
from hookcli.transform import RuleTarget
from hookcli.updates import (
    ConnectionState,
    Delivered,
    Notice,
    Ready,
    Received,
    Retry,
    State,
    Update,
)

Emit = Callable[[Update], None]
#: Event keys (id, @replay-name) remembered to suppress duplicates (an event re-sent after a
#: reconnect).
REMEMBER = 10_000
#: Seconds a result may wait for the results of events queued behind it (see _answer).
ANSWER_DELAY = 0.005
#: Seconds a stopping listener waits for its last results to be sent.
ANSWER_FLUSH_SECONDS = 1.0


def send_hint(pattern: Mapping[str, Any]) -> str:
    """A ``hook send`` line for another terminal whose event this listener's pattern lets
    through: the pattern's first exact ``source`` and ``detail-type``, checked against it."""
    source = _first_string(pattern.get("source")) or "my.app"
    detail_type = _first_string(pattern.get("detail-type")) or "Hello"
    line = (
        f"hook send --source {shlex.quote(source)} --detail-type {shlex.quote(detail_type)}"
        """ --detail '{"hello": "world"}'"""
    )
    event = {"source": source, "detail-type": detail_type, "detail": {"hello": "world"}}
    if pattern and not compile_pattern(dict(pattern)).matches(event):
        return f"{line} (with the fields your pattern asks for, so that it matches)"
    return line


def _first_string(values: Any) -> str | None:
    if isinstance(values, list):
        return next((value for value in values if isinstance(value, str)), None)
    return None


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """Which local code gets the events: exactly one of url, command, handler."""

    url: str | None = None
    command: str | None = None
    handler: str | None = None
    allow_remote: bool = False
    keep_host: bool = False
    retry_4xx: bool = False
    watch: tuple[Path, ...] = ()
    concurrency: int = 1

    def label(self) -> str:
        """What this target is, short and stable: the default listener identity's suffix.

        ``3000`` or ``3000/hooks`` for a loopback URL (``host:port/path`` for another host),
        ``exec:<6 hex of the command's SHA-256>``, ``handler:app.py`` (``:func`` when not
        ``handler``). The same command line gives the same label, so it resumes the same cursor;
        different targets differ, so listeners side by side never replace each other.
        """
        if self.url is not None:
            parts = parse_target_url(self.url, allow_remote=True)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            path = parts.path.rstrip("/")
            host = parts.hostname or "localhost"
            where = str(port) if is_loopback(host) else f"{host}:{port}"
            return f"{where}{path}"
        if self.command is not None:
            digest = hashlib.sha256(self.command.strip().encode("utf-8", "replace")).hexdigest()
            return f"exec:{digest[:6]}"
        if self.handler is not None:
            file, function = parse_handler_spec(self.handler)
            return f"handler:{file.name}" + ("" if function == "handler" else f":{function}")
        return "tail"

    def build(self, on_notice: NoticeCallback | None = None) -> Target:
        """Validate and construct the target (no network I/O yet)."""
        return make_target(
            url=self.url,
            command=self.command,
            handler=self.handler,
            allow_remote=self.allow_remote,
            keep_host=self.keep_host,
            retry_4xx=self.retry_4xx,
            watch=self.watch,
            on_notice=on_notice,
            concurrency=self.concurrency,
        )


def default_identity(user_host: str, target: TargetSpec) -> str:
    """The listener name when ``--name`` is not given: ``user@host:<target label>``.

    The identity names where events go, not which events: the README's listeners side by side
    (``:3000``, ``:exec:…``, ``:handler:app.py``) each keep their own cursor, and running the
    same command again resumes it. The pattern is left out on purpose: with a pattern hash in
    the name, editing a filter would silently start a fresh listener from "now" and strand the
    old one's backlog (replayed in full the day the old filter comes back). Without it, a
    changed filter for the same target is the one case the relay asks about
    (``--pattern-change keep-cursor|restart``), once, with a hint.
    """
    return f"{user_host}:{target.label()}"


@dataclass(frozen=True, slots=True)
class ListenSettings:
    """Everything ``hook listen`` takes, parsed."""

    connection: Connection
    name: str
    pattern: dict[str, Any]
    target: TargetSpec
    start: Start = field(default_factory=lambda: Start("last"))
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: int = 1
    exit_on_disconnect: bool = False
    #: When the relay stored another pattern for this name: refuse, keep-cursor or restart.
    pattern_change: PatternChange = "refuse"
    #: Seconds before the relay sends an unanswered event again; None: ``ack_wait_for``.
    ack_wait: float | None = None
    #: What the target gets (--input-path, --input-transformer, --from-rule); None: the event.
    rule_target: RuleTarget | None = None
    #: --from-rule: read the pattern and rule_target from this rule once the relay is known.
    from_rule: RuleSource | None = None


def ack_wait_for(policy: RetryPolicy, window: int, concurrency: int) -> float:
    """Seconds the relay should wait for an answer before sending an event again.

    The longest a working delivery can take: every attempt timing out and every backoff at its
    cap, times the events queued ahead of it on each worker, plus a margin. A slow but working
    listener is then never sent an event twice; a wedged one gets it again eventually.
    """
    attempts = policy.retries + 1
    backoff = sum(policy.delay(n, rand=lambda: 1.0) for n in range(1, min(attempts, 1000)))
    per_event = policy.timeout * attempts + backoff
    queued = math.ceil(window / max(1, concurrency))
    return min(MAX_ACK_WAIT, max(DEFAULT_ACK_WAIT, per_event * queued + 5.0))


@dataclass(frozen=True, slots=True)
class TailSettings:
    """Everything ``hook tail`` takes, parsed."""

    connection: Connection
    pattern: dict[str, Any]
    start: Start = field(default_factory=lambda: Start("now"))
    count: int | None = None
    exit_on_disconnect: bool = False


@contextlib.asynccontextmanager
async def relay_for(
    connection: Connection, emit: Emit, pattern: Mapping[str, Any] | None = None
) -> AsyncIterator[Connection]:
    """The relay to use: the configured one, one answering locally, or an embedded one.

    A configured relay that is down is never replaced silently: the stream keeps retrying it.
    """
    if connection.configured or await relay_answers(DEFAULT_RELAY):
        yield connection
        return
    from hookcli.relay.service import RelaySettings, start_relay

    try:
        running = await start_relay(RelaySettings())
    except ConfigError as exc:
        raise ConfigError(
            f"no relay is configured and hook could not start one: {exc.message}",
            hint="start one elsewhere (`hook relay serve --port 8751`) and pass "
            "--relay http://127.0.0.1:8751, or free port 8750",
        ) from exc
    except StoreError as exc:
        raise StoreError(
            f"no relay is configured and hook could not start one: {exc.message}",
            hint="a relay started elsewhere uses that store: pass its URL with --relay",
        ) from exc
    try:
        emit(
            Notice(
                f"No relay configured, so hook started an embedded local relay at {running.url} "
                "(an emulated EventBridge bus; no AWS account needed). "
                f"From another terminal: {send_hint(pattern or {})}"
            )
        )
        yield Connection(
            relay=running.url,
            token=running.local_token,
            configured=False,
            local_token=running.local_token is not None,
        )
    finally:
        await running.stop()


async def listen(settings: ListenSettings, emit: Emit) -> None:
    """Deliver every matching event to the target until cancelled (or disconnected, if asked)."""
    if settings.pattern:
        compile_pattern(settings.pattern)  # invalid patterns fail before any network I/O
    target = settings.target.build(on_notice=lambda text, level="info": emit(Notice(text, level)))
    async with relay_for(settings.connection, emit, settings.pattern) as connection:
        if settings.from_rule is not None:
            loaded = await load_rule(settings.from_rule, connection)
            emit(Notice(loaded.summary))
            settings = replace(settings, pattern=loaded.pattern, rule_target=loaded.rule_target)
        await target.start()
        try:
            warning = await target.probe()
            if warning:
                emit(Notice(warning, level="warning"))
            listener = _Listener(settings, target, connection, emit)
            await listener.run()
        finally:
            await target.close()


class _Listener:
    """The stream handler for listen: queue events, deliver with N workers, answer each."""

    def __init__(
        self, settings: ListenSettings, target: Target, connection: Connection, emit: Emit
    ) -> None:
        self.settings = settings
        self.target = target
        self.connection = connection
        self.emit = emit
        self.ws: ClientConnection | None = None
        self.queue: asyncio.Queue[EventMessage] = asyncio.Queue()
        self.done: OrderedDict[str, tuple[Outcome, int]] = OrderedDict()
        self.running: dict[str, asyncio.Future[tuple[Outcome, int]]] = {}
        #: Ids queued and not yet taken by a worker (a redelivery of one is not queued twice).
        self.waiting: set[str] = set()
        self.reconnects = 0
        self.answers: list[Result] = []
        #: Set when the waiting results should leave: the sender task then sends them.
        self.answer_ready = asyncio.Event()
        self.answer_timer: asyncio.TimerHandle | None = None
        self.stopping = False
        #: Results per message at most while catching up (set from the window in run()).
        self.answer_batch = 16

    async def run(self) -> None:
        window = min(max(32, 4 * self.settings.concurrency), 1000)
        self.answer_batch = window // 2
        subscribe = Subscribe(
            name=self.settings.name,
            pattern=self.settings.pattern,
            start=self.settings.start,
            mode="listen",
            window=window,
            ack_wait=self.settings.ack_wait
            or ack_wait_for(self.settings.policy, window, self.settings.concurrency),
            pattern_change=self.settings.pattern_change,
            target=self.target.description,
        )
        stream = Stream(
            self.connection, subscribe, self.emit, reconnect=not self.settings.exit_on_disconnect
        )
        self.emit(State(ConnectionState.CONNECTING))
        streaming = asyncio.create_task(stream.run(self))
        workers = [
            asyncio.create_task(self._work()) for _ in range(max(1, self.settings.concurrency))
        ]
        sender = asyncio.create_task(self._sender())
        tasks = [streaming, *workers, sender]
        try:
            # Workers and the sender never end on their own: one that does failed (a target
            # that cannot run at all), and the listener must stop and say so rather than sit
            # there connected.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            try:
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                # Then the results still waiting for company leave, while the connection is
                # open: an event delivered but not answered would be delivered again later.
                self.stopping = True
                self.answer_ready.set()
                await asyncio.wait([sender], timeout=ANSWER_FLUSH_SECONDS)
            finally:
                sender.cancel()
                streaming.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self.emit(State(ConnectionState.CLOSED))

    async def on_ready(
        self, ws: ClientConnection, welcome: Welcome, subscribed: Subscribed
    ) -> None:
        self.ws = ws
        # Events queued but not started on the old connection come again, in order, on the
        # new one (they were never answered): drop the stale copies to keep relay order.
        while not self.queue.empty():
            self.queue.get_nowait()
        self.waiting.clear()
        self.emit(
            Ready(
                relay=self.connection.http_url,
                relay_name=welcome.relay,
                listener=self.settings.name,
                pattern=self.settings.pattern,
                target=self.target.description,
                start=subscribed.start,
                head=subscribed.head,
                resumed=subscribed.resumed,
                reconnect=self.reconnects > 0,
            )
        )
        self.reconnects += 1

    async def on_event(self, message: EventMessage) -> bool:
        # The key, not the id alone: an archive replay may re-send an event under its id.
        event_id = message.event.key
        if event_id in self.waiting or event_id in self.running:
            # Sent again (the relay's ack wait ran out, or a reconnect) while this listener
            # still has it queued or in delivery: that copy answers the seq, once.
            if message.delivery > 1:
                self.emit(
                    Notice(
                        f"seq {message.seq} was sent again (delivery {message.delivery}) while"
                        " still being delivered; it is answered once"
                    )
                )
            return True
        self.emit(Received(message.seq, message.event))
        self.waiting.add(event_id)
        self.queue.put_nowait(message)
        return True

    async def _work(self) -> None:
        queue = self.queue
        while True:
            # While catching up the next event is already queued: no coroutine to take it.
            message = queue.get_nowait() if queue.qsize() else await queue.get()
            event = message.event
            key = event.key
            self.waiting.discard(key)
            duplicate = key in self.done or key in self.running
            if key in self.done:
                outcome, attempts = self.done[key]
            elif key in self.running:
                outcome, attempts = await self.running[key]
            else:
                outcome, attempts = await self._deliver(message.seq, event, key)
            self.emit(Delivered(message.seq, event, outcome, attempts, duplicate=duplicate))
            self._answer(
                Result(
                    seq=message.seq,
                    id=event.id,
                    status="delivered" if outcome.delivered else "failed",
                    attempt=attempts,
                    latency_ms=outcome.latency_ms,
                    code=outcome.code,
                    error=outcome.error,
                )
            )

    def _answer(self, result: Result) -> None:
        """Queue a result to leave with others in one ``results`` message.

        Live (nothing else queued), it leaves on the next loop pass with whatever finished in
        the same pass, as soon as before. While catching up on a backlog it waits up to
        ANSWER_DELAY for the results of the events queued behind it (at most half the window,
        so the relay never stalls on a full window): one websocket frame and one wake-up of
        the relay per batch instead of per event, far inside any ack wait.
        """
        self.answers.append(result)
        if len(self.answers) >= self.answer_batch or not self.queue.qsize():
            self.answer_ready.set()
        elif self.answer_timer is None:
            self.answer_timer = asyncio.get_running_loop().call_later(
                ANSWER_DELAY, self.answer_ready.set
            )

    async def _sender(self) -> None:
        """Send the waiting results whenever ``answer_ready`` is set, in messages of at most
        ``answer_batch``; after the last ones once the listener stops.

        One task for the listener's life rather than one per message: a result leaves one
        loop pass after the pass that set ``answer_ready``, taking every result finished
        meanwhile, and costs no task, timer or callback of its own.
        """
        ready = self.answer_ready
        while True:
            await ready.wait()
            ready.clear()
            if self.answer_timer is not None:
                self.answer_timer.cancel()
                self.answer_timer = None
            waiting, self.answers = self.answers, []
            for start in range(0, len(waiting), self.answer_batch):
                await send_results(self.ws, waiting[start : start + self.answer_batch])
            if self.stopping and not self.answers:
                return

    async def _deliver(self, seq: int, event: Event, key: str) -> tuple[Outcome, int]:
        future: asyncio.Future[tuple[Outcome, int]] = asyncio.get_running_loop().create_future()
        self.running[key] = future

        def on_attempt(attempt: Attempt) -> None:
            if attempt.will_retry:
                self.emit(Retry(seq, event, attempt.attempt, attempt.outcome, attempt.retry_in))

        try:
            result = await deliver(
                self.target,
                event,
                self.settings.policy,
                on_attempt,
                rule_target=self.settings.rule_target,
            )
        except BaseException as exc:
            future.cancel()
            del self.running[key]
            raise exc
        future.set_result(result)
        del self.running[key]
        self.done[key] = result
        if len(self.done) > REMEMBER:
            self.done.popitem(last=False)
        return result


async def tail(settings: TailSettings, emit: Emit) -> int:
    """Print matching events without answering or moving any cursor; returns how many arrived."""
    if settings.pattern:
        compile_pattern(settings.pattern)
    async with relay_for(settings.connection, emit, settings.pattern) as connection:
        handler = _Tail(connection, settings, emit)
        subscribe = Subscribe(
            name="tail", pattern=settings.pattern, start=settings.start, mode="tail"
        )
        emit(State(ConnectionState.CONNECTING))
        await Stream(connection, subscribe, emit, reconnect=not settings.exit_on_disconnect).run(
            handler
        )
        return handler.seen


class _Tail:
    def __init__(self, connection: Connection, settings: TailSettings, emit: Emit) -> None:
        self.connection = connection
        self.settings = settings
        self.emit = emit
        self.seen = 0

    async def on_ready(
        self, ws: ClientConnection, welcome: Welcome, subscribed: Subscribed
    ) -> None:
        self.emit(
            Ready(
                relay=self.connection.http_url,
                relay_name=welcome.relay,
                listener="tail",
                pattern=self.settings.pattern,
                target="",
                start=subscribed.start,
                head=subscribed.head,
                resumed=False,
            )
        )

    async def on_event(self, message: EventMessage) -> bool:
        self.seen += 1
        self.emit(Received(message.seq, message.event))
        return self.settings.count is None or self.seen < self.settings.count
