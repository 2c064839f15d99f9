"""--target's HTTP/1.1 client against a scripted server: answer framings, reuse, bad answers.

The server is a real socket on loopback that reads each request whole and answers with the next
scripted bytes, so every framing RFC 9112 allows can be sent exactly, including broken ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from hookcli.events import Event, EventId, RawRequest, event_from_request
from hookcli.targets import Outcome, make_target
from hookcli.targets.http import RESPONSE_LIMIT

from conftest import UNIT, async_wait_until, run

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
#: Closes the connection after answering.
CLOSE = b"<close>"


@dataclass
class Scripted:
    """Answers request N with ``replies[N]`` (then ``CLOSE`` closes); records what arrived."""

    replies: list[bytes]
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.replies:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                self.requests.append(head + await reader.readexactly(length))
                reply = self.replies.pop(0)
                writer.write(reply.removesuffix(CLOSE))
                await writer.drain()
                if reply.endswith(CLOSE):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def scripted(*replies: bytes) -> AsyncIterator[Scripted]:
    server = Scripted(list(replies))
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listening.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listening.close()


def event(n: int = 1) -> Event:
    return Event(
        id=EventId(f"e-{n}"), source="shop.orders", detail_type="Order Placed", detail={"n": n}
    )


def webhook(method: str = "POST", headers: tuple[tuple[str, str], ...] = ()) -> Event:
    request = RawRequest(method, "", "", headers, b"" if method == "HEAD" else b'{"a":1}')
    return event_from_request(
        "ping", request, detail_type="ping", event_id=EventId("w-1"), received=datetime.now(UTC)
    )


async def deliver_all(port: int, *events: Event) -> list[Outcome]:
    target = make_target(url=f"127.0.0.1:{port}/hooks")
    await target.start()
    try:
        return [await target.deliver(e, 1, UNIT) for e in events]
    finally:
        await target.close()


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (OK, "ok"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nok\r\n1\r\n!\r\n0\r\n"
            b"Trailer-Field: 1\r\n\r\n",
            "ok!",
        ),  # fmt: skip
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK, "ok"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", None),
        (b"HTTP/1.1 200 OK\r\ncontent-length:  3 \r\n\r\nabc", "abc"),
    ],
)
def test_framings_are_read_and_the_connection_reused(answer: bytes, detail: str | None) -> None:
    """Content-Length, chunked (extensions, trailers), 1xx before the answer, 204: the body is
    read exactly, and the next request goes out on the same connection."""

    async def scenario() -> tuple[list[Outcome], Scripted]:
        async with scripted(answer, OK) as server:
            return await deliver_all(server.port, event(1), event(2)), server

    (first, second), server = run(scenario())
    assert (first.delivered, first.detail, second.delivered) == (True, detail, True)
    assert server.connections == 1


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok" + CLOSE,
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok" + CLOSE,
        b"HTTP/1.1 200 OK\r\n\r\nok" + CLOSE,  # no length: the body runs to the close
    ],
)
def test_an_answer_that_ends_the_connection_gets_a_new_one(answer: bytes) -> None:
    """Connection: close, HTTP/1.0 and close-delimited answers: the next request reconnects."""

    async def scenario() -> tuple[list[Outcome], Scripted]:
        async with scripted(answer, OK) as server:
            return await deliver_all(server.port, event(1), event(2)), server

    (first, second), server = run(scenario())
    assert (first.delivered, first.detail, second.delivered) == (True, "ok", True)
    assert server.connections == 2


def test_an_answer_over_the_limit_is_cut_and_its_connection_dropped() -> None:
    """A body longer than RESPONSE_LIMIT: the start is kept, the rest never read or reused."""
    big = b"x" * (RESPONSE_LIMIT + 10)
    answer = b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % len(big) + big

    async def scenario() -> tuple[list[Outcome], Scripted]:
        async with scripted(answer, OK) as server:
            return await deliver_all(server.port, event(1), event(2)), server

    (first, second), server = run(scenario())
    assert (first.code, first.retryable, second.delivered) == (500, True, True)
    assert server.connections == 2


def test_head_answer_has_no_body_even_with_a_length() -> None:
    """A replayed HEAD: the answer's Content-Length announces a body that never comes."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"

    async def scenario() -> tuple[list[Outcome], Scripted]:
        async with scripted(answer, OK) as server:
            return await deliver_all(server.port, webhook("HEAD"), event(2)), server

    (first, second), server = run(scenario())
    assert (first.delivered, first.detail, second.delivered) == (True, None, True)
    assert server.requests[0].startswith(b"HEAD /hooks HTTP/1.1\r\n")


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (b"HTP/1.1 200 OK\r\n\r\n", "status line 'HTP/1.1 200 OK'"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "status line 'HTTP/1.1 2000 OK'"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "header line 'no colon here'"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length '-1'"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok",
            "two different Content-Length headers",
        ),  # fmt: skip
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size b'zz'"),
    ],
)
def test_a_malformed_answer_fails_for_good_saying_what(answer: bytes, why: str) -> None:
    """Not HTTP/1.x as RFC 9112 spells it: a failure that is not retried, naming the part."""

    async def scenario() -> tuple[Outcome, int]:
        async with scripted(answer + CLOSE) as server:
            [outcome] = await deliver_all(server.port, event())
            return outcome, server.port

    outcome, port = run(scenario())
    assert (outcome.delivered, outcome.retryable) == (False, False)
    assert outcome.error == f"not a valid HTTP response from 127.0.0.1:{port}: {why}"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (CLOSE, "the server closed the connection without responding"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok" + CLOSE,
            "the server closed the connection in the middle of its answer",
        ),  # fmt: skip
    ],
)
def test_a_connection_closed_before_the_answer_ends_is_retryable(answer: bytes, error: str) -> None:
    """The server hung up before answering, or in the middle of the body: worth another try."""

    async def scenario() -> Outcome:
        async with scripted(answer) as server:
            [outcome] = await deliver_all(server.port, event())
            return outcome

    outcome = run(scenario())
    assert (outcome.delivered, outcome.retryable, outcome.error) == (False, True, error)


@pytest.mark.parametrize(
    "headers",
    [
        (("X-Tag", "one\r\nX-Injected: yes"),),
        (("X-Tag", "one\nX-Injected: yes"),),
        (("X-Tag: yes\r\nX-Injected", "1"),),
        (("Bad Name", "1"),),
    ],
)
def test_a_header_that_would_break_the_request_is_not_sent(
    headers: tuple[tuple[str, str], ...],
) -> None:
    """A stored header with a line break or a non-token name fails without reaching the app."""

    async def scenario() -> tuple[Outcome, Scripted]:
        async with scripted(OK) as server:
            [outcome] = await deliver_all(server.port, webhook("POST", headers))
            return outcome, server

    outcome, server = run(scenario())
    assert (outcome.delivered, outcome.retryable) == (False, False)
    assert (outcome.error or "").startswith("cannot send this request: ")
    assert server.requests == []


@pytest.mark.parametrize(
    "bad",
    [
        webhook("POST", (("X-Tag", "1"), ("", "2"))),  # the same names joined, one empty
        webhook("POST", (("X-T", "1"), ("ag", "2"), ("Bad Name", "3"))),
        webhook("GE T", (("X-Tag", "1"),)),
    ],
)
def test_names_sent_before_do_not_let_a_bad_request_through(bad: Event) -> None:
    """The checks remembered from good requests still refuse an empty name, a bad name or a
    bad method that comes later."""

    async def scenario() -> tuple[list[Outcome], Scripted]:
        async with scripted(OK, OK) as server:
            good = webhook("POST", (("X-Tag", "1"),))
            outcomes = await deliver_all(server.port, good, bad, good)
            return outcomes, server

    (first, refused, again), server = run(scenario())
    assert (first.delivered, again.delivered) == (True, True)
    assert (refused.delivered, refused.retryable) == (False, False)
    assert (refused.error or "").startswith("cannot send this request: ")
    assert len(server.requests) == 2


def test_a_stalled_request_times_out_and_the_next_one_is_served() -> None:
    """No answer within the attempt's timeout: a retryable failure; the pool goes on working."""
    stall = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok"  # 8 bytes never come

    async def scenario() -> list[Outcome]:
        async with scripted(stall, OK) as server:
            target = make_target(url=f"127.0.0.1:{server.port}")
            await target.start()
            try:
                return [await target.deliver(event(n), 1, 0.2) for n in (1, 2)]
            finally:
                await target.close()

    first, second = run(scenario())
    assert (first.delivered, first.retryable, first.error) == (
        False,
        True,
        "no response within 0.2 s",
    )
    assert second.delivered


def test_cancelling_a_delivery_cancels_it_and_is_not_a_timeout() -> None:
    """A delivery cancelled from outside (Ctrl-C) raises CancelledError, not a failed outcome."""
    stall = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok"

    async def scenario() -> None:
        async with scripted(stall, OK) as server:
            target = make_target(url=f"127.0.0.1:{server.port}")
            await target.start()
            try:
                delivery = asyncio.create_task(target.deliver(event(), 1, UNIT))
                await async_wait_until(lambda: bool(server.requests), what="the request")
                delivery.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await delivery
                assert (await target.deliver(event(2), 1, UNIT)).delivered
            finally:
                await target.close()

    run(scenario())
