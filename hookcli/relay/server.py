"""The relay's HTTP + websocket server (aiohttp): ingest, history, and the listener stream.

One ``Relay`` owns the store, the set of connected sessions and the fan-out. Events enter through
``Relay.commit`` (from the SQS source or ``POST /v1/ingest``), are committed to the store first,
and are then offered to every live session whose pattern matches (one ``PatternSet`` lookup per
event). A session that is behind, or whose queue overflowed because its listener stalled, reads
from the store instead, so a slow listener never blocks the others, the source, or ingest, and
memory stays bounded. docs/protocol.md describes the wire side.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from hookcli import __version__
from hookcli.errors import (
    AuthError,
    HookError,
    InvalidPatternError,
    NotFoundError,
    ProtocolError,
    UsageError,
)
from hookcli.events import Event, RawRequest, event_from_request, headers_from, new_event_id
from hookcli.patterns import Pattern, PatternSet, compile_pattern
from hookcli.protocol import (
    PROTOCOL_VERSION,
    Error,
    Hello,
    Live,
    Result,
    Results,
    Start,
    Subscribe,
    Subscribed,
    Unknown,
    Welcome,
    decode,
    encode,
    encode_event,
)
from hookcli.relay import connections
from hookcli.relay.guard import GuardSettings, guard_middleware
from hookcli.relay.store import Delivery, Store, StoredEvent

log = logging.getLogger("hook.relay")

MIB = 1024 * 1024
#: A live session queues at most this many matched events in memory; past it, it drops the
#: queue and reads from the store (bounded memory for a listener that stopped reading).
QUEUE_LIMIT = 5_000
READ_PAGE = 500
RESULT_FLUSH_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """How ``POST /v1/ingest/<channel>`` treats a request."""

    max_body: int = MIB
    #: channel -> HMAC-SHA256 secret; ``*`` applies to every channel without its own.
    secrets: Mapping[str, str] = field(default_factory=dict)
    signature_header: str = "X-Hook-Signature"
    detail_type_header: str = "X-Hook-Detail-Type"


@dataclass(frozen=True, slots=True)
class RelayInfo:
    """What ``GET /v1/info`` reports about this relay and its source."""

    name: str
    mode: str
    bus: str
    region: str
    account: str = ""
    queue_url: str = ""
    endpoint_url: str = ""


@dataclass(slots=True)
class _Session:
    """One subscribed websocket: its position, in-flight window and pending live events."""

    key: str
    mode: str
    pattern: Pattern | None
    window: int
    ws: web.WebSocketResponse
    pos: int
    live: bool = False
    queue: deque[StoredEvent] = field(default_factory=deque)
    #: Seqs sent and not yet answered (listen mode).
    in_flight: set[int] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    results: list[Delivery] = field(default_factory=list)
    saved_cursor: int = -1
    answered: set[int] = field(default_factory=set)
    sent_live_marker: bool = False
    closed: bool = False

    def cursor(self, head: int) -> int:
        """Every matching event at or below this seq has been answered (listen mode)."""
        waiting = list(self.in_flight)
        if self.queue:
            waiting.append(self.queue[0].seq)
        if waiting:
            return min(waiting) - 1
        return head if self.live else self.pos


class Relay:
    """The relay's state: store, sessions, fan-out, and the aiohttp application serving them."""

    def __init__(
        self,
        store: Store,
        info: RelayInfo,
        *,
        tokens: Mapping[str, str] | None = None,
        ingest: IngestSettings | None = None,
        max_message: int = MIB,
        heartbeat: float = 20.0,
        health: Callable[[], str | None] | None = None,
        guard: GuardSettings | None = None,
    ) -> None:
        self.store = store
        self.guard = guard or GuardSettings()
        self.info = info
        self.tokens = dict(tokens or {})
        self.ingest = ingest or IngestSettings()
        self.max_message = max_message
        self.heartbeat = heartbeat
        self._health = health
        self._sessions: dict[str, _Session] = {}
        self._patterns = PatternSet()
        self._batch: list[tuple[list[Event], asyncio.Future[list[StoredEvent]]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.app = self._make_app()

    # ---------------------------------------------------------------- commit + fan-out

    async def commit(self, events: Sequence[Event]) -> list[StoredEvent]:
        """Store events (deduplicated by id), then hand each new one to matching live sessions.

        Commits arriving in the same event-loop pass (concurrent webhooks, an SQS batch) share
        one SQLite transaction: a group commit, instead of one transaction per request.
        Returns the newly stored ones among ``events``.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[StoredEvent]] = loop.create_future()
        self._batch.append((list(events), future))
        if len(self._batch) == 1:
            loop.call_soon(self._commit_batch)
        return await future

    def _commit_batch(self) -> None:
        batch, self._batch = self._batch, []
        try:
            stored = self.store.append([event for events, _ in batch for event in events])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        if stored and self._sessions:
            self._fan_out(stored)
        for events, future in batch:
            if not future.done():
                ids = {event.id for event in events}
                future.set_result([item for item in stored if item.event.id in ids])

    def _fan_out(self, stored: Sequence[StoredEvent]) -> None:
        for item in stored:
            for name in self._patterns.matches(item.event.to_dict()):
                session = self._sessions.get(name)
                if session is None or not session.live:
                    continue
                if len(session.queue) >= QUEUE_LIMIT:
                    # The listener stopped reading: fall back to the store from the oldest
                    # event it has not been sent, so memory stays bounded and nothing is lost.
                    session.pos = session.queue[0].seq - 1
                    session.queue.clear()
                    session.live = False
                    session.sent_live_marker = False
                else:
                    session.queue.append(item)
                session.wake.set()

    # ---------------------------------------------------------------- application

    def _make_app(self) -> web.Application:
        app = web.Application(
            client_max_size=self.ingest.max_body,
            middlewares=[guard_middleware(self.guard), self._errors],
        )
        app.router.add_get("/v1/health", self._get_health)
        app.router.add_get("/v1/info", self._get_info)
        app.router.add_get("/v1/stream", self._stream)
        app.router.add_get("/v1/events", self._get_events)
        app.router.add_get("/v1/events/{id}", self._get_event)
        app.router.add_post("/v1/events/{id}/results", self._post_result)
        app.router.add_route("*", "/v1/ingest/{channel}", self._post_ingest)
        app.router.add_route("*", "/v1/ingest/{channel}/{rest:.*}", self._post_ingest)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        """Every error leaves as JSON ``{"error": ..., "hint": ...}``; nothing crashes the relay."""
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except web.HTTPException as exc:
            if exc.status < 400 or exc.content_type == "application/json":
                raise
            return _error(exc.status, exc.reason if exc.text is None else exc.text)
        except HookError as exc:
            return _error(_status_of(exc), exc.message, exc.hint)
        except Exception:
            log.exception("internal error on %s %s", request.method, request.path)
            return _error(500, "internal relay error; see the relay's log")

    def _authorize(self, request: web.Request) -> str:
        """The token's scope name ("" for a single shared token); raises 401 when refused."""
        if not self.tokens:
            return ""
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and given:
            found = ""
            matched = False
            for token, name in self.tokens.items():
                # compare_digest against every token: constant time, no early exit.
                if hmac.compare_digest(token.encode(), given.strip().encode()):
                    found, matched = name, True
            if matched:
                connections.trust(request)  # authenticated: never evicted as an idle stranger
                return found
        raise _http_error(
            web.HTTPUnauthorized,
            "missing or invalid bearer token",
            "pass --token or set HOOK_TOKEN to a token the relay accepts",
        )

    async def _get_health(self, request: web.Request) -> web.Response:
        problem = self._health() if self._health else None
        try:
            head = self.store.head()
        except HookError as exc:
            problem = f"store: {exc.message}"
            head = 0
        body: dict[str, Any] = {
            "ok": problem is None,
            "head": head,
            "listeners": len(self._sessions),
        }
        if problem:
            body["reason"] = problem
        return web.json_response(body, status=200 if problem is None else 503)

    async def _get_info(self, request: web.Request) -> web.Response:
        self._authorize(request)
        info = self.info
        return web.json_response(
            {
                "relay": info.name,
                "version": __version__,
                "protocol": PROTOCOL_VERSION,
                "mode": info.mode,
                "bus": info.bus,
                "region": info.region,
                "account": info.account,
                "queue_url": info.queue_url,
                "endpoint_url": info.endpoint_url,
                "max_body": self.ingest.max_body,
                "head": self.store.head(),
            }
        )

    # ---------------------------------------------------------------- ingest

    async def _post_ingest(self, request: web.Request) -> web.Response:
        channel = request.match_info["channel"]
        if not channel or len(channel) > 64 or not all(c.isalnum() or c in "-_." for c in channel):
            return _error(
                400,
                "channel names are 1-64 letters, digits, '-', '_' or '.'",
                "e.g. /v1/ingest/stripe",
            )
        cap = self.ingest.max_body
        if request.content_length is not None and request.content_length > cap:
            return _too_large(cap)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _too_large(cap)
        secret = self.ingest.secrets.get(channel, self.ingest.secrets.get("*"))
        if secret is not None:
            given = request.headers.get(self.ingest.signature_header, "")
            expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return _error(
                    401,
                    f"signature check failed for channel {channel!r}",
                    f"send {self.ingest.signature_header}: "
                    "sha256=<hex HMAC-SHA256 of the raw body>",
                )
        # The path suffix and query exactly as sent (percent-escapes kept): aiohttp's
        # match_info and query_string are decoded, and a replay must not change the URL.
        parts = request.rel_url.raw_path.split("/", 4)  # "", "v1", "ingest", channel, rest
        rest = parts[4] if len(parts) > 4 else ""
        raw = RawRequest(
            method=request.method,
            path="/" + rest if rest else "",
            query=request.rel_url.raw_query_string,
            # UTF-8 (not latin-1): the HTTP target re-encodes header values as UTF-8, so this
            # round-trips every header a real webhook sender uses byte for byte.
            headers=headers_from(
                [
                    (k.decode("utf-8", "replace"), v.decode("utf-8", "replace"))
                    for k, v in request.raw_headers
                ]
            ),
            body=body,
        )
        detail_type = request.headers.get(self.ingest.detail_type_header) or "webhook"
        event = event_from_request(
            channel,
            raw,
            detail_type=detail_type,
            event_id=new_event_id(),
            received=datetime.now(UTC),
            # The runner does not decompress (auto_decompress=False), so ``body`` is the wire
            # bytes; a gzip/deflate JSON body is decoded for ``detail`` only, within the cap.
            decoded_limit=cap,
        )
        stored = await self.commit([event])
        return web.json_response({"id": event.id, "seq": stored[0].seq}, status=202)

    # ---------------------------------------------------------------- history

    async def _get_events(self, request: web.Request) -> web.Response:
        scope = self._authorize(request)
        q = request.query
        listener = _scoped(scope, q["listener"]) if q.get("listener") else None
        patterns = [compile_pattern(q["pattern"])] if q.get("pattern") else []
        if q.get("status") == "pending" and listener is not None:
            # Pending means "this listener will get it": only events matching its pattern.
            known = self.store.listener(listener)
            if known is not None and known.pattern:
                patterns.append(compile_pattern(known.pattern))
        keep = None
        if patterns:

            def keep(item: StoredEvent) -> bool:
                document = item.event.to_dict()
                return all(pattern.matches(document) for pattern in patterns)

        try:
            rows = self.store.history(
                before=_int(q.get("before")),
                after=_int(q.get("after")),
                limit=min(_int(q.get("limit")) or 50, 1000),
                source=q.get("source") or None,
                detail_type=q.get("detail_type") or None,
                listener=listener,
                # A team member's status filter looks at its own listeners' results only.
                within=f"{scope}/" if scope else None,
                status=q.get("status") or None,
                since=_time(q.get("since")),
                until=_time(q.get("until")),
                keep=keep,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        return web.json_response(
            {
                "events": [
                    _history_row(item, deliveries, scope=scope, full=q.get("full") == "1")
                    for item, deliveries in rows
                ]
            },
            dumps=_dumps,
        )

    async def _get_event(self, request: web.Request) -> web.Response:
        scope = self._authorize(request)
        event_id = request.match_info["id"]
        item = self.store.get(event_id)
        if item is None:
            return _error(404, f"no event with id {event_id!r} on this relay", _RETENTION_HINT)
        return web.json_response(
            _history_row(item, self.store.deliveries(event_id), scope=scope, full=True),
            dumps=_dumps,
        )

    async def _post_result(self, request: web.Request) -> web.Response:
        """Record a delivery made outside a stream (``hook replay``)."""
        scope = self._authorize(request)
        event_id = request.match_info["id"]
        item = self.store.get(event_id)
        if item is None:
            return _error(404, f"no event with id {event_id!r} on this relay", _RETENTION_HINT)
        try:
            data = await request.json()
            if not isinstance(data, dict):
                raise ValueError("body must be a JSON object")
            listener = data.get("listener")
            if not isinstance(listener, str) or not listener:
                raise ValueError("'listener' must be a non-empty string")
            result = decode(json.dumps({**data, "type": "result", "seq": item.seq, "id": event_id}))
        except (ValueError, ProtocolError) as exc:
            return _error(400, f"bad result: {exc}")
        assert isinstance(result, Result)
        self.store.record([_delivery(_scoped(scope, listener), result, replay=True)])
        return web.json_response({"recorded": True, "seq": item.seq})

    # ---------------------------------------------------------------- stream

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        scope = self._authorize(request)
        ws = web.WebSocketResponse(
            heartbeat=self.heartbeat, max_msg_size=self.max_message, compress=False
        )
        await ws.prepare(request)
        session: _Session | None = None
        pump: asyncio.Task[None] | None = None
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type == WSMsgType.BINARY:
                        await _send_error(
                            ws, "bad-message", "binary frames are not part of the protocol"
                        )
                    continue
                try:
                    message = decode(msg.data)
                except ProtocolError as exc:
                    await _send_error(ws, "bad-message", exc.message)
                    continue
                if isinstance(message, Result | Results):
                    if session is None or session.mode != "listen":
                        await _send_error(
                            ws, "not-subscribed", "result before a listen subscription"
                        )
                    elif isinstance(message, Results):
                        for item in message.items:
                            self._on_result(session, item)
                    else:
                        self._on_result(session, message)
                elif isinstance(message, Hello):
                    if message.protocol != PROTOCOL_VERSION:
                        await _send_error(
                            ws,
                            "unsupported-protocol",
                            f"this relay speaks protocol {PROTOCOL_VERSION}, "
                            f"not {message.protocol}",
                            fatal=True,
                        )
                        break
                    await ws.send_str(encode(Welcome(self.info.name, __version__, self.info.mode)))
                elif isinstance(message, Subscribe):
                    if session is not None:
                        await _send_error(
                            ws, "already-subscribed", "one subscription per connection"
                        )
                        continue
                    try:
                        session = await self._subscribe(ws, scope, message)
                    except InvalidPatternError as exc:
                        await _send_error(ws, "invalid-pattern", exc.message)
                        continue
                    pump = asyncio.create_task(self._pump(session))
                elif isinstance(message, Unknown):
                    log.debug("ignoring unknown message type %r", message.type)
                else:
                    await _send_error(
                        ws, "bad-message", f"{message.type} is a relay-to-client message"
                    )
        finally:
            if pump is not None:
                pump.cancel()
            if session is not None:
                self._detach(session)
        return ws

    async def _subscribe(
        self, ws: web.WebSocketResponse, scope: str, message: Subscribe
    ) -> _Session:
        pattern = compile_pattern(message.pattern) if message.pattern else None
        key = _scoped(scope, message.name) if message.mode == "listen" else f"tail:{id(ws)}"
        head = self.store.head()
        known = self.store.listener(key) if message.mode == "listen" else None
        pos = _start_position(message.start, head, known.cursor if known else None, self.store)
        previous = self._sessions.get(key)
        if previous is not None:
            # A listener that reconnects (after a sleep or a network drop) replaces its stale
            # connection: the relay may not have noticed the old one died yet.
            self._detach(previous)
            await _send_error(
                previous.ws, "already-subscribed", "replaced by a newer connection", fatal=True
            )
            await previous.ws.close()
        session = _Session(
            key=key,
            mode=message.mode,
            pattern=pattern,
            window=message.window,
            ws=ws,
            pos=pos,
        )
        if message.mode == "listen":
            if message.start.kind == "last" and known is not None:
                session.answered = self.store.answered_after(key, pos)
            self.store.save_listener(key, cursor=pos, pattern=message.pattern, seen=time.time())
        session.saved_cursor = pos
        self._sessions[key] = session
        self._patterns.add(key, pattern if pattern is not None else {})  # {}: every event
        await ws.send_str(
            encode(
                Subscribed(
                    name=message.name,
                    start=pos,
                    head=head,
                    resumed=known is not None and message.start.kind == "last",
                    window=message.window,
                )
            )
        )
        return session

    def _detach(self, session: _Session) -> None:
        if session.closed:
            return
        session.closed = True
        if self._sessions.get(session.key) is session:
            del self._sessions[session.key]
            self._patterns.remove(session.key)
        if session.mode == "listen":
            self._flush([session])

    async def _pump(self, session: _Session) -> None:
        """Send the session its matching events in seq order, within its in-flight window."""
        ws = session.ws
        try:
            while not ws.closed:
                # Clear first, then look at the state, then wait: a wake-up that lands while
                # we were sending is never lost.
                session.wake.clear()
                if session.mode == "listen" and len(session.in_flight) >= session.window:
                    await session.wake.wait()
                    continue
                item = self._next(session)
                if item is None:
                    if not session.sent_live_marker:
                        session.sent_live_marker = True
                        await ws.send_str(encode(Live(self.store.head())))
                        continue
                    await session.wake.wait()
                    continue
                if item.seq in session.answered:
                    session.answered.discard(item.seq)
                    continue
                if session.mode == "listen":
                    session.in_flight.add(item.seq)
                await ws.send_str(encode_event(item.seq, item.event_json, item.request_json))
        except (ConnectionResetError, RuntimeError) as exc:
            log.debug("stream to %s ended: %s", session.key, exc)

    def _next(self, session: _Session) -> StoredEvent | None:
        """The next event for the session: its queue, refilled from the store while catching up."""
        while not session.queue and not session.live:
            rows = self.store.read(session.pos, READ_PAGE)
            if not rows:
                # Caught up; from now on fan-out feeds the queue. No await between the read
                # and this switch, so no committed event can slip between store and queue.
                session.live = True
                break
            session.pos = rows[-1].seq
            pattern = session.pattern
            session.queue.extend(
                rows
                if pattern is None
                else [r for r in rows if pattern.matches(json.loads(r.event_json))]
            )
        return session.queue.popleft() if session.queue else None

    def _on_result(self, session: _Session, result: Result) -> None:
        if result.seq not in session.in_flight:
            log.debug("%s answered seq %s, which is not in flight", session.key, result.seq)
            return
        session.in_flight.discard(result.seq)
        session.results.append(_delivery(session.key, result, replay=False))
        session.wake.set()

    async def _on_startup(self, app: web.Application) -> None:
        self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        """Every 50 ms, one transaction for every listener's new results and cursor moves."""
        while True:
            await asyncio.sleep(RESULT_FLUSH_SECONDS)
            try:
                self._flush([s for s in self._sessions.values() if s.mode == "listen"])
            except HookError as exc:
                log.error("cannot record results: %s", exc.message)

    def _flush(self, sessions: Sequence[_Session]) -> None:
        """Store answered results and moved cursors of ``sessions`` in one transaction."""
        head = self.store.head() if sessions else 0
        results: list[Delivery] = []
        cursors: dict[str, int] = {}
        for session in sessions:
            results += session.results
            session.results = []
            cursor = session.cursor(head)
            if cursor != session.saved_cursor:
                cursors[session.key] = session.saved_cursor = cursor
        self.store.record(results, cursors)

    async def _on_shutdown(self, app: web.Application) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        for session in list(self._sessions.values()):
            self._detach(session)
            await session.ws.close(code=1001, message=b"relay shutting down")


# -------------------------------------------------------------------- helpers

_RETENTION_HINT = "check the id with `hook events`; events older than the retention are removed"


def _status_of(exc: HookError) -> int:
    """The HTTP status for an expected error: the caller's fault (4xx) or the relay's (503)."""
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, AuthError):
        return 401
    if isinstance(exc, UsageError):
        return 400
    return 503  # the store or the source failed: try again later


def _start_position(start: Start, head: int, cursor: int | None, store: Store) -> int:
    """The seq after which a subscription starts."""
    if start.kind == "now":
        return head
    if start.kind == "last":
        return head if cursor is None else min(cursor, head)
    if start.kind == "seq":
        return max(start.seq - 1, 0)
    moment = datetime.fromisoformat(start.time.replace("Z", "+00:00")).timestamp()
    return store.seq_before(moment)


def _scoped(scope: str, name: str) -> str:
    """Listener names live inside their token's scope, so teams cannot take each other's cursors.

    A name that already carries the caller's scope (as history shows it) is left as it is.
    Scope names never contain ``/`` (``load_tokens`` refuses them), so the first segment of a
    scoped name is always its owner: ``team`` naming ``carol/x`` gets ``team/carol/x``, which no
    other token's listener can be.
    """
    if not scope or name.startswith(f"{scope}/"):
        return name
    return f"{scope}/{name}"


def _delivery(listener: str, result: Result, *, replay: bool) -> Delivery:
    return Delivery(
        listener=listener,
        seq=result.seq,
        event_id=result.id,
        status=result.status,
        attempt=result.attempt,
        latency_ms=result.latency_ms,
        code=result.code,
        error=result.error,
        at=time.time(),
        replay=replay,
    )


def _history_row(
    item: StoredEvent, deliveries: Sequence[Delivery], *, scope: str = "", full: bool = False
) -> dict[str, Any]:
    """One history row; a team member (``scope``) sees only its own listeners' deliveries.

    The events are the team's, but results and error texts (which can carry a response body
    or a stack trace) belong to whoever ran the listener.
    """
    if scope:
        deliveries = [d for d in deliveries if d.listener.startswith(f"{scope}/")]
    row: dict[str, Any] = {
        "seq": item.seq,
        "received": item.received,
        "event": item.event.to_dict(),
        "deliveries": [
            {
                "listener": d.listener,
                "status": d.status,
                "attempt": d.attempt,
                "latency_ms": d.latency_ms,
                "code": d.code,
                "error": d.error,
                "at": d.at,
                "replay": d.replay,
            }
            for d in deliveries
        ],
    }
    if item.event.request is not None and full:
        row["request"] = item.event.request.to_dict()
    elif item.event.request is not None:
        row["request"] = {"method": item.event.request.method, "size": len(item.event.request.body)}
    return row


def _int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise UsageError(f"expected a non-negative integer, got {value!r}")
    return int(value)


def _time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"expected an ISO time or unix seconds, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _error(status: int, message: str, hint: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if hint:
        body["hint"] = hint
    return web.json_response(body, status=status)


def _http_error(cls: type[web.HTTPException], message: str, hint: str) -> web.HTTPException:
    return cls(
        text=json.dumps({"error": message, "hint": hint}),
        content_type="application/json",
    )


def _too_large(cap: int) -> web.Response:
    return _error(
        413,
        f"body larger than the relay's {cap}-byte cap",
        "EventBridge events are at most 1 MiB; raise the cap with `hook relay serve --max-body`",
    )


async def _send_error(
    ws: web.WebSocketResponse, code: str, message: str, *, fatal: bool = False
) -> None:
    if not ws.closed:
        await ws.send_str(encode(Error(code, message, fatal)))  # type: ignore[arg-type]


def tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """A server TLS context from ``--tls-cert``/``--tls-key``, or None for plain HTTP."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise UsageError("--tls-cert and --tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the TLS certificate or key: {exc}") from exc
    return context
