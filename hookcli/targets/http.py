"""``--target``: POST each event to an HTTP server on loopback, over pooled keep-alive connections.

An EventBridge event is POSTed as its JSON. A webhook (``event.request`` set) is replayed as it
arrived: its method, path suffix and query, its headers in order with repeats, and its body
bytes untouched, so the app's signature check passes (smee-client re-serializes and breaks it).
Only hop-by-hop headers are dropped and Host points at the target (unless ``keep_host``).

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
import time
from collections.abc import Mapping

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from hookcli import __version__
from hookcli.events import Event, RawRequest
from hookcli.targets import DETAIL_LIMIT, Outcome, clip, first_line

# RFC 9110 section 7.6.1: these describe one connection, not the message, so a proxy drops them
# (and any header the Connection header names).
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}
)
# Content-Length is recomputed by aiohttp from the same bytes (so it has the same value); the
# relay already answered any "Expect: 100-continue" when it took the body in.
_RECOMPUTED = frozenset({"content-length", "expect"})
_OURS = frozenset({"x-hook-event-id", "x-hook-attempt"})
# aiohttp adds these on its own; a replayed request carries only what its sender sent, and an
# EventBridge POST sets its own Content-Type and User-Agent.
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
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
    """Deliver to ``url`` over one aiohttp session whose pool is sized for the concurrency."""

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
        self._pool = max(1, concurrency) if concurrency else _DEFAULT_POOL
        self._host = self._url.host or "localhost"
        self._port = self._url.port or 80
        self._where = f"{self._url.host_subcomponent}:{self._port}"
        self._origin = str(self._url.origin())
        self._post_action = f"POST {self.description}"
        self._event_headers = {
            "Content-Type": "application/json",
            "User-Agent": f"hook/{__version__}",
        }
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the connection pool (connections are made on first use and kept alive)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._pool, limit_per_host=0, keepalive_timeout=_KEEPALIVE_SECONDS
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # A cookie the app sets must not ride along on later (replayed) requests.
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=_NO_AUTO_HEADERS,
                trust_env=False,
            )

    async def deliver(self, event: Event, attempt: int, timeout: float) -> Outcome:
        """POST the event (or replay its webhook request) once; classify the answer."""
        if self._session is None:
            await self.start()
        assert self._session is not None
        request = event.request
        url: URL
        headers: Mapping[str, str]
        body: bytes | None
        if request is None:
            method, url, action = "POST", self._url, self._post_action
            headers = {
                **self._event_headers,
                "X-Hook-Event-Id": event.id,
                "X-Hook-Attempt": str(attempt),
            }
            body = event.payload().encode()
        else:
            method = request.method.upper() or "POST"
            url = self._replay_url(request)
            action = f"{method} {url}"
            headers = self._replay_headers(request, event.id, attempt)
            body = request.body or None
        started = time.perf_counter()
        try:
            async with self._session.request(
                method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=self._timeout(timeout),
            ) as response:
                payload = await _read_start(response, RESPONSE_LIMIT)
        except TimeoutError:
            return _failed(started, action, True, f"no response within {timeout:g} s")
        except aiohttp.ClientSSLError as exc:
            return _failed(started, action, False, self._tls_error(exc))
        except aiohttp.ClientConnectorError as exc:
            if exc.os_error.errno == errno.ECONNREFUSED:
                message = f"connection refused: nothing is listening on {self._where}"
            else:
                message = f"cannot connect to {self._where}: {exc.os_error.strerror or exc}"
            return _failed(started, action, True, message)
        except aiohttp.ServerDisconnectedError:
            return _failed(
                started, action, True, "the server closed the connection without responding"
            )
        except aiohttp.ClientResponseError as exc:
            message = f"not a valid HTTP response from {self._where}: {exc.message}"
            return _failed(started, action, False, message)
        except (aiohttp.ClientError, OSError) as exc:
            return _failed(started, action, True, f"{type(exc).__name__}: {exc}")
        except ValueError as exc:  # e.g. a stored header value aiohttp refuses to send
            return _failed(started, action, False, f"cannot send this request: {exc}")
        latency_ms = (time.perf_counter() - started) * 1000
        return self._classify(response, payload, latency_ms, action)

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
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        """One ClientTimeout per distinct value, not one per request (the policy has one value)."""
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return timeout

    def _tls_error(self, exc: aiohttp.ClientSSLError) -> str:
        """What a TLS failure means; the common one first: https:// to a plain-HTTP app, whose
        first bytes ("HTTP/1.1 400") OpenSSL reads as a record of an unknown TLS version."""
        reason = getattr(exc.os_error, "reason", None) or ""
        if reason == "WRONG_VERSION_NUMBER" or "WRONG_VERSION_NUMBER" in str(exc):
            plain = self._url.with_scheme("http")
            return f"the target speaks plain HTTP, not TLS: use {plain}"
        return f"TLS error talking to {self._where}: {exc}"

    def _replay_url(self, request: RawRequest) -> URL:
        """The target URL plus the request's path suffix (what the sender put after
        ``/v1/ingest/<channel>``) and its query, both kept exactly as they arrived."""
        suffix = request.path
        if suffix and not suffix.startswith("/"):
            suffix = "/" + suffix
        path = self._url.raw_path.rstrip("/") + suffix if suffix else self._url.raw_path
        query = "&".join(q for q in (self._url.raw_query_string, request.query.lstrip("?")) if q)
        return URL(self._origin + path + ("?" + query if query else ""), encoded=True)

    def _replay_headers(self, request: RawRequest, event_id: str, attempt: int) -> CIMultiDict[str]:
        """The request's headers in order, repeats kept, minus hop-by-hop ones; Host rewritten."""
        named_by_connection = {
            token.strip().lower()
            for name, value in request.headers
            if name.lower() == "connection"
            for token in value.split(",")
        }
        headers: CIMultiDict[str] = CIMultiDict()
        # aiohttp's session keeps repeats only when spelled alike (it would let "x-tag" replace an
        # earlier "X-Tag"), so repeats take their first spelling; names are case-insensitive
        # (RFC 9110 section 5.1) and signatures cover values, not the case of names.
        spelling: dict[str, str] = {}
        for name, value in request.headers:
            key = name.lower()
            if (
                key in _HOP_BY_HOP
                or key in _RECOMPUTED
                or key in _OURS
                or key.startswith("proxy-")
                or key in named_by_connection
                or (key == "host" and not self._keep_host)
            ):
                continue
            headers.add(spelling.setdefault(key, name), value)
        headers.add("X-Hook-Event-Id", event_id)
        headers.add("X-Hook-Attempt", str(attempt))
        return headers

    def _classify(
        self, response: aiohttp.ClientResponse, payload: bytes, latency_ms: float, action: str
    ) -> Outcome:
        """2xx delivered; 5xx, 408 and 429 retryable; a 3xx is a failure (not followed)."""
        status = response.status
        detail = clip(payload[: DETAIL_LIMIT + 1].decode("utf-8", "replace")) if payload else None
        if 200 <= status < 300:
            return Outcome(True, False, latency_ms, status, None, detail, action)
        if 300 <= status < 400:
            location = response.headers.get("Location")
            error = (
                f"redirected to {location}, not followed; point --target at the final URL"
                if location
                else f"{status} {response.reason or 'redirect'}, not followed"
            )
            return Outcome(False, False, latency_ms, status, error, detail, action)
        retryable = (
            status >= 500 or status in _RETRY_STATUSES or (self._retry_4xx and 400 <= status < 500)
        )
        summary = _summary(payload, response.headers.get("Content-Type", ""))
        error = summary or f"{status} {response.reason or ''}".strip()
        return Outcome(False, retryable, latency_ms, status, error, detail, action)


async def _read_start(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most ``limit`` bytes of the body; the connection is dropped if more follow.

    The rest is not drained: draining an endless or huge body would hold this delivery until
    its timeout for bytes nobody keeps, while a new loopback connection costs well under a
    millisecond. aiohttp's read buffer is bounded (flow control), so memory stays at ``limit``
    plus one buffer whatever the target sends.
    """
    data = bytearray()
    while len(data) < limit:
        chunk = await response.content.read(limit - len(data))
        if not chunk:
            return bytes(data)
        data += chunk
    if not response.content.at_eof():
        response.close()  # never back into the pool with unread bytes on it
    return bytes(data)


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
