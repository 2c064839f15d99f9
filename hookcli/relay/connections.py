"""Connection-level defences: timeouts, connection caps, quiet malformed HTTP, rate-limited logs.

A team relay faces the internet, so a stranger must not be able to use up its open files, hold
its connections forever, or flood its log. aiohttp alone has none of that (no header-read timeout,
no connection caps, a traceback for every malformed request), so the relay's protocol factory is
wrapped: every accepted socket first meets a ``_Connection`` proxy that the ``ConnectionGuard``
admits, times, and may answer itself before aiohttp's ``RequestHandler`` ever sees it.

Timeouts, by phase of a connection (``_Phase``):

- NEW, nothing received yet: closed after ``idle_timeout`` (a silent connection);
- HEADERS, a request is arriving but its handler has not started (slowloris): answered ``408``
  and closed ``header_timeout`` after its first byte; a handler starting means the headers are in;
- HANDLING, a handler runs: if the request body is still incomplete ``body_timeout`` after the
  handler started (a slow ingest body), the connection is cut; a handler with its body complete
  (a websocket, authenticated before its upgrade) has no timer: the relay's heartbeat governs it;
- IDLE, keep-alive between requests: closed after ``idle_timeout``, or ``keepalive_timeout``
  once the connection has authenticated.

Caps, and why they evict instead of refusing: the relay counts connections per client address
(``max_per_address``, IPv6 grouped by /64, since one host holds a whole /64) and in total
(``max_connections``, kept below the open-file limit with headroom for the store, the source
and the sockets being answered). Only connections that have not authenticated count against the
per-address budget; a connection becomes *trusted* when a request on it passes the bearer-token
check (``trust``), and a trusted connection is never evicted. When a budget is full, the newcomer
is admitted and the oldest *evictable* connection (not trusted, no handler running: silent,
half-sent or idle) is answered ``503`` and closed; the per-address budget evicts from the
newcomer's own address, the total budget from the address holding the most evictable
connections. Refusing the newcomer instead would let an attacker on the same address (the same
loopback, the same office NAT) lock out ``hook listen`` and ``GET /v1/health`` by holding the cap;
with eviction a legitimate client only needs its request to arrive before the attacker has opened
a whole budget's worth of newer connections, and once its handler runs it is safe. A newcomer is
refused (an immediate ``503`` with ``Retry-After``, a JSON ``{"error", "hint"}`` body and
``Connection: close``) only when nothing is evictable: every counted connection is trusted or has
a handler running, which an attacker cannot hold without the token or past ``body_timeout``.
Answered connections are half-closed and drained for a moment (``LINGER``) so the client reads
the answer instead of a reset; at most ``MAX_LINGERING`` linger at once.

Malformed HTTP: aiohttp answers 400 itself and logs ``Error handling request`` with a traceback;
``RelayLogFilter`` turns that into one debug line, and ``_quiet`` answers a body that breaks its
chunking (or a client that vanished mid-body) with a 400 JSON error instead of a 500. The same
filter rate-limits every kind of message on the relay's and aiohttp's loggers: ``LOG_BURST`` of a
kind per ``LOG_INTERVAL``, then one "N similar messages suppressed" line.

TLS: asyncio completes the handshake before the guard sees the connection, so it is bounded by
``ssl_handshake_timeout`` (set to ``header_timeout``) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

log = logging.getLogger("hook.relay.connections")

#: Open files kept free for the store (SQLite + WAL), the source's HTTP pool, the emulator,
#: stdio, the listening socket and the connections being answered.
HEADROOM = 128
#: At most this many answered connections drain at once; past it they are closed at once.
MAX_LINGERING = 64
#: How long an answered (408/503) connection is drained before it is dropped.
LINGER = 1.0
#: A raised soft limit stays at or below this when the hard limit is unlimited.
NOFILE_TARGET = 65536

#: A connection timer firing this close to its deadline counts as on time.
TIMER_SLACK = 0.001

LOG_BURST = 5
LOG_INTERVAL = 60.0
LOG_KINDS = 256
#: The loggers the relay rate-limits: its own and aiohttp's, and asyncio's accept errors.
LOGGERS = (
    "hook.relay",
    "hook.relay.connections",
    "hook.store",
    "hook.sources",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",
    "aiohttp.access",
    "asyncio",
)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Caps and timeouts for the relay's connections (seconds; 0 turns a cap or timeout off)."""

    #: Every open connection; lowered at start to stay below the open-file limit (0: as many
    #: as that limit allows).
    max_connections: int = 1024
    #: Connections from one client address that have not authenticated (yet).
    max_per_address: int = 128
    #: From a request's first byte until its handler starts (all headers received).
    header_timeout: float = 10.0
    #: From a handler's start until its request body is complete.
    body_timeout: float = 60.0
    #: Nothing sent yet, or between requests, on a connection that has not authenticated.
    idle_timeout: float = 20.0
    #: Between requests on an authenticated connection.
    keepalive_timeout: float = 75.0
    #: Seconds a refused client is told to wait (``Retry-After``).
    retry_after: int = 5


class _Phase(Enum):
    """Where a connection is in its request cycle; decides its timer and whether it is evictable."""

    NEW = "new"
    HEADERS = "headers"
    HANDLING = "handling"
    IDLE = "idle"
    CLOSING = "closing"


_EVICTABLE = (_Phase.NEW, _Phase.HEADERS, _Phase.IDLE)


class _Connection(asyncio.Protocol):
    """One accepted socket as the guard sees it; forwards to aiohttp's handler once admitted."""

    def __init__(self, guard: ConnectionGuard, factory: Callable[[], asyncio.Protocol]) -> None:
        self.guard = guard
        self.factory = factory
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.address = ""
        self.phase = _Phase.NEW
        self.trusted = False
        self.counted = False
        self.lingering = False
        self.timer: asyncio.TimerHandle | None = None
        #: When the current phase's timeout ends (loop time); None: no timeout in this phase.
        self.deadline: float | None = None
        self.request: web.BaseRequest | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.address = address_key(transport.get_extra_info("peername"))
        try:
            admitted = self.guard.admit(self)
        except Exception:  # a bug here must not cost the connection, let alone the relay
            log.exception("admitting a connection failed; serving it unguarded")
            admitted = True
        if admitted:
            self.inner = self.factory()
            self.guard.register(self)
            self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.phase is _Phase.CLOSING or self.inner is None:
            return  # answered by the guard: drain and discard
        if self.phase in (_Phase.NEW, _Phase.IDLE):
            self.guard.enter(self, _Phase.HEADERS)
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self.phase is _Phase.CLOSING or self.inner is None:
            return False  # the client read our answer and closed: close our side too
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.forget(self)
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()


class ConnectionGuard:
    """Admits, times, evicts and answers the relay's connections; see the module docstring."""

    def __init__(self, limits: ConnectionLimits, *, open_files: int | None = None) -> None:
        self.limits = limits
        self.max_connections = effective_cap(limits.max_connections, open_files)
        #: Admitted and not yet closed by the guard, in order of admission.
        self._open: dict[_Connection, None] = {}
        self._untrusted: dict[str, int] = {}
        #: Evictable connections per address, oldest first (order of admission, not activity:
        #: a slowloris that trickles bytes must not make itself young again).
        self._evictable: dict[str, OrderedDict[_Connection, None]] = {}
        self._by_handler: dict[asyncio.Protocol, _Connection] = {}
        self._lingering: set[_Connection] = set()
        self._closed = False
        #: What the guard did, for health checks, logs and tests.
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0

    @property
    def open_connections(self) -> int:
        """Connections admitted and not closed by the guard."""
        return len(self._open)

    def protocol_factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], _Connection]:
        """The factory to serve with: each connection meets the guard before aiohttp's handler."""
        return lambda: _Connection(self, inner)

    # ------------------------------------------------------------------ admission

    def admit(self, conn: _Connection) -> bool:
        """Make room for a new connection (evicting), or answer it 503; True when admitted."""
        if self._closed:
            assert conn.transport is not None
            conn.transport.abort()
            return False
        limits = self.limits
        cap = limits.max_per_address
        if cap and self._untrusted.get(conn.address, 0) >= cap:
            victim = _oldest(self._evictable.get(conn.address))
            if victim is None:
                self._refuse(conn, f"too many connections from {conn.address}")
                return False
            self._evict(victim, f"too many connections from {conn.address}")
        if self.max_connections and len(self._open) >= self.max_connections:
            victim = self._heaviest_victim()
            if victim is None:
                self._refuse(conn, "the relay is at its connection cap")
                return False
            self._evict(victim, "the relay is at its connection cap")
        return True

    def register(self, conn: _Connection) -> None:
        """Count an admitted connection and start its idle timer."""
        assert conn.inner is not None
        self._open[conn] = None
        self._untrusted[conn.address] = self._untrusted.get(conn.address, 0) + 1
        self._by_handler[conn.inner] = conn
        conn.counted = True
        self.enter(conn, _Phase.NEW)

    def _heaviest_victim(self) -> _Connection | None:
        """The oldest evictable connection of the address holding the most of them."""
        busiest = max(self._evictable.values(), key=len, default=None)
        return _oldest(busiest)

    def _refuse(self, conn: _Connection, why: str) -> None:
        self.refused += 1
        log.warning("refused a connection from %s: %s", conn.address, why)
        self._answer(conn, 503, why, self._hint(why))

    def _evict(self, conn: _Connection, why: str) -> None:
        self.evicted += 1
        log.warning("closed the oldest idle connection from %s: %s", conn.address, why)
        if conn.phase is _Phase.IDLE:
            self._close(conn)  # between requests: an ordinary keep-alive close
        else:
            self._answer(conn, 503, why, self._hint(why))

    def _hint(self, why: str) -> str:
        retry = f"retry after {self.limits.retry_after} s"
        if why.startswith("too many connections from"):
            return f"{retry}; close idle connections (the cap is --max-connections-per-address)"
        return f"{retry} (the relay's cap is --max-connections)"

    # ------------------------------------------------------------------ phases and timers

    def enter(self, conn: _Connection, phase: _Phase) -> None:
        """Move a counted connection to ``phase``: its deadline and whether it may be evicted.

        The timer is lazy: it stays armed while it fires no later than the new deadline, and
        ``_expire`` re-arms it when it fires early. A kept-alive connection passes three phases
        per request; cancelling and scheduling a timer at each was a visible share of a
        webhook's CPU, where now its timer moves about once per header timeout.
        """
        if not conn.counted:
            return
        conn.phase = phase
        if phase in _EVICTABLE and not conn.trusted:
            queue = self._evictable.get(conn.address)
            if queue is None:
                queue = self._evictable[conn.address] = OrderedDict()
            queue.setdefault(conn, None)
        else:
            self._not_evictable(conn)
        timeout = self._timeout(conn)
        if not timeout:
            conn.deadline = None  # an armed timer finds no deadline and does nothing
            return
        loop = asyncio.get_running_loop()
        conn.deadline = deadline = loop.time() + timeout
        timer = conn.timer
        if timer is not None and not timer.cancelled() and timer.when() <= deadline:
            return
        if timer is not None:
            timer.cancel()
        conn.timer = loop.call_at(deadline, self._expire, conn)

    def _timeout(self, conn: _Connection) -> float:
        limits = self.limits
        if conn.phase is _Phase.NEW:
            return limits.idle_timeout
        if conn.phase is _Phase.HEADERS:
            return limits.header_timeout
        if conn.phase is _Phase.HANDLING:
            return limits.body_timeout
        if conn.phase is _Phase.IDLE:
            return limits.keepalive_timeout if conn.trusted else limits.idle_timeout
        return 0.0

    def _expire(self, conn: _Connection) -> None:
        conn.timer = None
        deadline = conn.deadline
        if deadline is None or not conn.counted:
            return  # the phase has no timeout (or the guard let the connection go)
        loop = asyncio.get_running_loop()
        if deadline - loop.time() > TIMER_SLACK:
            # Armed for an earlier phase's deadline: the current one ends later.
            conn.timer = loop.call_at(deadline, self._expire, conn)
            return
        try:
            if conn.phase is _Phase.HEADERS:
                self.timed_out += 1
                log.info("closed a connection from %s: request headers too slow", conn.address)
                self._answer(
                    conn,
                    408,
                    f"request headers not received within {self.limits.header_timeout:g} s",
                    "send the whole request at once",
                )
            elif conn.phase is _Phase.HANDLING:
                request = conn.request
                if request is not None and not request.content.is_eof():
                    self.timed_out += 1
                    log.info("cut a connection from %s: request body too slow", conn.address)
                    self._release(conn)
                    conn.phase = _Phase.CLOSING
                    if conn.transport is not None:
                        # The handler's read fails with a reset and ``_quiet`` keeps it quiet.
                        conn.transport.abort()
            elif conn.phase in (_Phase.NEW, _Phase.IDLE):
                self.timed_out += 1
                log.debug("closed an idle connection from %s", conn.address)
                self._close(conn)
        except Exception:  # a timer must never take the event loop's callback down with it
            log.exception("connection timer failed")

    # ------------------------------------------------------------------ requests

    def handling(self, request: web.BaseRequest) -> _Connection | None:
        """A request's handler starts: its headers are complete; time its body instead."""
        conn = self._by_handler.get(request.protocol)
        if conn is not None and conn.phase is not _Phase.CLOSING:
            conn.request = request
            self.enter(conn, _Phase.HANDLING)
        return conn

    def handled(self, conn: _Connection) -> None:
        """A request's handler returned: the connection idles until the next request."""
        conn.request = None
        if conn.phase is _Phase.HANDLING:
            self.enter(conn, _Phase.IDLE)

    def trust(self, request: web.BaseRequest) -> None:
        """The request passed the token check: its connection is never evicted, never counted
        against its address's unauthenticated budget, and idles for ``keepalive_timeout``."""
        conn = self._by_handler.get(request.protocol)
        if conn is None or conn.trusted:
            return
        if conn in self._open:
            self._uncount_untrusted(conn)
        conn.trusted = True
        self._not_evictable(conn)

    # ------------------------------------------------------------------ closing

    def _release(self, conn: _Connection) -> None:
        """Stop counting ``conn``: its budget is free for a newcomer at once."""
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        if not conn.counted:
            return
        conn.counted = False
        self._open.pop(conn, None)
        if not conn.trusted:
            self._uncount_untrusted(conn)
        self._not_evictable(conn)
        if conn.inner is not None:
            self._by_handler.pop(conn.inner, None)

    def _uncount_untrusted(self, conn: _Connection) -> None:
        self._untrusted[conn.address] -= 1
        if not self._untrusted[conn.address]:
            del self._untrusted[conn.address]

    def _not_evictable(self, conn: _Connection) -> None:
        queue = self._evictable.get(conn.address)
        if queue is not None:
            queue.pop(conn, None)
            if not queue:
                del self._evictable[conn.address]

    def _close(self, conn: _Connection) -> None:
        """Close quietly (FIN); dropped after ``LINGER`` if the client does not read."""
        self._release(conn)
        conn.phase = _Phase.CLOSING
        transport = conn.transport
        if transport is None:
            return
        transport.close()
        self._linger(conn, transport)

    def _answer(self, conn: _Connection, status: int, error: str, hint: str) -> None:
        """Write a complete JSON error response, half-close, and drain before closing."""
        self._release(conn)
        conn.phase = _Phase.CLOSING
        transport = conn.transport
        if transport is None or transport.is_closing():
            return
        body = json.dumps({"error": error, "hint": hint}).encode()
        reason = {408: "Request Timeout", 503: "Service Unavailable"}.get(status, "Error")
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            + (f"Retry-After: {self.limits.retry_after}\r\n" if status == 503 else "")
            + "Connection: close\r\n\r\n"
        )
        transport.write(head.encode() + body)
        # Closing with unread request bytes would send a reset that can destroy the answer
        # before the client reads it; so half-close, discard what still arrives, then close.
        # Not once aiohttp has the connection: a handler it starts anyway must find the
        # transport closing (a quiet ConnectionError), not half-closed (a RuntimeError).
        if (
            conn.inner is None
            and len(self._lingering) < MAX_LINGERING
            and transport.can_write_eof()
        ):
            transport.write_eof()
        else:
            transport.close()
        self._linger(conn, transport)

    def _linger(self, conn: _Connection, transport: asyncio.Transport) -> None:
        if conn.lingering:
            return
        conn.lingering = True
        self._lingering.add(conn)
        conn.timer = asyncio.get_running_loop().call_later(LINGER, transport.abort)

    def forget(self, conn: _Connection) -> None:
        """The socket is gone."""
        self._release(conn)
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        self._lingering.discard(conn)
        conn.phase = _Phase.CLOSING

    def close(self) -> None:
        """Relay shutdown: drop the connections being answered and refuse new ones; aiohttp's
        runner closes the ones it serves."""
        self._closed = True
        for conn in list(self._lingering):
            if conn.transport is not None:
                conn.transport.abort()
            self.forget(conn)
        for conn in list(self._open):
            if conn.timer is not None:
                conn.timer.cancel()
                conn.timer = None


def _oldest(queue: OrderedDict[_Connection, None] | None) -> _Connection | None:
    return next(iter(queue), None) if queue else None


def address_key(peer: Any) -> str:
    """The budget a peer counts against: its IPv4 address, or its IPv6 /64 (one host's share)."""
    if not isinstance(peer, tuple) or not peer:
        return str(peer or "")
    host = str(peer[0])
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        if not address.is_loopback:
            return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def effective_cap(requested: int, open_files: int | None) -> int:
    """The total connection cap: as requested, but below the open-file limit with headroom."""
    if open_files is None or open_files <= 0:
        return requested
    room = max(open_files - HEADROOM - MAX_LINGERING, open_files // 2)
    return min(requested, room) if requested else room


def raise_open_file_limit() -> int | None:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the resulting soft limit (None: unknown)."""
    try:
        import resource
    except ImportError:  # not on this platform (Windows)
        return None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = NOFILE_TARGET if hard == resource.RLIM_INFINITY else hard
        if soft != resource.RLIM_INFINITY and soft < target:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ValueError, OSError):
        return None
    limit = None if soft == resource.RLIM_INFINITY else int(soft)
    log.debug("open-file limit: %s", "unlimited" if limit is None else limit)
    return limit


# ---------------------------------------------------------------------- aiohttp wiring

GUARD_KEY = web.AppKey("hook.connections.guard", ConnectionGuard)


def install(app: web.Application, guard: ConnectionGuard) -> None:
    """Hook the guard into an app before it starts: the outermost and innermost middlewares."""
    app[GUARD_KEY] = guard
    app.middlewares.insert(0, _tracker(guard))
    app.middlewares.append(_quiet)


def trust(request: web.Request) -> None:
    """Mark the request's connection authenticated (call once the bearer token checked out)."""
    guard = request.config_dict.get(GUARD_KEY)
    if guard is not None:
        guard.trust(request)


def _tracker(guard: ConnectionGuard) -> Any:
    """Outermost: a handler starting means the headers are complete, so every request passes."""

    @web.middleware
    async def track(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        conn = guard.handling(request)
        try:
            return await handler(request)
        finally:
            if conn is not None:
                guard.handled(conn)

    return track


@web.middleware
async def _quiet(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Innermost: a broken body or a vanished client is the client's doing, never a 500."""
    try:
        return await handler(request)
    except RequestPayloadError as exc:
        log.debug("malformed request body from %s: %s", request.remote, exc)
        response = _json_error(
            400, f"malformed request body: {exc}", "send a valid Content-Length or chunked body"
        )
        response.force_close()
        return response
    except ConnectionError as exc:
        log.debug("client %s went away during its request: %s", request.remote, exc)
        response = _json_error(408, "the connection was closed", "send the whole request")
        response.force_close()
        return response


def _json_error(status: int, error: str, hint: str) -> web.Response:
    return web.json_response({"error": error, "hint": hint}, status=status)


class GuardedSite(web.SockSite):
    """``SockSite`` serving through the guard's protocol factory."""

    def __init__(
        self,
        runner: web.BaseRunner,
        sock: Any,
        guard: ConnectionGuard,
        *,
        ssl_context: Any = None,
        backlog: int = 1024,
    ) -> None:
        super().__init__(runner, sock, ssl_context=ssl_context, backlog=backlog)
        self._guard = guard

    async def start(self) -> None:
        """Register with the runner and serve the socket through the guard."""
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        handshake = self._guard.limits.header_timeout or None
        self._server = await loop.create_server(
            self._guard.protocol_factory(server),
            sock=self._sock,
            ssl=self._ssl_context,
            backlog=self._backlog,
            ssl_handshake_timeout=handshake if self._ssl_context is not None else None,
        )


# ---------------------------------------------------------------------- logging


@dataclass(slots=True)
class _Kind:
    start: float
    count: int = 0
    suppressed: int = 0


class RelayLogFilter(logging.Filter):
    """Malformed-HTTP tracebacks become one debug line; each kind of message is rate-limited.

    A kind is (logger, level, message template); the first ``burst`` of a kind per ``interval``
    pass, the rest are counted and reported by one "N similar messages suppressed" line when
    the kind next appears after the interval (or at ``flush``). At most ``kinds`` kinds are
    tracked; past that, new kinds share one bucket per logger and level, so memory stays bounded.
    """

    def __init__(
        self,
        burst: int = LOG_BURST,
        interval: float = LOG_INTERVAL,
        kinds: int = LOG_KINDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst = burst
        self.interval = interval
        self.kinds = kinds
        self.clock = clock
        self._kinds: dict[tuple[str, int, str], _Kind] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Let ``record`` through, downgraded if malformed HTTP, unless its kind is over budget."""
        if getattr(record, "hook_summary", False):
            return True
        if _is_bad_request(record):
            if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
                return False
            _downgrade(record)
        now = self.clock()
        key = (record.name, record.levelno, str(record.msg))
        kind = self._kinds.get(key)
        if kind is None:
            if len(self._kinds) >= self.kinds:
                self._purge(now)
            if len(self._kinds) >= self.kinds:
                key = (record.name, record.levelno, "")
                kind = self._kinds.get(key)
            if kind is None:
                kind = self._kinds[key] = _Kind(now)
        if now - kind.start >= self.interval:
            self._summarise(key, kind, now)
            kind.start, kind.count = now, 0
        kind.count += 1
        if kind.count <= self.burst:
            return True
        kind.suppressed += 1
        return False

    def flush(self, *, final: bool = False) -> None:
        """Report the kinds whose interval is over (every kind, when ``final``) that suppressed
        something, so a flood that stopped still gets its summary line."""
        now = self.clock()
        for key, kind in list(self._kinds.items()):
            if (final or now - kind.start >= self.interval) and kind.suppressed:
                self._summarise(key, kind, now)
        self._purge(now)

    def _purge(self, now: float) -> None:
        for key, kind in list(self._kinds.items()):
            if now - kind.start >= self.interval and not kind.suppressed:
                del self._kinds[key]

    def _summarise(self, key: tuple[str, int, str], kind: _Kind, now: float) -> None:
        count, kind.suppressed = kind.suppressed, 0
        if not count:
            return
        name, level, template = key
        logging.getLogger(name).log(
            level,
            "%d similar messages suppressed in %.0f s: %s",
            count,
            min(now - kind.start, self.interval),
            template or "(more kinds than tracked)",
            extra={"hook_summary": True},
        )


def _is_bad_request(record: logging.LogRecord) -> bool:
    """aiohttp's log line for a request it could not parse: the client's fault, not ours."""
    if not record.name.startswith("aiohttp") or not record.exc_info:
        return False
    exc = record.exc_info[1]
    return isinstance(exc, HttpProcessingError | RequestPayloadError | ConnectionError)


def _downgrade(record: logging.LogRecord) -> None:
    assert record.exc_info is not None
    exc = record.exc_info[1]
    detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
    record.msg = "bad HTTP request from %s: %s"
    record.args = (remote, detail)
    record.exc_info = None
    record.exc_text = None
    record.levelno = logging.DEBUG
    record.levelname = "DEBUG"


_filter: RelayLogFilter | None = None
_users = 0


@contextlib.contextmanager
def log_filter() -> Iterator[RelayLogFilter]:
    """Install the one process-wide ``RelayLogFilter`` on ``LOGGERS`` while any relay runs."""
    global _filter, _users
    if _filter is None:
        _filter = RelayLogFilter()
        for name in LOGGERS:
            logging.getLogger(name).addFilter(_filter)
    _users += 1
    try:
        yield _filter
    finally:
        _users -= 1
        if _users == 0 and _filter is not None:
            for name in LOGGERS:
                logging.getLogger(name).removeFilter(_filter)
            _filter = None


async def run(guard: ConnectionGuard) -> None:
    """The relay's background task: report suppressed log lines; on cancel, close the guard."""
    with log_filter() as flt:
        try:
            while True:
                await asyncio.sleep(min(flt.interval, 60.0))
                try:
                    flt.flush()
                except Exception:
                    log.exception("flushing the log filter failed")
        finally:
            guard.close()
            flt.flush(final=True)
