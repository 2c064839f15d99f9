"""Talking to a relay: the websocket stream (listen, tail) and the HTTP API (replay, events).

The stream reconnects with websockets' own ``connect`` iterator and backoff; after a reconnect a
listener resumes from its cursor (``last``) and a tail from the last sequence it saw, so a relay
restart, a network drop or a laptop sleep loses nothing. Third-party exceptions are translated
into ``hookcli.errors`` here.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from hookcli import __version__
from hookcli.config import Connection
from hookcli.errors import (
    AuthError,
    ConfigError,
    InvalidPatternError,
    NotFoundError,
    ProtocolError,
    RelayError,
    UsageError,
)
from hookcli.protocol import (
    Error,
    EventMessage,
    Hello,
    Live,
    Result,
    Results,
    Start,
    Subscribe,
    Subscribed,
    Welcome,
    decode,
    encode,
)
from hookcli.updates import Caught, ConnectionState, State, Update

_M = TypeVar("_M", Welcome, Subscribed)
MAX_MESSAGE = 4 * 1024 * 1024
HANDSHAKE_TIMEOUT = 10.0
#: Reconnect quickly first (a relay restart takes a second), then back off to 30 s.
FIRST_DELAY, MIN_DELAY, MAX_DELAY, FACTOR = 0.5, 0.5, 30.0, 1.8


def reconnect_delays() -> Generator[float]:
    """Exponential backoff with jitter, capped (RFC 6455 7.2.3 asks for a random first delay)."""
    yield random.uniform(0.05, FIRST_DELAY)
    delay = MIN_DELAY
    while True:
        yield delay * random.uniform(0.8, 1.2)
        delay = min(delay * FACTOR, MAX_DELAY)


class StreamHandler(Protocol):
    """What a stream session hands its messages to (listen delivers, tail prints)."""

    async def on_ready(
        self, ws: ClientConnection, welcome: Welcome, subscribed: Subscribed
    ) -> None:
        """Subscribed (again): ``ws`` is the connection to answer on from now on."""

    async def on_event(self, message: EventMessage) -> bool:
        """Handle one event; return False to end the stream."""
        ...


class Stream:
    """One subscription kept alive across reconnects."""

    def __init__(
        self,
        connection: Connection,
        subscribe: Subscribe,
        emit: Callable[[Update], None],
        *,
        reconnect: bool = True,
    ) -> None:
        self.connection = connection
        self.subscribe = subscribe
        self.emit = emit
        self.reconnect = reconnect
        self.last_seq: int | None = None
        self.connects = 0

    async def run(self, handler: StreamHandler) -> None:
        """Connect, subscribe, and pass events to ``handler`` until it says stop."""
        connector = connect(
            self.connection.stream_url,
            additional_headers=self.connection.headers(),
            user_agent_header=f"hook/{__version__}",
            open_timeout=HANDSHAKE_TIMEOUT,
            ping_interval=20,
            ping_timeout=30,
            close_timeout=2,
            max_size=MAX_MESSAGE,
            compression=None,
            process_exception=self._on_connect_failure,
            reconnect_delays=reconnect_delays,
        )
        async for ws in connector:
            try:
                if not await self._session(ws, handler):
                    return
                reason = "the relay closed the connection"
            except ConnectionClosed as exc:
                reason = _closed_reason(exc)
            except BrokenPipeError:
                raise  # our own stdout's reader left (`hook tail | head`), not the relay
            except (OSError, TimeoutError) as exc:
                reason = f"connection lost: {exc}"
            if not self.reconnect:
                raise RelayError(f"disconnected from the relay: {reason}")
            self.emit(State(ConnectionState.RECONNECTING, error=reason))

    def _on_connect_failure(self, exc: Exception) -> Exception | None:
        """Decide whether a failed connect is worth retrying; say so either way."""
        if isinstance(exc, InvalidStatus):
            status = exc.response.status_code
            if status == 401 and self.connection.local_token:
                return AuthError(
                    "the relay refused the local token",
                    hint="that relay was started with --token/--tokens (or by another user): "
                    "pass its token with --token or HOOK_TOKEN",
                )
            if status in (401, 403):
                return AuthError(
                    "the relay refused the token"
                    if self.connection.token
                    else "the relay needs a token",
                    hint="pass --token or set HOOK_TOKEN (or token = ... in the config file)",
                )
            if status == 421:  # the relay does not answer to the name in --relay
                body = _json_or_none(exc.response.body.decode("utf-8", "replace"))
                error = body if isinstance(body, dict) else {}
                return RelayError(
                    str(error.get("error") or "the relay does not answer to this name"),
                    hint=str(error.get("hint") or "check --relay / HOOK_RELAY"),
                )
            if status == 404:
                return RelayError(
                    f"{self.connection.http_url} is not a hook relay (no /v1/stream)",
                    hint="check --relay / HOOK_RELAY",
                )
            if status not in (500, 502, 503, 504):
                return RelayError(f"the relay answered the websocket upgrade with HTTP {status}")
        elif isinstance(exc, InvalidHandshake):
            if "EOF" not in str(exc) and not isinstance(exc.__cause__, EOFError):
                return RelayError(f"websocket handshake with the relay failed: {exc}")
        elif not isinstance(exc, (OSError, TimeoutError)):
            return exc
        if not self.reconnect and self.connects == 0:
            return RelayError(
                f"cannot reach the relay at {self.connection.http_url}: {_describe(exc)}",
                hint="is `hook relay serve` running? check --relay / HOOK_RELAY",
            )
        if not self.reconnect:
            return RelayError(f"disconnected from the relay: {_describe(exc)}")
        self.emit(
            State(ConnectionState.RECONNECTING, error=f"cannot reach the relay: {_describe(exc)}")
        )
        return None

    async def _session(self, ws: ClientConnection, handler: StreamHandler) -> bool:
        """One connection: handshake, subscribe, then events. False when the handler stopped."""
        await ws.send(encode(Hello(client=f"hook/{__version__}")))
        welcome = await self._expect(ws, Welcome)
        subscribe = self.subscribe
        if self.connects:
            subscribe = replace(subscribe, start=self._resume_start())
        await ws.send(encode(subscribe))
        subscribed = await self._expect(ws, Subscribed)
        self.connects += 1
        self.emit(State(ConnectionState.CONNECTED))
        await handler.on_ready(ws, welcome, subscribed)
        async for text in ws:
            message = decode(text)
            if isinstance(message, EventMessage):
                self.last_seq = message.seq
                if not await handler.on_event(message):
                    return False
            elif isinstance(message, Live):
                self.emit(Caught(message.seq))
            elif isinstance(message, Error):
                _raise_if_fatal(message)
            # Unknown types come from newer relays: ignored on purpose.
        return True

    def _resume_start(self) -> Start:
        if self.subscribe.mode == "listen":
            return Start("last")
        if self.last_seq is not None:
            return Start("seq", seq=self.last_seq + 1)
        return self.subscribe.start if self.subscribe.start.kind != "now" else Start("last")

    async def _expect(self, ws: ClientConnection, kind: type[_M]) -> _M:
        try:
            text = await asyncio.wait_for(ws.recv(), HANDSHAKE_TIMEOUT)
        except TimeoutError:
            raise RelayError(f"the relay did not answer within {HANDSHAKE_TIMEOUT:.0f} s") from None
        message = decode(text)
        if isinstance(message, kind):
            return message
        if isinstance(message, Error):
            _raise_if_fatal(message, always=True)
        raise ProtocolError(f"expected {kind.__name__.lower()} from the relay, got {message.type}")


def _raise_if_fatal(message: Error, *, always: bool = False) -> None:
    if message.code == "invalid-pattern":
        raise InvalidPatternError(message.message)
    if message.code == "unauthorized":
        raise AuthError(message.message)
    if message.code == "pattern-changed":
        raise ConfigError(
            f"the relay says: {message.message}",
            hint="--pattern-change keep-cursor resumes this name's cursor with the new pattern;"
            " --pattern-change restart (or --from now) starts from new events; or pass another"
            " --name",
        )
    if message.code == "start-past-head":
        raise UsageError(f"the relay says: {message.message}", hint=message.hint or None)
    if message.code == "already-subscribed" and message.fatal:
        raise RelayError(
            f"the relay says: {message.message}",
            hint="another `hook listen` with the same --name took over; give each its own --name",
        )
    if message.fatal or always:
        raise RelayError(f"the relay says: {message.message}", hint=message.hint or None)


def _closed_reason(exc: ConnectionClosed) -> str:
    if exc.rcvd is not None and exc.rcvd.code == 1001:
        return "the relay is shutting down"
    if exc.rcvd is None:
        return "connection lost (no close frame)"
    return f"connection closed ({exc.rcvd.code} {exc.rcvd.reason})".strip()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


async def send_results(ws: ClientConnection | None, results: Sequence[Result]) -> bool:
    """Answer events (one message for them all); False when the connection is gone (the relay
    then sends them again)."""
    if ws is None or not results:
        return False
    try:
        await ws.send(encode(results[0] if len(results) == 1 else Results(tuple(results))))
    except ConnectionClosed:
        return False
    return True


# ------------------------------------------------------------------ HTTP API


class RelayApi:
    """The relay's HTTP endpoints: info, history, one event, issues, recording a replay's result."""

    def __init__(self, connection: Connection, session: aiohttp.ClientSession) -> None:
        self.connection = connection
        self.session = session

    @classmethod
    @asynccontextmanager
    async def open(cls, connection: Connection, timeout: float = 15.0) -> AsyncIterator[RelayApi]:
        """An API client with its own pooled HTTP session."""
        session = aiohttp.ClientSession(
            headers={**connection.headers(), "User-Agent": f"hook/{__version__}"},
            timeout=aiohttp.ClientTimeout(total=timeout),
        )
        try:
            yield cls(connection, session)
        finally:
            await session.close()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        url = self.connection.http_url + path
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        try:
            async with self.session.request(method, url, params=query, json=body) as response:
                text = await response.text()
                data = _json_or_none(text)
                if response.status < 400:
                    return data
                message = data.get("error") if isinstance(data, dict) else None
                hint = data.get("hint") if isinstance(data, dict) else None
                detail = message or f"HTTP {response.status} from {url}"
                if response.status in (401, 403):
                    raise AuthError(detail, hint=hint or "pass --token or set HOOK_TOKEN")
                if response.status == 404:
                    raise NotFoundError(detail, hint=hint)
                if response.status == 400:
                    raise UsageError(detail, hint=hint)
                candidates = data.get("candidates") if isinstance(data, dict) else None
                if response.status == 409 and isinstance(candidates, list):
                    # An id prefix that several events share: list them, one per line.
                    more = ["…"] if data.get("more") else []
                    listed = [str(c) for c in candidates] + more
                    raise UsageError("\n  ".join([f"{detail}:", *listed]), hint=hint)
                raise RelayError(detail, hint=hint)
        except aiohttp.ClientConnectionError as exc:
            raise RelayError(
                f"cannot reach the relay at {self.connection.http_url}: {exc}",
                hint="is `hook relay serve` running? check --relay / HOOK_RELAY",
            ) from exc
        except TimeoutError as exc:
            raise RelayError(f"the relay at {self.connection.http_url} timed out") from exc

    async def info(self) -> dict[str, Any]:
        """``GET /v1/info``."""
        data = await self._call("GET", "/v1/info")
        if not isinstance(data, dict) or "relay" not in data:
            raise RelayError(f"{self.connection.http_url} does not look like a hook relay")
        return data

    async def event(self, event_id: str) -> dict[str, Any]:
        """``GET /v1/events/<id>``: the event, its raw request and every delivery.

        ``event_id`` may be a unique prefix of at least 4 characters (the short ids hook
        prints); an ambiguous one raises UsageError listing the candidates.
        """
        data = await self._call("GET", f"/v1/events/{quote(event_id, safe='')}")
        if not isinstance(data, dict):
            raise ProtocolError("the relay sent a malformed event record")
        return data

    async def events(self, **filters: Any) -> list[dict[str, Any]]:
        """``GET /v1/events`` with filters (see docs/protocol.md)."""
        data = await self._call("GET", "/v1/events", params=filters)
        if not isinstance(data, dict) or not isinstance(data.get("events"), list):
            raise ProtocolError("the relay sent a malformed history page")
        return list(data["events"])

    async def issues(self, **filters: Any) -> list[dict[str, Any]]:
        """``GET /v1/issues``: current failures grouped by cause, oldest group first.

        Filters: ``listener``, ``source``, ``detail_type``, ``since``, ``limit``; each group is
        ``FailureGroup.to_dict()`` (key, number, listener, target, code, error, count, ...).
        """
        try:
            data = await self._call("GET", "/v1/issues", params=filters)
        except NotFoundError as exc:
            # Only a relay without the endpoint answers 404 here (one older than issue 10).
            raise RelayError(
                f"the relay at {self.connection.http_url} does not group failures ({exc})",
                hint="upgrade the relay to this hook's version and restart it",
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("issues"), list):
            raise ProtocolError("the relay sent a malformed list of issues")
        return list(data["issues"])

    async def issue(
        self, key: str, *, after: int = 0, limit: int | None = None, **filters: Any
    ) -> dict[str, Any]:
        """``GET /v1/issues/<key>``: ``{"issue": group, "events": [{seq, id, delivery}], "more"}``.

        One page of the group's events by seq; pass the last ``seq`` as ``after`` while
        ``more``. An unknown key (its events all succeeded since) raises NotFoundError.
        """
        params = {**filters, "after": after or None, "limit": limit}
        data = await self._call("GET", f"/v1/issues/{quote(key, safe='')}", params=params)
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("issue"), dict)
            or not isinstance(data.get("events"), list)
        ):
            raise ProtocolError("the relay sent a malformed issue")
        return data

    async def record(
        self,
        event_id: str,
        listener: str,
        result: Result,
        *,
        target: str | None = None,
        replayed_by: str | None = None,
        replay_of: int | None = None,
    ) -> None:
        """``POST /v1/events/<id>/results``: store a replay's result in the history, with the
        target it went to, who replayed it and the failed delivery row it answers."""
        body = json.loads(encode(result))
        body.pop("type", None)
        body.pop("seq", None)
        body["listener"] = listener
        extra = {"target": target, "replayed_by": replayed_by, "replay_of": replay_of}
        body.update({k: v for k, v in extra.items() if v is not None})
        await self._call("POST", f"/v1/events/{quote(event_id, safe='')}/results", body=body)


async def relay_answers(url: str, timeout: float = 0.5) -> bool:
    """True when a hook relay answers ``/v1/health`` at ``url`` (any status: it is there)."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
            async with s.get(url + "/v1/health") as response:
                data = _json_or_none(await response.text())
                return isinstance(data, dict) and "ok" in data
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
