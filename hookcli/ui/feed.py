"""Where the full-screen view's rows come from, and the actions it takes on them.

Two feeds fill the same ``Rows``: ``RelayFeed`` (``hook ui``) reads the relay's history, follows
new events on a tail stream that moves no cursor, and polls the rows not yet final;
``ListenFeed`` (``hook listen --ui``) runs ``listen.listen`` unchanged and turns its updates into
rows. Replays go through ``replay.replay``, the path ``hook replay`` uses. Nothing here imports
Textual: the app calls in, and hears back through ``View``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from websockets.asyncio.client import ClientConnection

from hookcli.client import RelayApi, Stream
from hookcli.config import Connection, resolve
from hookcli.delivery import RetryPolicy
from hookcli.errors import HookError, UsageError
from hookcli.failures import target_kind
from hookcli.listen import ListenSettings, TargetSpec
from hookcli.protocol import EventMessage, Start, Subscribe, Subscribed, Welcome
from hookcli.replay import ReplaySettings, replay
from hookcli.targets import Outcome
from hookcli.transform import RuleTarget
from hookcli.ui.model import Attempt, Row, apply_record, row_from_record
from hookcli.updates import (
    Caught,
    ConnectionState,
    Delivered,
    Notice,
    Ready,
    Received,
    Retry,
    State,
    Update,
)

#: Rows kept in memory; the oldest go first.
KEEP = 5000
#: Seconds between status polls of rows not yet final, and how many of the newest rows count.
POLL_EVERY, POLL_NEWEST = 1.0, 500
#: Seconds a closing view lets the tail stream's handshake finish.
HANDSHAKE_WAIT = 1.0


class View(Protocol):
    """What a feed tells the app."""

    #: Set when the view closes: finish the request at hand and return.
    closing: asyncio.Event

    def rows_changed(self, rows: Iterable[Row]) -> None:
        """These rows were added or changed (already in ``Rows``)."""

    def state_changed(self, text: str, ok: bool) -> None:
        """The connection's state, one short line."""

    def notice(self, text: str, level: Literal["info", "warning", "error"] = "info") -> None:
        """Something to tell the user that is not a row."""


class Rows:
    """Every row the view holds, by event id, in seq order; at most ``limit``."""

    def __init__(self, limit: int = KEEP) -> None:
        self.limit = limit
        self.by_id: dict[str, Row] = {}
        self.order: list[Row] = []
        #: Bumped when a row lands anywhere but the end (the table is then rebuilt).
        self.generation = 0

    def __len__(self) -> int:
        return len(self.order)

    def get(self, event_id: str) -> Row | None:
        """The row of this event, if held."""
        return self.by_id.get(event_id)

    def put(self, row: Row) -> Row:
        """Add ``row`` (or return the held row of the same event)."""
        held = self.by_id.get(row.id)
        if held is not None:
            return held
        self.by_id[row.id] = row
        if not self.order or row.seq >= self.order[-1].seq:
            self.order.append(row)
        else:
            bisect.insort(self.order, row, key=lambda r: r.seq)
            self.generation += 1
        if len(self.order) > self.limit:
            # The oldest tenth at once: the table is rebuilt once per that many new rows.
            cut = max(1, self.limit // 10)
            for dropped in self.order[:cut]:
                self.by_id.pop(dropped.id, None)
            del self.order[:cut]
            self.generation += 1
        return row

    def unfinished(self, newest: int = POLL_NEWEST) -> list[Row]:
        """Rows among the newest ``newest`` whose status may still change."""
        return [row for row in self.order[-newest:] if not row.final]


@dataclass
class Replayer:
    """How to replay a row: the connection, and which target and name for it."""

    connection: Connection
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    #: listen --ui: the listener's own target, name and input; None: the row's recorded target.
    target: TargetSpec | None = None
    identity: str | None = None
    rule_target: RuleTarget | None = None

    def plan(self, row: Row) -> tuple[TargetSpec, str]:
        """The target and listener name a replay of ``row`` uses; UsageError when unknown."""
        if self.target is not None and self.identity is not None:
            return self.target, self.identity
        failure = row.latest_failure()
        source = failure or (row.history[-1] if row.history else None)
        if source is None or not source.target:
            raise UsageError(
                f"{row.id[:8]} has no recorded target to replay to",
                hint=f"replay it from a shell: hook replay {row.id[:8]} --target …",
            )
        kind = target_kind(source.target)
        if kind != "http":
            # A command or handler the relay names is never run (as `hook replay --issue`):
            # a relay must not be able to make this machine execute anything.
            raise UsageError(
                f"{row.id[:8]} went to `{source.target}`: hook runs only commands you name",
                hint=f"replay it from a shell: hook replay {row.id[:8]} --exec/--handler …"
                " (or run `hook listen --ui` with that target and press r there)",
            )
        spec = TargetSpec(url=source.target)
        spec.build()  # a remote URL is refused here, as hook replay refuses it
        return spec, source.listener

    async def replay(self, row: Row, view: View) -> bool:
        """Deliver ``row``'s event again; the row shows progress and then the recorded result.

        Returns True when delivered. Errors become a notice and the row's note: a replay never
        takes the view down.
        """
        try:
            spec, identity = self.plan(row)
        except HookError as exc:
            row.note = exc.message
            view.notice(exc.message + (f" ({exc.hint})" if exc.hint else ""), "error")
            view.rows_changed([row])
            return False
        before = row.status
        row.status = "replaying"
        row.note = f"replaying to {spec.url or spec.command or spec.handler}"
        view.rows_changed([row])
        outcome: list[Delivered] = []

        def emit(update: Update) -> None:
            if isinstance(update, Retry):
                row.note = (
                    f"replay attempt {update.attempt} failed: {_outcome_text(update.outcome)}"
                )
                view.rows_changed([row])
            elif isinstance(update, Delivered):
                outcome.append(update)

        settings = ReplaySettings(
            connection=self.connection,
            target=spec,
            identity=identity,
            ids=(row.id,),
            policy=self.policy,
            rule_target=self.rule_target,
        )
        try:
            await replay(settings, emit)
            async with RelayApi.open(self.connection) as api:
                apply_record(row, await api.event(row.id), identity)
        except HookError as exc:
            row.status = before if before != "replaying" else "failed"
            row.note = f"replay: {exc.message}"
            view.notice(f"replay of {row.id[:8]} failed: {exc.message}", "error")
            view.rows_changed([row])
            return False
        done = outcome[-1] if outcome else None
        delivered = done is not None and done.outcome.delivered
        if done is not None:
            row.note = f"replay {'delivered' if delivered else 'failed'}: " + _outcome_text(
                done.outcome
            )
        view.notice(f"{row.id[:8]} {row.note}", "info" if delivered else "warning")
        view.rows_changed([row])
        return delivered


def _outcome_text(outcome: Outcome) -> str:
    code = "" if outcome.code is None else f"{outcome.code} "
    error = f" {outcome.error}" if outcome.error and not outcome.delivered else ""
    return f"{code}{outcome.latency_ms:.0f} ms{error}".strip()


async def fetch_record(connection: Connection, event_id: str) -> dict[str, Any]:
    """``GET /v1/events/<id>``: the event, its raw request and every delivery."""
    async with RelayApi.open(connection) as api:
        return await api.event(event_id)


# ------------------------------------------------------------------ hook ui


@dataclass(frozen=True, slots=True)
class RelayQuery:
    """``hook ui``'s filters: what the history page and the live stream ask the relay for."""

    pattern: dict[str, Any] = field(default_factory=dict)
    #: ``GET /v1/events`` query (source, detail_type, listener, status, since, pattern).
    filters: Mapping[str, Any] = field(default_factory=dict)
    listener: str | None = None
    limit: int = 200


class RelayFeed:
    """``hook ui``: history first, then new events live, statuses polled until final."""

    def __init__(self, connection: Connection, query: RelayQuery, rows: Rows) -> None:
        self.connection = connection
        self.query = query
        self.rows = rows
        self.poll_every = POLL_EVERY
        self.poll_failed = False

    async def run(self, view: View) -> None:
        """Until cancelled; raises HookError when the relay cannot be used at all."""
        async with RelayApi.open(self.connection) as api:
            info = await api.info()
            head = int(info.get("head") or 0)
            page = await api.events(limit=self.query.limit, before=head + 1, **self._filters())
            if view.closing.is_set():
                return
            added = [self.rows.put(row_from_record(r, self.query.listener)) for r in reversed(page)]
            view.rows_changed(added)
            view.state_changed(f"connected to {info.get('relay', 'relay')}", True)
            stream = Stream(
                self.connection,
                Subscribe(
                    name="ui",
                    pattern=self.query.pattern,
                    start=Start("seq", seq=head + 1),
                    mode="tail",
                ),
                lambda update: self._on_update(update, view),
            )
            handler = _Tail(self.rows, view)
            tail = asyncio.create_task(stream.run(handler))
            try:
                while not tail.done() and not view.closing.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(view.closing.wait(), self.poll_every)
                    if not view.closing.is_set():
                        await self._poll(api, view)
                if tail.done():
                    tail.result()
            finally:
                # Cancelled during its opening handshake, the websocket would leave its
                # socket to the garbage collector: let a handshake under way finish first.
                if not handler.ready.is_set() and not tail.done():
                    ready = asyncio.ensure_future(handler.ready.wait())
                    await asyncio.wait([tail, ready], timeout=HANDSHAKE_WAIT)
                    ready.cancel()
                tail.cancel()
                await asyncio.gather(tail, return_exceptions=True)
                # The stream's reconnecting iterator is left suspended inside its connection's
                # ``async with``; close that connection here, while the loop still runs.
                if handler.ws is not None:
                    await handler.ws.close()

    def _filters(self) -> dict[str, Any]:
        return {k: v for k, v in self.query.filters.items() if v is not None}

    def _on_update(self, update: Update, view: View) -> None:
        if isinstance(update, State) and update.state is ConnectionState.CONNECTED:
            view.state_changed("connected, live", True)
        elif isinstance(update, State) and update.state is ConnectionState.RECONNECTING:
            view.state_changed(f"reconnecting: {update.error or 'connection lost'}", False)

    async def _poll(self, api: RelayApi, view: View) -> None:
        """Fetch the rows whose status may still change, from the oldest such one on."""
        waiting = self.rows.unfinished()
        if not waiting:
            return
        try:
            page = await api.events(after=waiting[0].seq - 1, limit=1000, **self._filters())
        except HookError as exc:
            self.poll_failed = True
            view.state_changed(f"cannot poll the relay: {exc.message}", False)
            return
        if self.poll_failed:
            self.poll_failed = False
            view.state_changed("connected, live", True)
        changed = []
        for record in page:
            row = self.rows.get(str((record.get("event") or {}).get("id", "")))
            if row is not None and row.status != "replaying":
                before = (row.status, row.code, len(row.history))
                apply_record(row, record, self.query.listener)
                if (row.status, row.code, len(row.history)) != before:
                    changed.append(row)
        if changed:
            view.rows_changed(changed)


class _Tail:
    """The tail stream's handler: each event becomes a pending row."""

    def __init__(self, rows: Rows, view: View) -> None:
        self.rows = rows
        self.view = view
        #: Set once subscribed (the handshake is over).
        self.ready = asyncio.Event()
        self.ws: ClientConnection | None = None

    async def on_ready(
        self, ws: ClientConnection, welcome: Welcome, subscribed: Subscribed
    ) -> None:
        self.ws = ws
        self.ready.set()

    async def on_event(self, message: EventMessage) -> bool:
        row = Row(seq=message.seq, event=message.event.to_dict(), received=time.time())
        self.view.rows_changed([self.rows.put(row)])
        return True


# ------------------------------------------------------------------ hook listen --ui


class ListenFeed:
    """``hook listen --ui``: ``listen.listen`` as it is, its updates turned into rows."""

    def __init__(self, settings: ListenSettings, rows: Rows, view: View) -> None:
        self.settings = settings
        self.rows = rows
        self.view = view
        self.target = ""
        self.relay: Connection | None = None
        self.by_seq: dict[int, Row] = {}

    def replayer(self) -> Replayer | None:
        """Replays go to this listener's target under its name (once the relay is known)."""
        if self.relay is None:
            return None
        return Replayer(
            self.relay,
            policy=self.settings.policy,
            target=self.settings.target,
            identity=self.settings.name,
            rule_target=self.settings.rule_target,
        )

    async def run(self) -> None:
        """Listen until cancelled (or an error, raised as ``hook listen`` raises it)."""
        from hookcli.listen import listen

        await listen(self.settings, self.emit)

    def emit(self, update: Update) -> None:
        """The listener's ``emit``: every update lands in a row or the status line."""
        if isinstance(update, Ready):
            self.target = update.target
            token = self.settings.connection.token
            self.relay = (
                resolve(update.relay, token)
                if token is None
                else replace(self.settings.connection, relay=update.relay)
            )
            where = "resumed" if update.resumed else "from"
            self.view.state_changed(
                f"{update.listener} -> {update.target} ({where} seq {update.start}, "
                f"relay {update.relay_name})",
                True,
            )
        elif isinstance(update, Received):
            row = self.rows.put(
                Row(
                    seq=update.seq,
                    event=update.event.to_dict(),
                    received=time.time(),
                    listener=self.settings.name,
                    target=self.target,
                )
            )
            self.by_seq[update.seq] = row
            self.view.rows_changed([row])
        elif isinstance(update, Retry | Delivered):
            self._attempt(update)
        elif isinstance(update, State):
            text = update.state.value + (f": {update.error}" if update.error else "")
            self.view.state_changed(text, update.state is ConnectionState.CONNECTED)
        elif isinstance(update, Notice):
            self.view.notice(update.message, update.level)
        elif isinstance(update, Caught):
            self.view.notice(f"caught up to seq {update.seq}; what follows is live")

    def _attempt(self, update: Retry | Delivered) -> None:
        row = self.by_seq.get(update.seq) or self.rows.get(update.event.id)
        if row is None:
            row = self.rows.put(
                Row(seq=update.seq, event=update.event.to_dict(), received=time.time())
            )
        outcome = update.outcome
        final = isinstance(update, Delivered)
        attempt = update.attempts if isinstance(update, Delivered) else update.attempt
        row.history.append(
            Attempt(
                at=time.time(),
                listener=self.settings.name,
                target=outcome.action or self.target,
                status="delivered" if outcome.delivered else ("failed" if final else "retrying"),
                attempt=attempt,
                latency_ms=outcome.latency_ms,
                code=outcome.code,
                error=outcome.error,
                detail=outcome.detail,
                output=outcome.output,
            )
        )
        row.listener = self.settings.name
        row.code = outcome.code
        row.latency_ms = outcome.latency_ms
        row.attempts = attempt
        if isinstance(update, Retry):
            row.status = "retrying"
            row.note = f"retry in {update.delay:.1f} s"
        else:
            row.status = "delivered" if outcome.delivered else "failed"
            row.note = "duplicate: answered again" if update.duplicate else ""
            self.by_seq.pop(update.seq, None)
        self.view.rows_changed([row])
