"""``--target``: POST each event to an HTTP server on loopback, over pooled keep-alive connections.

An EventBridge event is POSTed as its JSON. A webhook (``event.request`` set) is replayed as it
arrived: its method, path suffix and query, its headers in order with repeats, and its body
bytes untouched, so the app's signature check passes (smee-client re-serializes and breaks it).
Only hop-by-hop headers are dropped and Host points at the target (unless ``keep_host``).

Requests go out through ``http1.Pool`` (one write per request, over kept-alive connections).
The target's answer is read only up to ``RESPONSE_LIMIT`` (what the result line, ``--verbose``
and history show); a longer body is never read, so a target answering a gigabyte cannot grow
the listener.
"""

from __future__ import annotations

import asyncio
import errno
import html
import re
import socket
import ssl
import time
from collections.abc import Sequence

from yarl import URL

from hookcli import __version__
from hookcli.events import Event, RawRequest
from hookcli.targets import DETAIL_LIMIT, Outcome, clip, first_line
from hookcli.targets.http1 import Answer, HttpFailure, Pool, request_bytes

# RFC 9110 section 7.6.1: these describe one connection, not the message, so a proxy drops them
# (and any header the Connection header names).
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}
)
# Content-Length is recomputed from the same bytes (so it has the same value); the relay
# already answered any "Expect: 100-continue" when it took the body in.
_RECOMPUTED = frozenset({"content-length", "expect"})
_OURS = frozenset({"x-hook-event-id", "x-hook-attempt"})
_DROPPED = _HOP_BY_HOP | _RECOMPUTED | _OURS
# 408 Request Timeout (RFC 9110 section 15.5.9) and 429 Too Many Requests (RFC 6585 section 4)
# mean "try again later", unlike the other 4xx.
_RETRY_STATUSES = frozenset({408, 429})
# Below the idle timeout of Node (5 s) and uvicorn (5 s), so a pooled connection is rarely
# closed by the server just as a request goes out on it.
_KEEPALIVE_SECONDS = 4.0
_DEFAULT_POOL = 100
_PROBE_SECONDS = 1.0
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
#: Bytes of a response body kept: the detail and an HTML error page's <title> come from these.
RESPONSE_LIMIT = 64 * 1024


class HttpTarget:
    """Deliver to ``url`` over a pool of keep-alive connections sized for the concurrency."""

    def __init__(
        self,
        url: str,
        *,
        keep_host: bool = False,
        retry_4xx: bool = False,
        concurrency: int | None = None,
    ) -> None:
        self._url = URL(url)
        self.description = str(self._url)
        self._keep_host = keep_host
        self._retry_4xx = retry_4xx
        self._size = max(1, concurrency) if concurrency else _DEFAULT_POOL
        self._host = self._url.host or "localhost"
        self._port = self._url.port or 80
        self._where = f"{self._url.host_subcomponent}:{self._port}"
        self._origin = str(self._url.origin())
        self._post_action = f"POST {self.description}"
        # What aiohttp put in Host: the port only when it is not the scheme's default.
        netloc = self._url.host_subcomponent or "localhost"
        self._host_header = netloc if self._url.is_default_port() else f"{netloc}:{self._port}"
        self._event_target = self._url.raw_path_qs or "/"
        #: An EventBridge POST's headers before the per-event ones, in the order sent.
        self._event_headers: tuple[tuple[str, str], ...] = (
            ("Host", self._host_header),
            ("Content-Type", "application/json"),
            ("User-Agent", f"hook/{__version__}"),
        )
        #: Where a webhook without a path suffix or query goes (most of them), made once.
        self._plain_target = self._replay_target(RawRequest("POST", "", "", (), b""))
        self._plain_url = f"{self._origin}{self._plain_target}"
        self._plain_post = f"POST {self._plain_url}"
        self._pool: Pool | None = None

    async def start(self) -> None:
        """Make the connection pool (connections are opened on first use and kept alive)."""
        if self._pool is None:
            # Certificates are loaded only for https:// (a few ms, and never needed on loopback).
            tls = ssl.create_default_context() if self._url.scheme == "https" else None
            self._pool = Pool(
                self._host, self._port, tls=tls, size=self._size, keepalive=_KEEPALIVE_SECONDS
            )

    async def deliver(self, event: Event, attempt: int, timeout: float) -> Outcome:
        """POST the event (or replay its webhook request) once; classify the answer."""
        if self._pool is None:
            await self.start()
        assert self._pool is not None
        request = event.request
        if request is None:
            method, target, action = "POST", self._event_target, self._post_action
            headers: Sequence[tuple[str, str]] = (
                *self._event_headers,
                ("X-Hook-Event-Id", event.id),
                ("X-Hook-Attempt", str(attempt)),
            )
            body = event.payload().encode()
        else:
            method = request.method.upper() or "POST"
            if request.path or request.query:
                target = self._replay_target(request)
                action = f"{method} {self._origin}{target}"
            else:  # POSTed to /v1/ingest/<channel> itself: the target URL as it is
                target = self._plain_target
                action = self._plain_post if method == "POST" else f"{method} {self._plain_url}"
            headers = self._replay_headers(request, event.id, attempt)
            body = request.body
        started = time.perf_counter()
        try:
            data = request_bytes(method, target, headers, body)
            answer = await self._pool.request(
                data, head=method == "HEAD", limit=RESPONSE_LIMIT, timeout=timeout
            )
        except TimeoutError:
            return _failed(started, action, True, f"no response within {timeout:g} s")
        except HttpFailure as exc:
            return _failed(started, action, exc.retryable, exc.message)
        except ssl.SSLError as exc:
            return _failed(started, action, False, self._tls_error(exc))
        except OSError as exc:
            return _failed(started, action, True, f"{type(exc).__name__}: {exc}")
        except ValueError as exc:  # e.g. a stored header value that cannot be sent as it is
            return _failed(started, action, False, f"cannot send this request: {exc}")
        latency_ms = (time.perf_counter() - started) * 1000
        return self._classify(answer, latency_ms, action)

    async def probe(self) -> str | None:
        """Try a TCP connect to each address of the target host; a warning if none accepts."""
        loop = asyncio.get_running_loop()
        later = "deliveries will be retried, and `hook replay --failed` sends the ones that give up"
        refused = True
        try:
            async with asyncio.timeout(_PROBE_SECONDS):
                addresses = await loop.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM)
                for *_, address in addresses:
                    try:
                        _, writer = await asyncio.open_connection(str(address[0]), self._port)
                    except OSError as exc:
                        refused = refused and exc.errno == errno.ECONNREFUSED
                        continue
                    writer.close()
                    try:
                        await writer.wait_closed()
                    except OSError:
                        pass
                    return None
        except TimeoutError:
            return f"{self._where} did not accept a connection within {_PROBE_SECONDS:g} s; {later}"
        except OSError as exc:  # the name did not resolve
            return f"cannot look up {self._host}: {exc.strerror or exc}"
        if refused:
            return f"nothing is listening on {self._where} yet; {later}"
        return f"cannot connect to {self._where}; {later}"

    async def close(self) -> None:
        """Close the pooled connections."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _tls_error(self, exc: ssl.SSLError) -> str:
        """What a TLS failure means; the common one first: https:// to a plain-HTTP app, whose
        first bytes ("HTTP/1.1 400") OpenSSL reads as a record of an unknown TLS version."""
        if exc.reason == "WRONG_VERSION_NUMBER" or "WRONG_VERSION_NUMBER" in str(exc):
            plain = self._url.with_scheme("http")
            return f"the target speaks plain HTTP, not TLS: use {plain}"
        return f"TLS error talking to {self._where}: {exc}"

    def _replay_target(self, request: RawRequest) -> str:
        """The target URL's path plus the request's path suffix (what the sender put after
        ``/v1/ingest/<channel>``) and its query, both kept exactly as they arrived."""
        suffix = request.path
        if suffix and not suffix.startswith("/"):
            suffix = "/" + suffix
        path = self._url.raw_path.rstrip("/") + suffix if suffix else self._url.raw_path
        query = "&".join(q for q in (self._url.raw_query_string, request.query.lstrip("?")) if q)
        return (path or "/") + ("?" + query if query else "")

    def _replay_headers(
        self, request: RawRequest, event_id: str, attempt: int
    ) -> list[tuple[str, str]]:
        """Host, then the request's headers in order, repeats kept, minus hop-by-hop ones
        (``keep_host``: the request's own Host, where it was)."""
        keyed = [(name.lower(), name, value) for name, value in request.headers]
        named_by_connection = {
            token.strip().lower()
            for key, _, value in keyed
            if key == "connection"
            for token in value.split(",")
        }
        headers = [] if self._keep_host else [("Host", self._host_header)]
        # Repeats take their first spelling, as aiohttp's client sent them (names are
        # case-insensitive, RFC 9110 section 5.1, and signatures cover values, not the case of
        # names); the hook headers follow the sender's.
        spelling: dict[str, str] = {}
        for key, name, value in keyed:
            if key in _DROPPED or key.startswith("proxy-") or key in named_by_connection:
                continue
            if key == "host" and not self._keep_host:
                continue
            headers.append((spelling.setdefault(key, name), value))
        if self._keep_host and "host" not in spelling:
            headers.insert(0, ("Host", self._host_header))
        headers.append(("X-Hook-Event-Id", event_id))
        headers.append(("X-Hook-Attempt", str(attempt)))
        return headers

    def _classify(self, answer: Answer, latency_ms: float, action: str) -> Outcome:
        """2xx delivered; 5xx, 408 and 429 retryable; a 3xx is a failure (not followed)."""
        status, payload = answer.status, answer.body
        detail = clip(payload[: DETAIL_LIMIT + 1].decode("utf-8", "replace")) if payload else None
        if 200 <= status < 300:
            return Outcome(True, False, latency_ms, status, None, detail, action)
        if 300 <= status < 400:
            location = answer.headers.get("location")
            error = (
                f"redirected to {location}, not followed; point --target at the final URL"
                if location
                else f"{status} {answer.reason or 'redirect'}, not followed"
            )
            return Outcome(False, False, latency_ms, status, error, detail, action)
        retryable = (
            status >= 500 or status in _RETRY_STATUSES or (self._retry_4xx and 400 <= status < 500)
        )
        summary = _summary(payload, answer.headers.get("content-type", ""))
        error = summary or f"{status} {answer.reason or ''}".strip()
        return Outcome(False, retryable, latency_ms, status, error, detail, action)


def _summary(payload: bytes, content_type: str) -> str | None:
    """One line that says what went wrong: an HTML page's <title>, else the body's first line."""
    if "html" in content_type.lower() or payload.lstrip()[:1] == b"<":
        title = _TITLE.search(payload[:65536])
        if title:
            text = html.unescape(title.group(1).decode("utf-8", "replace"))
            line = first_line(text)
            if line:
                return line
    return first_line(payload[:4096].decode("utf-8", "replace"))


def _failed(started: float, action: str, retryable: bool, error: str) -> Outcome:
    latency_ms = (time.perf_counter() - started) * 1000
    return Outcome(False, retryable, latency_ms, error=error, action=action)
