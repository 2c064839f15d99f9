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
import functools
import hashlib
import hmac
import json
import logging
import math
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from aiohttp import WSMsgType, web

from hookcli import __version__
from hookcli.errors import (
    AuthError,
    HookError,
    InvalidPatternError,
    NotFoundError,
    ProtocolError,
    StoreError,
    UsageError,
)
from hookcli.events import Event, RawRequest, event_from_request, new_event_id
from hookcli.failures import FailureCount, group_failures, group_members
from hookcli.patterns import Pattern, PatternSet, compile_pattern
from hookcli.protocol import (
    DEFAULT_ACK_WAIT,
    DEFAULT_ISSUE_EVENTS,
    MAX_ISSUE_EVENTS,
    MAX_ISSUES,
    MAX_NAME_LENGTH,
    MAX_SEQ,
    MAX_TARGET_LENGTH,
    PROTOCOL_VERSION,
    Error,
    ErrorCode,
    Hello,
    IssueQuery,
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
    parse_issue_key,
    parse_issue_query,
    parse_result,
    result_seq,
)
from hookcli.relay import connections
from hookcli.relay.activity import Activity, ActivitySink, Connected, Left, Received, close_reason
from hookcli.relay.guard import GuardSettings, guard_middleware
from hookcli.relay.store import Delivery, Listener, Store, StoredEvent, stored_text

log = logging.getLogger("hook.relay")

MIB = 1024 * 1024
#: A live session queues at most this many matched events in memory; past it, it drops the
#: queue and reads from the store (bounded memory for a listener that stopped reading).
QUEUE_LIMIT = 5_000
READ_PAGE = 500
RESULT_FLUSH_SECONDS = 0.05
#: While the store refuses writes (disk full), retry this often, not every flush.
RESULT_RETRY_SECONDS = 1.0
#: Results kept in memory while the store refuses writes; past it the streams pause.
MAX_UNSAVED = 100_000
#: Listener names whose in-flight delivery counts are remembered across reconnects.
MAX_REMEMBERED_LISTENERS = 1_000
#: Query times beyond year 9999 are not times (and overflow datetime).
MAX_UNIX_SECONDS = 253_402_300_799.0


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
class _Sent:
    """An event sent and not answered: its id (a result must name it), when to send it again,
    and how many times it was sent."""

    id: str
    deadline: float
    delivery: int


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
    ack_wait: float = DEFAULT_ACK_WAIT
    #: What the listener said it delivers to; recorded with each of its results.
    target: str | None = None
    #: Seqs sent and not yet answered (listen mode), in ack-deadline order.
    in_flight: dict[int, _Sent] = field(default_factory=dict)
    #: Delivery counts of events a previous connection under this name left unanswered.
    deliveries: dict[int, int] = field(default_factory=dict)
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
        activity: ActivitySink | None = None,
    ) -> None:
        self.store = store
        #: Who hears about events and listeners (``hook relay serve``); None: nobody, no cost.
        self._activity = activity
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
        #: Results, cursor moves and listener saves the store refused (disk full), kept to retry.
        self._unsaved: list[Delivery] = []
        self._unsaved_cursors: dict[str, int] = {}
        self._unsaved_listeners: dict[str, tuple[int, dict[str, Any]]] = {}
        self._store_problem: str | None = None
        self._store_failures = 0
        self._in_flight_counts: dict[str, dict[int, int]] = {}
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
        if stored and self._activity is not None:
            self._report_received(stored)
        for events, future in batch:
            if not future.done():
                ids = {event.id for event in events}
                future.set_result([item for item in stored if item.event.id in ids])

    def _report(self, update: Activity) -> None:
        """Hand an update to the activity callback; a failing one is dropped, never the relay."""
        if self._activity is None:
            return
        try:
            self._activity(update)
        except Exception:  # e.g. a closed stdout: stop reporting, keep relaying
            log.warning("activity reporting failed; turning it off", exc_info=True)
            self._activity = None

    def _report_received(self, stored: Sequence[StoredEvent]) -> None:
        now = time.time()
        for item in stored:
            event = item.event
            request = event.request
            # The stored text, not a fresh encode: the size as kept, at no extra cost.
            size = len(request.body) if request is not None else len(item.event_json.encode())
            via: Literal["bus", "ingest"] = "ingest" if request is not None else "bus"
            self._report(
                Received(now, item.seq, event.id, event.source, event.detail_type, size, via)
            )

    def _fan_out(self, stored: Sequence[StoredEvent]) -> None:
        for item in stored:
            # The event's data as its text reads (a repeated key keeps every value), as the
            # catch-up reads below and `hook pattern test` see it.
            for name in self._patterns.matches(item.event.document):
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
        app.router.add_get("/v1/issues", self._get_issues)
        app.router.add_get("/v1/issues/{key}", self._get_issue)
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
        if self._store_problem is not None:
            problem = (
                f"store: cannot record results ({len(self._unsaved)} kept,"
                f" {self._store_failures} tries failed): {self._store_problem}"
            )
        elif self._flusher is not None and self._flusher.done():
            problem = "the results flusher stopped; restart the relay"
        body: dict[str, Any] = {
            "ok": problem is None,
            "head": head,
            "listeners": len(self._sessions),
            # Answers received and not yet in the store (a full disk keeps them here).
            "pending_results": len(self._unsaved)
            + sum(len(s.results) for s in self._sessions.values()),
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
        if not _channel_ok(channel):
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
            headers=tuple(
                (k.decode("utf-8", "replace"), v.decode("utf-8", "replace"))
                for k, v in request.raw_headers
            ),
            body=body,
        )
        event = event_from_request(
            channel,
            raw,
            # The configured header wins; without it, a well-known sender's own event type.
            detail_type=request.headers.get(self.ingest.detail_type_header) or None,
            event_id=new_event_id(),
            received=datetime.now(UTC),
            # The runner does not decompress (auto_decompress=False), so ``body`` is the wire
            # bytes; a gzip/deflate JSON body is decoded for ``detail`` only, within the cap.
            decoded_limit=cap,
        )
        stored = await self.commit([event])
        # Spelled out, not json_response: the id is a UUID (nothing to escape) and the seq an
        # int, and this answer is written once per webhook.
        return web.Response(
            text=f'{{"id":"{event.id}","seq":{stored[0].seq}}}',
            status=202,
            content_type="application/json",
        )

    # ---------------------------------------------------------------- history

    async def _get_events(self, request: web.Request) -> web.Response:
        scope = self._authorize(request)
        q = request.query
        listener = _scoped(scope, q["listener"]) if q.get("listener") else None
        patterns = [_query_pattern(q["pattern"])] if q.get("pattern") else []
        if q.get("status") == "pending" and listener is not None:
            # Pending means "this listener will get it": only events matching its pattern.
            known = self.store.listener(listener)
            if known is not None and known.pattern:
                patterns.append(compile_pattern(known.pattern))
        keep = None
        if patterns:

            def keep(item: StoredEvent) -> bool:
                document = item.document()
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
            raise UsageError(str(exc), hint="see GET /v1/events in docs/protocol.md") from exc
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
        item = self._find(request.match_info["id"])
        return web.json_response(
            _history_row(item, self.store.deliveries_at(item.seq), scope=scope, full=True),
            dumps=_dumps,
        )

    def _find(self, given: str) -> StoredEvent:
        """The event with this id, or the one whose id starts with ``given`` (what hook prints).

        A bare id names the original when an archive replay stored the event again under the
        same id (else the earliest copy kept); ``ID@REPLAY`` (the id or a prefix of it) names
        that replay's copy. An ambiguous prefix is a 409 listing the candidates, so the caller
        can pick one.
        """
        item = self._exact(given)
        if item is not None:
            return item
        base, at, replay = given.rpartition("@")
        if not (at and base and replay):
            base, replay = given, ""
        item = self.store.get(self._full_id(base), replay or None)
        if item is None:
            raise NotFoundError(
                f"event {base[:80]!r} has no copy from the replay {replay[:80]!r} on this relay",
                hint="ID@REPLAY names the copy an archive replay re-sent (its replay-name, as"
                " `hook events` shows); a bare id names the original",
            )
        return item

    def _exact(self, given: str) -> StoredEvent | None:
        """The event with exactly this id, or the copy ``ID@REPLAY`` names; None if none."""
        item = self.store.get(given)
        if item is None:
            base, at, replay = given.rpartition("@")
            if at and base and replay:
                item = self.store.get(base, replay)
        return item

    def _full_id(self, given: str) -> str:
        """The stored id ``given`` is, or the one it is the unique start of (404, 409 if not)."""
        if self.store.get(given) is not None:
            return given
        if len(given) < MIN_ID_PREFIX:
            raise NotFoundError(
                f"no event with id {given[:80]!r} on this relay",
                hint=f"give the full id or at least {MIN_ID_PREFIX} of its first characters; "
                + _RETENTION_HINT,
            )
        found = self.store.ids_with_prefix(given, limit=MAX_CANDIDATES + 1)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            shown = found[:MAX_CANDIDATES]
            more = " (and more)" if len(found) > MAX_CANDIDATES else ""
            raise web.HTTPConflict(
                text=_dumps(
                    {
                        "error": f"{given[:80]!r} is the start of {len(shown)}{more} event ids",
                        "hint": "give more characters of the id (`hook events --wide` shows"
                        " full ids)",
                        "candidates": shown,
                        "more": bool(more),
                    }
                ),
                content_type="application/json",
            )
        raise NotFoundError(f"no event with id {given[:80]!r} on this relay", hint=_RETENTION_HINT)

    async def _post_result(self, request: web.Request) -> web.Response:
        """Record a delivery made outside a stream (``hook replay``), with where it went and
        which failed delivery it answers."""
        scope = self._authorize(request)
        event_id = request.match_info["id"]
        item = self._exact(event_id)  # `ID@REPLAY`: a replayed copy stored under the same id
        if item is None:
            return _error(404, f"no event with id {event_id!r} on this relay", _RETENTION_HINT)
        try:
            data = await request.json()
            if not isinstance(data, dict):
                raise ValueError("body must be a JSON object")
            listener = _name_field(data, "listener", required=True)
            assert listener is not None
            replayed_by = _name_field(data, "replayed_by")
            target = data.get("target")
            if target is not None and (
                not isinstance(target, str) or len(target) > MAX_TARGET_LENGTH
            ):
                raise ValueError(f"'target' must be text of at most {MAX_TARGET_LENGTH} characters")
            owner = _scoped(scope, listener)
            replay_of = data.get("replay_of")
            if replay_of is not None:
                if not isinstance(replay_of, int) or isinstance(replay_of, bool):
                    raise ValueError("'replay_of' must be a delivery id (an integer)")
                answered = self.store.delivery(replay_of) if 0 < replay_of <= MAX_SEQ else None
                if answered is None or answered.seq != item.seq or answered.listener != owner:
                    raise ValueError(
                        f"'replay_of' {replay_of} is not a delivery of this event to {listener!r}"
                    )
            else:
                # The failure this replay answers: the listener's latest delivery, if failed.
                latest = self.store.latest_delivery(owner, item.seq)
                if latest is not None and latest.status == "failed":
                    replay_of = latest.id
            result = parse_result({**data, "seq": item.seq, "id": item.event_id})
        except RecursionError:
            return _error(400, "bad result: the JSON body is nested too deeply", _RESULT_HINT)
        except (ValueError, ProtocolError) as exc:
            return _error(400, f"bad result: {exc}", _RESULT_HINT)
        delivery = replace(
            _delivery(owner, result, replay=True),
            target=target,
            replayed_by=_scoped(scope, replayed_by) if replayed_by else None,
            replay_of=replay_of,
        )
        self.store.record([delivery])
        return web.json_response({"recorded": True, "seq": item.seq})

    # ---------------------------------------------------------------- issues

    async def _get_issues(self, request: web.Request) -> web.Response:
        """Current failures grouped by cause (``failures.group_failures``), oldest group first."""
        scope = self._authorize(request)
        query = parse_issue_query(request.query)
        groups = group_failures(self._failure_counts(scope, query))
        limit = query.limit or MAX_ISSUES
        return web.json_response(
            {"issues": [group.to_dict() for group in groups[:limit]]}, dumps=_dumps
        )

    async def _get_issue(self, request: web.Request) -> web.Response:
        """One group and a page of its events (by seq; ``after`` pages on, ``more`` says so)."""
        scope = self._authorize(request)
        key = parse_issue_key(request.match_info["key"])
        query = parse_issue_query(request.query, max_limit=MAX_ISSUE_EVENTS)
        counts = self._failure_counts(scope, query)
        group = next((g for g in group_failures(counts) if g.key == key), None)
        if group is None:
            raise NotFoundError(
                f"no failure group {key} on this relay",
                hint="its events may have succeeded since (groups shrink as they do);"
                " `hook events --issues` lists the current groups",
            )
        cause = group_members(counts, key)[0]
        limit = query.limit or DEFAULT_ISSUE_EVENTS
        rows = self.store.failures_with(
            cause,
            after=query.after,
            limit=limit + 1,
            source=query.source,
            detail_type=query.detail_type,
            since=_time(query.since),
        )
        return web.json_response(
            {
                "issue": group.to_dict(),
                "events": [
                    {"seq": seq, "id": event_id, "delivery": row_id}
                    for seq, event_id, row_id in rows[:limit]
                ],
                "more": len(rows) > limit,
            },
            dumps=_dumps,
        )

    def _failure_counts(self, scope: str, query: IssueQuery) -> list[FailureCount]:
        """The store's counted failures for an issues query; a team member sees its own only."""
        return self.store.failure_counts(
            listener=_scoped(scope, query.listener) if query.listener else None,
            within=f"{scope}/" if scope else None,
            source=query.source,
            detail_type=query.detail_type,
            since=_time(query.since),
        )

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
                    await _send_error(ws, "bad-message", exc.message, seq=result_seq(msg.data))
                    continue
                try:
                    if isinstance(message, Result | Results):
                        if session is None or session.mode != "listen":
                            await _send_error(
                                ws, "not-subscribed", "result before a listen subscription"
                            )
                            continue
                        for error in self._on_results(session, message):
                            await ws.send_str(encode(error))
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
                        welcome = Welcome(self.info.name, __version__, self.info.mode)
                        await ws.send_str(encode(welcome))
                    elif isinstance(message, Subscribe):
                        if session is not None:
                            await _send_error(
                                ws, "already-subscribed", "one subscription per connection"
                            )
                            continue
                        session = await self._subscribe(ws, scope, message)
                        if session is not None:
                            pump = asyncio.create_task(self._pump(session))
                    elif isinstance(message, Unknown):
                        log.debug("ignoring unknown message type %r", message.type)
                    else:
                        await _send_error(
                            ws, "bad-message", f"{message.type} is a relay-to-client message"
                        )
                except HookError as exc:
                    # The store failed (disk, closed): say so; the connection and the relay live.
                    await _send_error(ws, "internal", exc.message, hint=exc.hint or "")
        finally:
            if pump is not None:
                pump.cancel()
            if session is not None:
                self._detach(session)
        return ws

    async def _subscribe(
        self, ws: web.WebSocketResponse, scope: str, message: Subscribe
    ) -> _Session | None:
        """Start a subscription, or answer why not (None): bad pattern, start, pattern change."""
        try:
            pattern = compile_pattern(message.pattern) if message.pattern else None
        except InvalidPatternError as exc:
            await _send_error(ws, "invalid-pattern", exc.message)
            return None
        except RecursionError:
            await _send_error(ws, "invalid-pattern", "the pattern is nested too deeply")
            return None
        listen = message.mode == "listen"
        key = _scoped(scope, message.name) if listen else f"tail:{id(ws)}"
        head = self.store.head()
        start = message.start
        if start.kind == "seq" and start.seq > head + 1:
            # Such a subscription would wait for seqs this store may never reach: say so.
            await _send_error(
                ws,
                "start-past-head",
                f"'from' {start.seq} is past this relay's newest event ({head})",
                hint=f"use a seq from 0 to {head + 1}, 'now' for new events only, or 'last'",
            )
            return None
        known = self._known(key) if listen else None
        restart = False
        if known is not None and start.kind == "last":
            old, new = _canonical(known.pattern), _canonical(message.pattern)
            if old != new and message.pattern_change == "refuse":
                await _send_error(
                    ws,
                    "pattern-changed",
                    f"listener {message.name!r} was subscribed with pattern {old}; this"
                    f" subscribe asks for {new}",
                    hint="resubscribe with pattern_change 'keep-cursor' (resume from the"
                    " cursor, matching the new pattern) or 'restart' (start from now), or"
                    " use another name",
                    old_pattern=known.pattern,
                    new_pattern=message.pattern,
                )
                return None
            restart = old != new and message.pattern_change == "restart"
        previous = self._sessions.get(key)
        if previous is not None:
            # A listener that reconnects (after a sleep or a network drop) replaces its stale
            # connection: the relay may not have noticed the old one died yet.
            self._detach(previous, "replaced by a newer connection")
            await _send_error(
                previous.ws,
                "already-subscribed",
                f"replaced by a newer connection of the listener {message.name!r}",
                fatal=True,
            )
            known = self._known(key)  # the old connection's last results are in now
        # Counts of a previous connection apply only when it resumes where that one stopped.
        counts = self._in_flight_counts.pop(key, {}) if listen else {}
        if restart:
            known = None
        pos = _start_position(start, head, known.cursor if known else None, self.store)
        session = _Session(
            key=key,
            mode=message.mode,
            pattern=pattern,
            window=message.window,
            ws=ws,
            pos=pos,
            ack_wait=message.ack_wait,
            target=message.target,
        )
        if listen:
            if start.kind == "last" and known is not None:
                session.answered = self.store.answered_after(key, pos) | {
                    d.seq for d in self._unsaved if d.listener == key and d.seq > pos
                }
                session.deliveries = counts
            self._save_listener(key, pos, message.pattern)
        session.saved_cursor = pos
        self._sessions[key] = session
        self._patterns.add(key, pattern if pattern is not None else {})  # {}: every event
        await ws.send_str(
            encode(
                Subscribed(
                    name=message.name,
                    start=pos,
                    head=head,
                    resumed=known is not None and start.kind == "last",
                    window=message.window,
                )
            )
        )
        if self._activity is not None:
            resumed = known is not None and start.kind == "last"
            name = key if listen else "tail"
            self._report(Connected(time.time(), name, message.mode, pos, head, resumed))
        return session

    def _known(self, key: str) -> Listener | None:
        """The stored listener, with what the relay holds for it and could not write yet."""
        known = self.store.listener(key)
        pending = self._unsaved_listeners.get(key)
        if pending is not None:
            known = Listener(key, pending[0], pending[1], time.time())
        moved = self._unsaved_cursors.get(key)
        if moved is not None:
            if known is None:
                known = Listener(key, moved, {}, time.time())
            elif moved > known.cursor:
                known = Listener(key, moved, known.pattern, known.last_seen)
        return known

    def _save_listener(self, key: str, cursor: int, pattern: dict[str, Any]) -> None:
        """Set the listener's cursor and pattern; kept for the flusher when the disk is full."""
        # This cursor is set exactly (it may go back, for from: 0): an older pending forward
        # move must not be applied over it.
        self._unsaved_cursors.pop(key, None)
        try:
            if self._store_problem is not None:
                raise StoreError(self._store_problem)
            self.store.save_listener(key, cursor=cursor, pattern=pattern, seen=time.time())
        except HookError as exc:
            self._unsaved_listeners[key] = (cursor, pattern)
            self._write_failed(exc)

    def _detach(self, session: _Session, reason: str | None = None) -> None:
        if session.closed:
            return
        session.closed = True
        if self._activity is not None:
            why = reason or close_reason(session.ws.close_code)
            name = session.key if session.mode == "listen" else "tail"
            self._report(Left(time.time(), name, session.mode, why))
        if self._sessions.get(session.key) is session:
            del self._sessions[session.key]
            self._patterns.remove(session.key)
        if session.mode == "listen":
            if session.in_flight and len(self._in_flight_counts) < MAX_REMEMBERED_LISTENERS:
                # The next connection under this name gets these again: count on from here.
                self._in_flight_counts[session.key] = {
                    seq: sent.delivery for seq, sent in session.in_flight.items()
                }
            self._flush([session])

    async def _pump(self, session: _Session) -> None:
        """Send the session its matching events in seq order, within its in-flight window.

        In listen mode an event left unanswered ``ack_wait`` seconds is sent again with its
        delivery count (JetStream's AckWait): a listener that lost it is not stuck forever.
        """
        ws = session.ws
        listen = session.mode == "listen"
        try:
            while not ws.closed:
                # Clear first, then look at the state, then wait: a wake-up that lands while
                # we were sending is never lost.
                session.wake.clear()
                if listen:
                    if await self._redeliver(session):
                        continue
                    if len(session.in_flight) >= session.window or self._backlogged():
                        await self._wait(session)
                        continue
                item = self._next(session)
                if item is None:
                    if not session.sent_live_marker:
                        session.sent_live_marker = True
                        await ws.send_str(encode(Live(self.store.head())))
                        continue
                    await self._wait(session)
                    continue
                if item.seq in session.answered:
                    session.answered.discard(item.seq)
                    continue
                delivery = 1
                if listen:
                    delivery = session.deliveries.pop(item.seq, 0) + 1
                    deadline = time.monotonic() + session.ack_wait
                    session.in_flight[item.seq] = _Sent(item.event_id, deadline, delivery)
                await ws.send_str(
                    encode_event(item.seq, item.event_json, item.request_json, delivery)
                )
        except (ConnectionResetError, RuntimeError) as exc:
            log.debug("stream to %s ended: %s", session.key, exc)
        except HookError as exc:
            # The store cannot be read: end this stream clearly; the listener reconnects.
            log.warning("stream to %s stopped: %s", session.key, exc.message)
            await _send_error(ws, "internal", exc.message, hint=exc.hint or "", fatal=True)

    async def _redeliver(self, session: _Session) -> bool:
        """Send the oldest unanswered event again if its ack wait ran out; True if one was due."""
        if not session.in_flight:
            return False
        seq, sent = next(iter(session.in_flight.items()))
        now = time.monotonic()
        if sent.deadline > now:
            return False
        del session.in_flight[seq]
        item = self.store.get_seq(seq)
        if item is None:
            return True  # removed by retention meanwhile: nothing left to answer
        sent.delivery += 1
        sent.deadline = now + session.ack_wait
        # Re-inserted last: with one ack_wait per session, dict order stays deadline order.
        session.in_flight[seq] = sent
        await session.ws.send_str(
            encode_event(seq, item.event_json, item.request_json, sent.delivery)
        )
        return True

    async def _wait(self, session: _Session) -> None:
        """Sleep until woken, the next ack deadline, or (results piling up) the next flush."""
        timeout: float | None = None
        if session.in_flight:
            first = next(iter(session.in_flight.values()))
            timeout = max(first.deadline - time.monotonic(), 0.0)
        if self._backlogged():
            timeout = RESULT_RETRY_SECONDS if timeout is None else min(timeout, 1.0)
        try:
            async with asyncio.timeout(timeout):
                await session.wake.wait()
        except TimeoutError:
            pass

    def _backlogged(self) -> bool:
        """Too many results wait for the store (disk full): stop sending until they are written."""
        return len(self._unsaved) >= MAX_UNSAVED

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
                rows if pattern is None else [r for r in rows if pattern.matches(r.document())]
            )
        return session.queue.popleft() if session.queue else None

    def _on_results(self, session: _Session, message: Result | Results) -> list[Error]:
        """Record each valid result; an error for each refused one, naming its seq (or index)."""
        errors: list[Error] = []
        if isinstance(message, Result):
            error = self._on_result(session, message)
            return [] if error is None else [error]
        for item in message.items:
            error = self._on_result(session, item)
            if error is not None:
                errors.append(error)
        for rejected in message.rejected:
            errors.append(
                Error(
                    "bad-message",
                    f"results item {rejected.index}: {rejected.message}",
                    hint=_ERROR_HINTS["bad-message"],
                    seq=rejected.seq,
                    index=rejected.index,
                )
            )
        return errors

    def _on_result(self, session: _Session, result: Result) -> Error | None:
        sent = session.in_flight.get(result.seq)
        if sent is None:
            # Answered already (a redelivery answered twice) or never sent: nothing to record.
            log.debug("%s answered seq %s, which is not in flight", session.key, result.seq)
            return None
        if sent.id != stored_text(result.id):
            return Error(
                "id-mismatch",
                f"result for seq {result.seq} names event {result.id!r}, but the event at"
                f" seq {result.seq} is {sent.id!r}; not recorded",
                hint=_ERROR_HINTS["id-mismatch"],
                seq=result.seq,
            )
        del session.in_flight[result.seq]
        session.results.append(_delivery(session.key, result, replay=False, target=session.target))
        session.wake.set()
        return None

    async def _on_startup(self, app: web.Application) -> None:
        self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        """Every 50 ms, one transaction for every listener's new results and cursor moves.

        It never stops: a failed write keeps the results in memory (bounded: past
        ``MAX_UNSAVED`` the streams pause) and is retried every second until it succeeds.
        """
        while True:
            failing = self._store_problem is not None
            await asyncio.sleep(RESULT_RETRY_SECONDS if failing else RESULT_FLUSH_SECONDS)
            try:
                self._flush([s for s in self._sessions.values() if s.mode == "listen"])
            except Exception as exc:  # never let the flusher die: report it, retry
                self._write_failed(exc)

    def _flush(self, sessions: Sequence[_Session]) -> None:
        """Store answered results and moved cursors of ``sessions`` (and any kept from a failed
        write) in one transaction; on failure they stay kept for the next try."""
        try:
            head: int | None = self.store.head() if sessions else 0
        except HookError as exc:
            head = None  # cursors move on the next try; the results are kept meanwhile
            self._write_failed(exc)
        for session in sessions:
            self._unsaved += session.results
            session.results = []
            cursor = session.cursor(head) if head is not None else session.saved_cursor
            if cursor != session.saved_cursor:
                self._unsaved_cursors[session.key] = session.saved_cursor = cursor
        if not (self._unsaved or self._unsaved_cursors or self._unsaved_listeners):
            if head is not None and self._store_problem is not None:
                log.warning("the store answers again")
                self._store_problem = None
                self._store_failures = 0
            return
        try:
            for key, (cursor, pattern) in list(self._unsaved_listeners.items()):
                self.store.save_listener(key, cursor=cursor, pattern=pattern)
                del self._unsaved_listeners[key]
            self.store.record(self._unsaved, self._unsaved_cursors)
        except Exception as exc:
            self._write_failed(exc)
            return
        if self._store_problem is not None:
            log.warning(
                "results are recorded again (%d kept in memory meanwhile)", len(self._unsaved)
            )
            self._store_problem = None
            self._store_failures = 0
        self._unsaved = []
        self._unsaved_cursors = {}

    def _write_failed(self, exc: Exception) -> None:
        """Note a failed write: health turns false, and it is logged once per outage."""
        self._store_failures += 1
        if self._store_problem is not None:
            return
        if isinstance(exc, HookError):
            self._store_problem = exc.message
            log.error("cannot record results, keeping them in memory and retrying: %s", exc.message)
        else:
            self._store_problem = f"{type(exc).__name__}: {exc}"
            log.exception("cannot record results, keeping them in memory and retrying")

    async def _on_shutdown(self, app: web.Application) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        for session in list(self._sessions.values()):
            self._detach(session)
            await session.ws.close(code=1001, message=b"relay shutting down")
        if self._unsaved:
            log.error(
                "%d results could not be recorded before shutdown (%s): those events will be"
                " delivered again",
                len(self._unsaved),
                self._store_problem,
            )


# -------------------------------------------------------------------- helpers

#: Shortest id prefix ``GET /v1/events/<id>`` resolves (hook prints 8), and most candidates listed.
MIN_ID_PREFIX = 4
MAX_CANDIDATES = 10
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


def _delivery(
    listener: str, result: Result, *, replay: bool, target: str | None = None
) -> Delivery:
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
        target=target,
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
                "id": d.id,
                "listener": d.listener,
                "status": d.status,
                "attempt": d.attempt,
                "latency_ms": d.latency_ms,
                "code": d.code,
                "error": d.error,
                "at": d.at,
                "replay": d.replay,
                "target": d.target,
                "replayed_by": d.replayed_by,
                "replay_of": d.replay_of,
            }
            for d in deliveries
        ],
    }
    if full:  # the stored text as received, for a byte-exact `hook replay`
        row["event_text"] = item.event_json
    if item.event.request is not None and full:
        row["request"] = item.event.request.to_dict()
    elif item.event.request is not None:
        row["request"] = {"method": item.event.request.method, "size": len(item.event.request.body)}
    return row


def _name_field(data: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    """A listener name in a request body: 1-200 characters (optional unless ``required``)."""
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_LENGTH:
        raise ValueError(f"'{key}' must be 1-{MAX_NAME_LENGTH} characters")
    return value


_RESULT_HINT = (
    'send {"listener", "status", "attempt", "latency_ms", "code"?, "error"?} as docs/protocol.md'
    " describes"
)


def _query_pattern(text: str) -> Pattern:
    """The ``pattern`` query parameter, compiled; a pattern nested too deep is a 400 too."""
    try:
        return compile_pattern(text)
    except InvalidPatternError as exc:
        if exc.hint:
            raise
        raise InvalidPatternError(
            exc.message, hint="pass an EventBridge pattern as JSON; `hook pattern test` checks it"
        ) from None
    except RecursionError:
        raise UsageError(
            "the pattern is nested too deeply", hint="EventBridge patterns are a few levels deep"
        ) from None


def _int(value: str | None) -> int | None:
    """A seq or count from the query: 0 to 2^63-1 (SQLite's INTEGER), ASCII digits only."""
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > MAX_SEQ:
        raise UsageError(
            f"expected an integer from 0 to {MAX_SEQ}, got {value[:40]!r}",
            hint="before/after are sequence numbers as `hook events` shows them; limit <= 1000",
        )
    return int(value)


def _time(value: str | None) -> float | None:
    if not value:
        return None
    hint = "e.g. 2024-05-01T12:00:00Z or 1714564800"
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or abs(seconds) > MAX_UNIX_SECONDS:
            raise UsageError(f"unix seconds out of range: {value[:40]!r}", hint=hint)
        return seconds
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    except (ValueError, OverflowError):
        raise UsageError(
            f"expected an ISO time or unix seconds, got {value[:40]!r}", hint=hint
        ) from None


# Every webhook asks, and a relay's senders use a few channels: a generator over the name's
# characters per request was a visible share of ingest's own time. Bounded like the Host cache.
@functools.lru_cache(maxsize=256)
def _channel_ok(channel: str) -> bool:
    """Is this a channel name: 1-64 letters, digits, '-', '_' or '.'?"""
    return 0 < len(channel) <= 64 and all(c.isalnum() or c in "-_." for c in channel)


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


#: The hint each websocket error carries unless the relay has a more precise one.
_ERROR_HINTS: dict[str, str] = {
    "bad-message": "see docs/protocol.md for the message's fields and their ranges",
    "id-mismatch": "answer each event with the seq and id of its own event frame",
    "start-past-head": "use 'now', 'last', or a seq at most the relay's head + 1",
    "pattern-changed": "resubscribe with pattern_change 'keep-cursor' or 'restart'",
    "unsupported-protocol": "upgrade the client or the relay so both speak the same protocol",
    "invalid-pattern": "fix the pattern; `hook pattern test` checks one locally",
    "not-subscribed": "send subscribe with mode 'listen' first; tail subscriptions send no results",
    "already-subscribed": "one subscription per connection; open another connection for another",
    "unauthorized": "connect with Authorization: Bearer <token>",
    "internal": "the relay's log says more; the connection can be retried",
}
#: Close codes (RFC 6455 7.4.1): after a fatal error frame, 1008 "policy violation".
CLOSE_FATAL = 1008


async def _send_error(
    ws: web.WebSocketResponse,
    code: ErrorCode,
    message: str,
    *,
    fatal: bool = False,
    hint: str = "",
    seq: int | None = None,
    old_pattern: dict[str, Any] | None = None,
    new_pattern: dict[str, Any] | None = None,
) -> None:
    """Send an ``error`` frame (with a hint, always); a fatal one then closes with 1008."""
    if ws.closed:
        return
    error = Error(
        code,
        message,
        hint=hint or _ERROR_HINTS.get(code, ""),
        fatal=fatal,
        seq=seq,
        old_pattern=old_pattern,
        new_pattern=new_pattern,
    )
    try:
        await ws.send_str(encode(error))
        if fatal:
            await ws.close(code=CLOSE_FATAL, message=code.encode())
    except (ConnectionResetError, RuntimeError) as exc:
        log.debug("could not send error %s: %s", code, exc)


def _canonical(pattern: Mapping[str, Any]) -> str:
    """A pattern as comparable text: the same pattern spelled in another key order is equal."""
    return json.dumps(pattern, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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
