"""Connection abuse on a relay: timeouts, caps that answer, quiet malformed HTTP, bounded logs.

Every test runs a real relay on loopback and talks to it over raw sockets (asyncio streams), with
small caps and timeouts so floods stay bounded in count and time.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect

from hookcli.relay.connections import (
    GUARD_KEY,
    LOG_BURST,
    ConnectionLimits,
    RelayLogFilter,
    address_key,
)
from hookcli.relay.service import RunningRelay, start_relay

from conftest import UNIT, relay_settings, run

TOKEN = "connections-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Small caps; timeouts long enough not to interfere unless a test shortens one.
LIMITS = ConnectionLimits(
    max_connections=64,
    max_per_address=16,
    header_timeout=UNIT * 4,
    body_timeout=UNIT * 4,
    idle_timeout=UNIT * 4,
    keepalive_timeout=UNIT * 4,
)
FLOOD = 150

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@asynccontextmanager
async def serving(tmp_path: Path, **limits: Any) -> AsyncIterator[RunningRelay]:
    """A token-protected ingest-only relay with ``LIMITS`` (overridden by ``limits``)."""
    settings = relay_settings(
        tmp_path / "relay", tokens={TOKEN: ""}, connections=replace(LIMITS, **limits)
    )
    relay = await start_relay(settings)
    try:
        yield relay
    finally:
        await relay.stop()


async def open_raw(relay: RunningRelay, source: str = "127.0.0.1") -> Streams:
    """A plain TCP connection to the relay from the loopback address ``source``."""
    port = int(relay.url.rsplit(":", 1)[1])
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def read_all(reader: asyncio.StreamReader, timeout: float = UNIT) -> bytes:
    """Everything the relay sends until it closes (b"" for a reset)."""
    try:
        async with asyncio.timeout(timeout):
            return await reader.read()
    except ConnectionResetError:
        return b""


def parse(raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers (lower-case names) and JSON body of a raw HTTP/1.1 response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, json.loads(body) if body else {}


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except ConnectionError:
        pass


async def flood(relay: RunningRelay, sources: list[str], count: int) -> list[Streams]:
    """``count`` connections, round-robin over ``sources``, each stuck in a half-sent request."""
    held = []
    for number in range(count):
        reader, writer = await open_raw(relay, sources[number % len(sources)])
        writer.write(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        held.append((reader, writer))
    return held


async def health(relay: RunningRelay) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{relay.url}/v1/health") as response:
            await response.read()
            return response.status


async def ingest(relay: RunningRelay, body: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{relay.url}/v1/ingest/conn", json=body) as response:
            assert response.status == 202, await response.text()
            answer: dict[str, Any] = await response.json()
            return answer


async def listener(relay: RunningRelay, name: str) -> ClientConnection:
    """A subscribed listen-mode websocket, authenticated with the token."""
    ws = await connect(relay.ws_url, additional_headers=AUTH)
    await ws.send(json.dumps({"type": "hello", "protocol": 1}))
    assert json.loads(await ws.recv())["type"] == "welcome"
    await ws.send(
        json.dumps({"type": "subscribe", "name": name, "pattern": {}, "from": "now", "window": 10})
    )
    assert json.loads(await ws.recv())["type"] == "subscribed"
    return ws


async def next_event(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(UNIT):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message["type"] == "event":
                return message


async def request(streams: Streams, headers: bytes) -> bytes:
    """``GET /v1/info`` on a kept-alive raw connection; the response head."""
    reader, writer = streams
    writer.write(b"GET /v1/info HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n")
    async with asyncio.timeout(UNIT):
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
    return head


AUTH_LINE = b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"


# ---------------------------------------------------------------------- timeouts


def test_half_sent_request_is_answered_408_and_closed(tmp_path: Path) -> None:
    """A request whose headers never finish gets 408 and a close after the header timeout."""

    async def main() -> None:
        async with serving(tmp_path, header_timeout=0.5) as relay:
            reader, writer = await open_raw(relay)
            writer.write(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            status, headers, body = parse(await read_all(reader, UNIT * 2))
            assert status == 408
            assert headers["connection"] == "close"
            assert body["error"] and body["hint"]
            await close(writer)

    run(main())


def test_silent_connection_is_closed(tmp_path: Path) -> None:
    """A connection that never sends a byte is closed after the idle timeout."""

    async def main() -> None:
        async with serving(tmp_path, idle_timeout=0.5) as relay:
            reader, writer = await open_raw(relay)
            assert await read_all(reader, UNIT * 2) == b""
            await close(writer)

    run(main())


def test_slow_body_is_cut_and_nothing_stored(tmp_path: Path) -> None:
    """An ingest body that stops arriving is cut after the body timeout; no event is stored."""

    async def main() -> None:
        async with serving(tmp_path, body_timeout=0.5) as relay:
            reader, writer = await open_raw(relay)
            writer.write(
                b"POST /v1/ingest/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":'
            )
            assert await read_all(reader, UNIT * 2) == b""
            assert relay.relay.store.head() == 0
            assert await health(relay) == 200
            await close(writer)

    run(main())


def test_idle_authenticated_connection_outlives_the_idle_timeout(tmp_path: Path) -> None:
    """After a request with the token, a keep-alive connection idles past the idle timeout."""

    async def main() -> None:
        async with serving(tmp_path, idle_timeout=1.0) as relay:
            trusted = await open_raw(relay)
            assert (await request(trusted, AUTH_LINE)).startswith(b"HTTP/1.1 200")
            stranger = await open_raw(relay)
            assert (await request(stranger, b"")).startswith(b"HTTP/1.1 401")
            # The unauthenticated keep-alive connection is closed after the idle timeout ...
            assert await read_all(stranger[0]) == b""
            # ... while the authenticated one, idle just as long, still serves.
            assert (await request(trusted, AUTH_LINE)).startswith(b"HTTP/1.1 200")
            await close(trusted[1])
            await close(stranger[1])

    run(main())


async def post_raw(streams: Streams, number: int) -> int:
    """POST a small webhook on a kept-alive raw connection; the answer's status."""
    reader, writer = streams
    body = json.dumps({"n": number}).encode()
    writer.write(
        b"POST /v1/ingest/busy HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    async with asyncio.timeout(UNIT):
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
    return int(head.split()[1])


def test_busy_connection_outlives_many_header_timeouts(tmp_path: Path) -> None:
    """Prompt requests back to back on one connection are all served, for several times the
    header timeout (each request's deadline replaces the last; none fires on a stale one)."""

    async def main() -> None:
        async with serving(tmp_path, header_timeout=0.3, idle_timeout=0.6) as relay:
            streams = await open_raw(relay)
            loop = asyncio.get_running_loop()
            until = loop.time() + 4 * 0.3
            statuses = []
            while loop.time() < until and len(statuses) < 5_000:
                statuses.append(await post_raw(streams, len(statuses)))
            assert len(statuses) > 1
            assert set(statuses) == {202}
            assert relay.relay.store.head() == len(statuses)
            await close(streams[1])

    run(main())


def test_idle_timeout_follows_a_shorter_header_timeout(tmp_path: Path) -> None:
    """A connection idle after a prompt request is closed once the idle timeout passes, also
    when the header timeout is the shorter one (its timer fires first and is moved on)."""

    async def main() -> None:
        async with serving(tmp_path, header_timeout=0.2, idle_timeout=0.6) as relay:
            streams = await open_raw(relay)
            assert await post_raw(streams, 1) == 202
            assert await read_all(streams[0], UNIT * 2) == b""
            assert relay.relay.app[GUARD_KEY].timed_out == 1
            await close(streams[1])

    run(main())


# ---------------------------------------------------------------------- caps


def test_oldest_idle_connection_is_answered_503_to_make_room(tmp_path: Path) -> None:
    """At the per-address cap a newcomer gets in; the oldest idle connection gets a 503."""

    async def main() -> None:
        async with serving(tmp_path, max_per_address=4) as relay:
            held = [await open_raw(relay) for _ in range(4)]
            assert await health(relay) == 200
            status, headers, body = parse(await read_all(held[0][0]))
            assert status == 503
            assert headers["retry-after"] == str(LIMITS.retry_after)
            assert headers["connection"] == "close"
            assert "too many connections" in body["error"] and body["hint"]
            for _, writer in held:
                await close(writer)

    run(main())


def test_over_cap_connection_is_answered_503_when_nothing_is_evictable(tmp_path: Path) -> None:
    """When every counted connection is busy, a newcomer is answered 503 at once, not hung."""

    async def main() -> None:
        async with serving(tmp_path, max_per_address=4) as relay:
            busy = []
            for _ in range(4):  # handlers running, waiting for their bodies: not evictable
                reader, writer = await open_raw(relay)
                writer.write(
                    b"POST /v1/ingest/busy HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Expect: 100-continue\r\nContent-Length: 10\r\n\r\n"
                )
                # "100 Continue" comes once the relay routed the request to its handler.
                async with asyncio.timeout(UNIT):
                    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100")
                busy.append((reader, writer))
            reader, writer = await open_raw(relay)
            status, headers, body = parse(await read_all(reader))
            assert status == 503
            assert headers["retry-after"] == str(LIMITS.retry_after)
            assert body["error"] and body["hint"]
            await close(writer)
            for _, busy_writer in busy:
                await close(busy_writer)

    run(main())


def test_idle_authenticated_connection_is_never_evicted(tmp_path: Path) -> None:
    """A flood over the per-address cap evicts strangers, never an idle authenticated connection."""

    async def main() -> None:
        async with serving(tmp_path, max_per_address=4) as relay:
            trusted = await open_raw(relay)
            assert (await request(trusted, AUTH_LINE)).startswith(b"HTTP/1.1 200")
            held = await flood(relay, ["127.0.0.1"], 20)
            status, _, _ = parse(await read_all(held[0][0]))
            assert status == 503  # the flood did hit the cap
            assert (await request(trusted, AUTH_LINE)).startswith(b"HTTP/1.1 200")
            await close(trusted[1])
            for _, writer in held:
                await close(writer)

    run(main())


def test_listeners_keep_working_while_a_flood_holds_the_cap(tmp_path: Path) -> None:
    """With 150 slow connections from the same address: health answers, a connected listener
    keeps receiving, and a new listener connects and receives an event ingested meanwhile."""

    async def main() -> None:
        async with serving(tmp_path) as relay:
            before = await listener(relay, "before")
            held = await flood(relay, ["127.0.0.1"], FLOOD)
            assert await health(relay) == 200
            after = await listener(relay, "after")
            accepted = await ingest(relay, {"during": "flood"})
            for ws in (before, after):
                message = await next_event(ws)
                assert message["seq"] == accepted["seq"]
                assert message["event"]["id"] == accepted["id"]
            # The flood was answered (its oldest connections evicted), not left hanging.
            status, _, _ = parse(await read_all(held[0][0]))
            assert status == 503
            await before.close()
            await after.close()
            for _, writer in held:
                await close(writer)

    run(main())


@pytest.mark.parametrize(
    "sources",
    [["127.0.0.1"], ["127.0.0.1", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"]],
    ids=["one-address", "five-addresses-over-the-total-cap"],
)
def test_flood_leaves_another_address_alone(tmp_path: Path, sources: list[str]) -> None:
    """Half-sent requests from 127.0.0.2 survive a flood from other addresses and complete."""

    async def main() -> None:
        async with serving(tmp_path) as relay:
            mine = []
            for _ in range(4):
                reader, writer = await open_raw(relay, "127.0.0.2")
                writer.write(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                mine.append((reader, writer))
            held = await flood(relay, sources, FLOOD)
            for reader, writer in mine:
                writer.write(b"Connection: close\r\n\r\n")
                status, _, body = parse(await read_all(reader))
                assert status == 200, body
                assert body["ok"] is True
                await close(writer)
            for _, writer in held:
                await close(writer)

    run(main())


# ---------------------------------------------------------------------- malformed HTTP and logs

MALFORMED = {
    "bad-request-line": b"GET\x01 / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "bad-header": b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n",
    "oversize-header": b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
    + b"a" * 20_000
    + b"\r\n\r\n",
    "invalid-chunking": b"POST /v1/ingest/bad HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_request_gets_400_without_traceback(
    tmp_path: Path, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Malformed HTTP is answered 400 and logged, if at all, without a traceback."""
    caplog.set_level(logging.DEBUG)

    async def main() -> None:
        async with serving(tmp_path) as relay:
            reader, writer = await open_raw(relay)
            writer.write(raw)
            answer = await read_all(reader)
            assert answer.split(b" ", 2)[1] == b"400", answer[:200]
            await close(writer)
            assert relay.relay.store.head() == 0
            assert await health(relay) == 200

    run(main())
    loud = [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert loud == []


def test_malformed_flood_logs_a_bounded_number_of_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """500 malformed requests produce a handful of log lines, not 500 (debug level included)."""
    caplog.set_level(logging.DEBUG)

    async def one(relay: RunningRelay) -> bytes:
        reader, writer = await open_raw(relay)
        writer.write(MALFORMED["bad-header"])
        answer = await read_all(reader)
        await close(writer)
        return answer

    async def main() -> None:
        async with serving(tmp_path, max_per_address=64) as relay:
            for _ in range(25):
                answers = await asyncio.gather(*(one(relay) for _ in range(20)))
                assert all(a.split(b" ", 2)[1] == b"400" for a in answers)

    run(main())
    lines = [
        r.getMessage() for r in caplog.records if r.name.startswith(("aiohttp", "hook", "asyncio"))
    ]
    bad = [line for line in lines if line.startswith("bad HTTP request from 127.0.0.1")]
    assert len(bad) == LOG_BURST
    assert f"{500 - LOG_BURST} similar messages suppressed" in "\n".join(lines)
    assert len(lines) <= 3 * LOG_BURST, lines


class Clock:
    """A hand-moved monotonic clock for the log filter."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited(caplog: pytest.LogCaptureFixture) -> Iterator[tuple[logging.Logger, Clock]]:
    """A logger behind a fresh RelayLogFilter on a hand-moved clock, captured by caplog."""
    clock = Clock()
    logger = logging.getLogger("hook.test.ratelimit")
    flt = RelayLogFilter(burst=5, interval=60.0, kinds=8, clock=clock)
    logger.addFilter(flt)
    caplog.set_level(logging.INFO, logger=logger.name)
    yield logger, clock
    logger.removeFilter(flt)


def test_repeated_message_is_rate_limited_with_one_summary(
    limited: tuple[logging.Logger, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    """100 identical warnings in a minute log 5, then one "95 similar ... suppressed" line."""
    logger, clock = limited
    for number in range(100):
        logger.warning("refused a connection from %s", f"10.0.0.{number}")
    assert len(caplog.records) == 5
    clock.now += 61
    logger.warning("refused a connection from %s", "10.0.0.1")
    messages = [r.getMessage() for r in caplog.records[5:]]
    assert messages[0].startswith("95 similar messages suppressed")
    assert messages[1:] == ["refused a connection from 10.0.0.1"]


def test_many_kinds_of_message_stay_bounded(
    limited: tuple[logging.Logger, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    """1,000 distinct messages pass at most (kinds tracked + one shared bucket) x burst lines."""
    logger, _ = limited
    for number in range(1000):
        logger.warning(f"distinct message {number}")  # noqa: G004 - distinct templates on purpose
    assert len(caplog.records) <= (8 + 1) * 5


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        (("127.0.0.1", 5000), "127.0.0.1"),
        (("::1", 5000, 0, 0), "::1"),
        (("::ffff:10.1.2.3", 5000, 0, 0), "10.1.2.3"),
        (("2001:db8:1:2:aaaa::1", 5000, 0, 0), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:bbbb::9", 5000, 0, 0), "2001:db8:1:2::/64"),
        (("fe80::1%eth0", 5000, 0, 2), "fe80::/64"),
    ],
)
def test_address_budget_groups_ipv6_by_64(peer: tuple[Any, ...], key: str) -> None:
    """IPv4 counts per address, IPv6 per /64 (one host's share), mapped IPv4 as IPv4."""
    assert address_key(peer) == key
