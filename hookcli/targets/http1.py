"""HTTP/1.1 to the local target over kept-alive connections: bytes out, the answer's start in.

``--target`` sends one request per event, to one origin, and keeps at most 64 KiB of the
answer; aiohttp's client spent about half the listener's CPU per event on generality this use
does not need (per-request objects, cookie and redirect machinery, a task per body write).
Here a request is one ``bytes`` written in one call: the request line, the headers exactly as
given (order, repeats and spelling kept) and ``Content-Length``, then the body; the answer is
read by status line, headers, then a ``Content-Length``, chunked or close-delimited body
(RFC 9112 section 6.3), up to ``limit`` bytes.

A connection goes back to the pool only when its answer was read to the end and neither side
asked to close it; anything else (a cap reached, a timeout, a cancellation, an error) closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import re
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# RFC 9110 section 5.6.2: a header name and a method are tokens.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 section 6.4.1: no content in answers to HEAD, in 1xx, 204 and 304.
_NO_BODY_STATUSES = frozenset({204, 304})
# Methods that get no ``Content-Length: 0`` when they have no body (what aiohttp, curl and
# browsers do: a bodiless GET stays bodiless, a bodiless POST says it has none).
_BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: Seconds between checks of the requests' deadlines (how late a timeout may fire).
DEADLINE_TICK = 0.05
#: Longest status line plus headers read from the target.
HEAD_LIMIT = 64 * 1024


class HttpFailure(Exception):
    """Why a request got no answer: ``retryable`` when another attempt may do better."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class ConnectFailure(HttpFailure):
    """No connection could be made; ``refused`` when every address refused it."""

    def __init__(self, message: str, *, refused: bool) -> None:
        super().__init__(message, retryable=True)
        self.refused = refused


@dataclass(frozen=True, slots=True)
class Answer:
    """The target's answer: status, reason, headers (lower-case names, first value) and the
    start of the body (at most the request's limit)."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


def request_bytes(
    method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes
) -> bytes:
    """The request as it goes on the wire; ValueError for what cannot be sent as given.

    ``headers`` are written in order as given (Host first is the caller's job); a
    ``Content-Length`` follows them when there is a body or the method expects one.
    Header text is UTF-8 with surrogate escapes: the bytes aiohttp's server decoded them from.
    """
    if method not in _TOKENS_SEEN:
        if not _TOKEN.fullmatch(method):
            raise ValueError(f"method {method!r} is not an HTTP token")
        _seen(method)
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    # Every name a token: one match over them all (tokens joined are a token; an empty name
    # is not one), then which. A sender's webhooks give the same names each time: remembered.
    names = [name for name, _ in headers]
    joined = "".join(names)
    if joined not in _TOKENS_SEEN or "" in names:
        if not _TOKEN.fullmatch(joined or "x") or "" in names:
            bad = next(name for name in names if not _TOKEN.fullmatch(name))
            raise ValueError(f"header name {bad!r} is not an HTTP token")
        _seen(joined)
    if body or method not in _BODILESS_METHODS:
        lines.append(f"Content-Length: {len(body)}")
    text = "\r\n".join(lines)
    # A CR, LF or NUL inside the target or a value would end the line early (request smuggling):
    # refused, as aiohttp and http.client do. Counting is one pass over the text in C.
    breaks = len(lines) - 1
    if text.count("\n") != breaks or text.count("\r") != breaks or "\0" in text:
        raise ValueError("a newline, carriage return or NUL in the request line or a header")
    if " " in target or not target:
        raise ValueError(f"request target {target!r} is empty or has a space")
    return (text + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


#: Methods and joined header names already checked to be tokens (bounded: see _seen).
_TOKENS_SEEN: set[str] = set()
_TOKENS_REMEMBERED = 256


def _seen(token: str) -> None:
    """Remember a checked token (never the empty string, which is none), forgetting them all
    when there are too many to be worth it."""
    if not token:
        return
    if len(_TOKENS_SEEN) >= _TOKENS_REMEMBERED:
        _TOKENS_SEEN.clear()
    _TOKENS_SEEN.add(token)


class Pool:
    """Kept-alive connections to one origin (``host``, ``port``, TLS or not)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None,
        size: int,
        keepalive: float,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.size = size
        self.keepalive = keepalive
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._loop = asyncio.get_running_loop()
        #: Requests in flight: their task and when they time out.
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._tick: asyncio.TimerHandle | None = None

    async def request(self, data: bytes, *, head: bool, limit: int, timeout: float) -> Answer:
        """Send one request's bytes and read its answer (``head``: a HEAD request, no body);
        TimeoutError when it takes over ``timeout`` seconds (connecting included)."""
        task = asyncio.current_task()
        assert task is not None
        self._deadlines[task] = self._loop.time() + timeout
        if self._tick is None:
            self._tick = self._loop.call_later(DEADLINE_TICK, self._expire)
        try:
            return await self._exchange(data, head, limit)
        except asyncio.CancelledError:
            # Cancelled by _expire (and by nobody else as well): this request timed out.
            if task in self._expired and task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            del self._deadlines[task]
            self._expired.discard(task)

    def _expire(self) -> None:
        """Cancel the requests past their deadline; tick again while any is in flight.

        One timer for every request in flight instead of one ``asyncio.timeout`` per request
        (a heap entry pushed and cancelled per event): a timeout fires at most DEADLINE_TICK
        late, which an attempt's timeout of seconds does not notice.
        """
        now = self._loop.time()
        for task, deadline in self._deadlines.items():
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._tick = self._loop.call_later(DEADLINE_TICK, self._expire) if self._deadlines else None

    async def _exchange(self, data: bytes, head: bool, limit: int) -> Answer:
        # An idle connection without a coroutine of its own: the case of every request but
        # the first few.
        reader, writer = self._idle_connection() or await self._connect()
        reusable = False
        try:
            writer.write(data)
            answer, reusable = await _read_answer(reader, head, limit)
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise HttpFailure(
                    "the server closed the connection without responding", retryable=True
                ) from None
            raise HttpFailure(
                "the server closed the connection in the middle of its answer", retryable=True
            ) from None
        except asyncio.LimitOverrunError:
            raise HttpFailure(
                f"not a valid HTTP response from {self.where}: headers over {HEAD_LIMIT} bytes",
                retryable=False,
            ) from None
        except _Malformed as exc:
            raise HttpFailure(
                f"not a valid HTTP response from {self.where}: {exc}", retryable=False
            ) from None
        finally:
            if reusable and len(self._idle) < self.size:
                self._idle.append((reader, writer, time.monotonic() + self.keepalive))
            else:
                writer.close()
        return answer

    @property
    def where(self) -> str:
        """``host:port`` (IPv6 in brackets), for messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def _idle_connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The most recently used idle connection still open and in time; None: connect."""
        now = time.monotonic()
        while self._idle:
            reader, writer, until = self._idle.pop()
            if until > now and not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to each address of the host in turn; say why none accepted."""
        loop = asyncio.get_running_loop()
        try:
            addresses = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ConnectFailure(
                f"cannot connect to {self.where}: {exc.strerror or exc}", refused=False
            ) from None
        errors: list[OSError] = []
        for family, kind, proto, _, address in addresses:
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await loop.sock_connect(sock, address)
            except OSError as exc:
                sock.close()
                errors.append(exc)
                continue
            except BaseException:
                sock.close()
                raise
            return await asyncio.open_connection(
                sock=sock,
                ssl=self.tls,
                server_hostname=self.host if self.tls else None,
                limit=HEAD_LIMIT,
            )
        if errors and all(e.errno == errno.ECONNREFUSED for e in errors):
            raise ConnectFailure(
                f"connection refused: nothing is listening on {self.where}", refused=True
            )
        reason = errors[-1].strerror or str(errors[-1]) if errors else "no address"
        raise ConnectFailure(f"cannot connect to {self.where}: {reason}", refused=False)

    async def close(self) -> None:
        """Close the idle connections (those in use close when their request ends)."""
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        idle, self._idle = self._idle, []
        for _, writer, _ in idle:
            writer.close()
        for _, writer, _ in idle:
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class _Malformed(Exception):
    """The target's answer is not HTTP/1.x as RFC 9112 spells it."""


async def _read_answer(reader: asyncio.StreamReader, head: bool, limit: int) -> tuple[Answer, bool]:
    """The answer and whether the connection may carry another request."""
    while True:
        status, reason, headers, keep_alive = _parse_head(await reader.readuntil(b"\r\n\r\n"))
        # 1xx answers (100 Continue, 103 Early Hints) come before the real one (RFC 9110
        # section 15.2); 101 would switch protocols, which a request of ours never asks for.
        if not 100 <= status < 200 or status == 101:
            break
    if head or status in _NO_BODY_STATUSES or status < 200:
        return Answer(status, reason, headers, b""), keep_alive
    encoding = headers.get("transfer-encoding")
    if encoding is not None:
        # RFC 9112 section 6.3: chunked last means chunked; anything else runs to the close.
        if encoding.rsplit(",", 1)[-1].strip().lower() != "chunked":
            return Answer(status, reason, headers, await _read_to_close(reader, limit)), False
        body, complete = await _read_chunked(reader, limit)
        return Answer(status, reason, headers, body), keep_alive and complete
    length = headers.get("content-length")
    if length is None:
        return Answer(status, reason, headers, await _read_to_close(reader, limit)), False
    if not length.isascii() or not length.isdigit():
        raise _Malformed(f"Content-Length {length[:40]!r}")
    size = int(length)
    if size > limit:
        return Answer(status, reason, headers, await reader.readexactly(limit)), False
    return Answer(status, reason, headers, await reader.readexactly(size)), keep_alive


def _parse_head(data: bytes) -> tuple[int, str, dict[str, str], bool]:
    lines = data[:-4].decode("utf-8", "replace").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise _Malformed(f"status line {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        # Only the colon is checked: the names read here are compared, never sent anywhere.
        if not colon:
            raise _Malformed(f"header line {line[:80]!r}")
        key = name.lower()
        value = value.strip(" \t")
        if key in headers:
            if key == "content-length" and headers[key] != value:
                raise _Malformed("two different Content-Length headers")
            if key == "transfer-encoding":
                headers[key] += ", " + value
            continue
        headers[key] = value
    connection = headers.get("connection")
    if connection is None:  # the usual answer: HTTP/1.1 keeps the connection, 1.0 does not
        return int(code), reason, headers, version == "HTTP/1.1"
    tokens = {t.strip().lower() for t in connection.split(",")}
    keep_alive = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    return int(code), reason, headers, keep_alive


async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> tuple[bytes, bool]:
    """A chunked body (RFC 9112 section 7.1) up to ``limit``; True when read to its end."""
    data = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line[:-2].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _Malformed(f"chunk size {size_text[:20]!r}") from None
        if size < 0:
            raise _Malformed(f"chunk size {size_text[:20]!r}")
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailer fields: nothing of ours reads them
            return bytes(data), True
        if len(data) + size > limit:
            data += await reader.readexactly(limit - len(data))
            return bytes(data), False
        data += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise _Malformed("a chunk does not end with CRLF")


async def _read_to_close(reader: asyncio.StreamReader, limit: int) -> bytes:
    """A body that runs until the server closes (or ``limit``: the rest is never read)."""
    data = bytearray()
    while len(data) < limit:
        chunk = await reader.read(limit - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)
