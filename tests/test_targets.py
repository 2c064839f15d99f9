"""Targets against real peers: a recording HTTP app, shell scripts and handler modules."""

from __future__ import annotations

import asyncio
import json
import shlex
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hookcli import __version__
from hookcli.errors import UsageError
from hookcli.events import Event, EventId, RawRequest, event_from_request
from hookcli.targets import Outcome, Target, make_target, parse_handler_spec
from hookcli.targets.handler import HandlerTarget

from conftest import UNIT, async_wait_until, run
from fixtures import FIXTURES, HANDLERS, SCRIPTS
from fixtures.recorder import Recorder, Reply, free_port, sign

EXAMPLE = FIXTURES.parents[1] / "examples" / "handler.py"


def order_event(event_id: str = "6a7e8feb-b491-4cf7-a9f1-bf3703467718", **detail: Any) -> Event:
    return Event(
        id=EventId(event_id),
        source="shop.orders",
        detail_type="Order Placed",
        detail={"order": 42, **detail},
        account="123456789012",
        region="eu-west-1",
        time="2026-05-01T12:00:00Z",
        resources=("arn:aws:events:eu-west-1:123456789012:rule/orders",),
    )


async def deliver_once(
    target: Target, event: Event, attempt: int = 1, timeout: float = UNIT
) -> Outcome:
    await target.start()
    try:
        return await target.deliver(event, attempt, timeout)
    finally:
        await target.close()


def returned(outcome: Outcome) -> Any:
    """The handler's return value (JSON text in the outcome's ``value``)."""
    assert outcome.value is not None, outcome
    return json.loads(outcome.value)


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


# ----------------------------------------------------------------------------- HTTP


def test_http_posts_the_eventbridge_event_with_hook_headers() -> None:
    """An EventBridge event is POSTed as its JSON with the X-Hook-* headers and hook's UA."""
    event = order_event()

    async def scenario() -> tuple[Recorder, Outcome]:
        async with Recorder() as app:
            outcome = await deliver_once(make_target(url=app.url + "/hooks"), event, attempt=2)
        return app, outcome

    app, outcome = run(scenario())
    [received] = app.requests
    assert (received.method, received.path, received.query) == ("POST", "/hooks", "")
    assert received.body == event.to_json().encode()
    assert received.header("Content-Type") == ["application/json"]
    assert received.header("X-Hook-Event-Id") == [event.id]
    assert received.header("X-Hook-Attempt") == ["2"]
    assert received.header("User-Agent") == [f"hook/{__version__}"]
    assert received.header("Accept-Encoding") == []
    assert outcome.delivered and not outcome.retryable
    assert (outcome.code, outcome.error, outcome.detail) == (200, None, "ok")
    assert outcome.action == f"POST {app.url}/hooks"


SECRET = b"whsec_5b1f0c"
#: Odd whitespace, keys out of order, a decimal that re-serializes differently, non-ASCII, CRLF.
WEBHOOK_BODY = '{ "zeta": 1,\n\t"alpha" : "h\u00e9llo \u2713",  "n": 1.50 }\r\n'.encode()


def webhook_event(**overrides: Any) -> Event:
    headers = [
        ("Host", "relay.example:8080"),
        ("User-Agent", "GitHub-Hookshot/5e1c"),
        ("Content-Type", "application/json; charset=utf-8"),
        ("X-Signature", sign(SECRET, WEBHOOK_BODY)),
        ("X-Tag", "first"),
        ("Connection", "keep-alive, X-Relay-Hop"),
        ("X-Relay-Hop", "1"),
        ("Keep-Alive", "timeout=5"),
        ("Content-Length", str(len(WEBHOOK_BODY))),
        ("Proxy-Authorization", "Basic c2VjcmV0"),
        ("TE", "trailers"),
        ("Upgrade", "h2c"),
        ("x-tag", "second"),
        ("Transfer-Encoding", "chunked"),
    ]
    request = RawRequest(
        method=overrides.get("method", "PUT"),
        path=overrides.get("path", "/github/push"),
        query=overrides.get("query", "delivery=7&next=%2Fa%20b"),
        headers=tuple(headers),
        body=WEBHOOK_BODY,
    )
    return event_from_request(
        "github",
        request,
        detail_type="push",
        event_id=EventId("0f2c1d7e-webhook"),
        received=datetime(2026, 5, 1, tzinfo=UTC),
    )


def test_http_replays_a_webhook_byte_exact_so_its_signature_verifies() -> None:
    """A webhook arrives as sent: method, path suffix, query, headers, raw body; HMAC verifies."""
    event = webhook_event()

    async def scenario() -> tuple[Recorder, Outcome]:
        async with Recorder(secret=SECRET) as app:
            target = make_target(url=app.url + "/hooks?from=hook")
            outcome = await deliver_once(target, event)
        return app, outcome

    app, outcome = run(scenario())
    assert outcome.delivered, outcome  # the app answers 401 when the HMAC does not match
    [received] = app.requests
    assert received.body == WEBHOOK_BODY
    assert received.header("X-Signature") == [sign(SECRET, received.body)]
    assert received.method == "PUT"
    assert received.path == "/hooks/github/push"
    assert received.query == "from=hook&delivery=7&next=%2Fa%20b"
    # Exactly the sender's end-to-end headers, in order, repeats kept, nothing aiohttp invented.
    assert received.headers == [
        ("Host", f"127.0.0.1:{app.port}"),
        ("User-Agent", "GitHub-Hookshot/5e1c"),
        ("Content-Type", "application/json; charset=utf-8"),
        ("X-Signature", sign(SECRET, WEBHOOK_BODY)),
        ("X-Tag", "first"),
        ("X-Tag", "second"),  # a repeat takes the first spelling (names are case-insensitive)
        ("X-Hook-Event-Id", "0f2c1d7e-webhook"),
        ("X-Hook-Attempt", "1"),
        ("Content-Length", str(len(WEBHOOK_BODY))),
    ]
    assert outcome.action == f"PUT {app.url}/hooks/github/push?from=hook&delivery=7&next=%2Fa%20b"


@pytest.mark.parametrize(("keep_host", "expected"), [(False, None), (True, "relay.example:8080")])
def test_http_rewrites_host_unless_keep_host(keep_host: bool, expected: str | None) -> None:
    """Host becomes the target's host:port; --keep-host sends the original one."""

    async def scenario() -> Recorder:
        async with Recorder() as app:
            await deliver_once(make_target(url=app.url, keep_host=keep_host), webhook_event())
        return app

    app = run(scenario())
    assert app.requests[0].header("Host") == [expected or f"127.0.0.1:{app.port}"]


@pytest.mark.parametrize(
    ("method", "body", "expected_headers"),
    [
        ("GET", b"", [("X-Tag", "one")]),
        ("POST", b"a=1&b=2", [("X-Tag", "one"), ("Content-Length", "7")]),
    ],
)
def test_http_replay_adds_no_headers_the_sender_did_not_send(
    method: str, body: bytes, expected_headers: list[tuple[str, str]]
) -> None:
    """No Content-Type, User-Agent, Accept(-Encoding) invented; a bodiless GET stays bodiless."""
    bare = RawRequest(method, "", "", (("X-Tag", "one"),), body)
    event = event_from_request(
        "ping", bare, detail_type="ping", event_id=EventId("e-bare"), received=datetime.now(UTC)
    )

    async def scenario() -> Recorder:
        async with Recorder() as app:
            assert (await deliver_once(make_target(url=app.url + "/hooks"), event)).delivered
        return app

    app = run(scenario())
    [received] = app.requests
    assert (received.method, received.path, received.body) == (method, "/hooks", body)
    hook_headers = [("X-Hook-Event-Id", "e-bare"), ("X-Hook-Attempt", "1")]
    assert received.headers == [
        ("Host", f"127.0.0.1:{app.port}"),
        *expected_headers[:1],
        *hook_headers,
        *expected_headers[1:],
    ]


@pytest.mark.parametrize(
    ("reply", "delivered", "retryable", "error"),
    [
        (Reply(200, b"ok"), True, False, None),
        (Reply(204, b""), True, False, None),
        (Reply(400, b"missing field: amount\nat line 3"), False, False, "missing field: amount"),
        (Reply(404, b""), False, False, "404 Not Found"),
        (Reply(408, b"slow"), False, True, "slow"),
        (Reply(429, b"rate limited"), False, True, "rate limited"),
        (
            Reply(500, b"<!DOCTYPE html><html><head><title>KeyError at /hooks</title>"),
            False,
            True,
            "KeyError at /hooks",
        ),
        (Reply(503, b"\n  down for maintenance  \n"), False, True, "down for maintenance"),
        (
            Reply(302, b"", {"Location": "/elsewhere"}),
            False,
            False,
            "redirected to /elsewhere, not followed; point --target at the final URL",
        ),
    ],
)
def test_http_classifies_statuses(
    reply: Reply, delivered: bool, retryable: bool, error: str | None
) -> None:
    """2xx delivered; 5xx/408/429 retryable; other 4xx and 3xx fail for good, saying why."""

    async def scenario() -> Outcome:
        async with Recorder() as app:
            app.default = reply
            return await deliver_once(make_target(url=app.url), order_event())

    outcome = run(scenario())
    assert (outcome.delivered, outcome.retryable, outcome.code) == (
        delivered,
        retryable,
        reply.status,
    )
    assert outcome.error == error


def test_http_retry_4xx_makes_client_errors_retryable() -> None:
    """With retry_4xx a 400 is worth another attempt."""

    async def scenario() -> Outcome:
        async with Recorder() as app:
            app.default = Reply(400, b"not yet")
            return await deliver_once(make_target(url=app.url, retry_4xx=True), order_event())

    outcome = run(scenario())
    assert (outcome.delivered, outcome.retryable, outcome.error) == (False, True, "not yet")


def test_http_refused_connection_is_retryable() -> None:
    """Nothing listening: a retryable failure that says so."""
    port = free_port()
    outcome = run(deliver_once(make_target(url=f"127.0.0.1:{port}"), order_event()))
    assert (outcome.delivered, outcome.retryable) == (False, True)
    assert outcome.error == f"connection refused: nothing is listening on 127.0.0.1:{port}"


def test_http_timeout_is_retryable() -> None:
    """No answer within the attempt's timeout: retryable."""

    async def scenario() -> Outcome:
        async with Recorder() as app:
            app.stall = True
            return await deliver_once(make_target(url=app.url), order_event(), timeout=0.2)

    outcome = run(scenario())
    assert (outcome.delivered, outcome.retryable) == (False, True)
    assert outcome.error == "no response within 0.2 s"


def test_http_probe_warns_when_nothing_listens() -> None:
    """probe() names the address nobody listens on, and is quiet once something does."""
    port = free_port()

    async def scenario() -> tuple[str | None, str | None]:
        down = await make_target(url=f"localhost:{port}").probe()
        async with Recorder() as app:
            up = await make_target(url=app.url).probe()
        return down, up

    down, up = run(scenario())
    assert down is not None and down.startswith(f"nothing is listening on localhost:{port} yet")
    assert up is None


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("3000", "http://localhost:3000/"),
        (":3000", "http://localhost:3000/"),
        (":3000/hooks", "http://localhost:3000/hooks"),
        ("localhost:3000/hooks?x=1", "http://localhost:3000/hooks?x=1"),
        ("127.0.0.1:3000", "http://127.0.0.1:3000/"),
        ("127.1.2.3:80/a", "http://127.1.2.3/a"),
        ("[::1]:3000", "http://[::1]:3000/"),
        ("api.localhost:8080", "http://api.localhost:8080/"),
        ("https://localhost:8443/x", "https://localhost:8443/x"),
        ("http://LOCALHOST:3000/", "http://localhost:3000/"),
    ],
)
def test_target_url_forms(text: str, url: str) -> None:
    """The --target spellings normalize to one URL."""
    assert make_target(url=text).description == url


@pytest.mark.parametrize(
    "text", ["example.com:3000", "http://10.0.0.5/hooks", "0.0.0.0:3000", "[fe80::1]:80"]
)
def test_remote_target_refused_without_allow_remote(text: str) -> None:
    """A non-loopback host is refused (hint: --allow-remote-target) unless allowed."""
    with pytest.raises(UsageError) as raised:
        make_target(url=text)
    assert raised.value.hint is not None and "--allow-remote-target" in raised.value.hint
    assert make_target(url=text, allow_remote=True).description.startswith("http")


@pytest.mark.parametrize(
    "text", ["localhost:abc", "ftp://localhost/x", "localhost:0", "http://:3000", "", "70000"]
)
def test_bad_target_urls_are_usage_errors(text: str) -> None:
    """Unusable --target values fail before any I/O."""
    with pytest.raises(UsageError):
        make_target(url=text)


def test_exactly_one_target_kind() -> None:
    """Zero or two of --target/--exec/--handler is a usage error; so is --watch alone."""
    with pytest.raises(UsageError):
        make_target()
    with pytest.raises(UsageError):
        make_target(url="3000", command="true")
    with pytest.raises(UsageError):
        make_target(url="3000", watch=[FIXTURES])


# ----------------------------------------------------------------------------- exec


@pytest.mark.slow
def test_exec_passes_event_on_stdin_and_hook_env(tmp_path: Path) -> None:
    """The command gets the event JSON on stdin and HOOK_* variables; exit 0 is delivered."""
    event = order_event()
    command = f"sh {shlex.quote(str(SCRIPTS / 'record.sh'))} {shlex.quote(str(tmp_path))}"
    outcome = run(deliver_once(make_target(command=command), event, attempt=2))
    assert (outcome.delivered, outcome.code, outcome.output) == (True, 0, f"recorded {event.id}\n")
    assert outcome.action == f"exec {command}"
    assert (tmp_path / "stdin.json").read_text() == event.to_json() + "\n"
    env = dict(line.split("=", 1) for line in (tmp_path / "env.txt").read_text().splitlines())
    assert len(env.pop("HOOK_EXEC_MARK")) == 32  # marks this run's processes for a timeout kill
    assert {k: v for k, v in env.items() if not k.startswith("HOOK_TEST_")} == {
        "HOOK_ATTEMPT": "2",
        "HOOK_DETAIL_TYPE": "Order Placed",
        "HOOK_EVENT_ID": event.id,
        "HOOK_SOURCE": "shop.orders",
    }


@pytest.mark.slow
def test_exec_failure_shows_the_last_stderr_line() -> None:
    """A non-zero exit fails (retryable); error is stderr's last line, detail its tail."""
    command = f"sh {shlex.quote(str(SCRIPTS / 'fail.sh'))}"
    outcome = run(deliver_once(make_target(command=command), order_event()))
    assert (outcome.delivered, outcome.retryable, outcome.code) == (False, True, 3)
    assert outcome.error == "Error: order 42 has no amount"
    assert outcome.detail == "warning: cache cold\n\nError: order 42 has no amount\n"


@pytest.mark.slow
def test_exec_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    """A hanging command is killed with everything it started, and the attempt is retryable."""
    command = f"sh {shlex.quote(str(SCRIPTS / 'hang.sh'))} {shlex.quote(str(tmp_path))}"
    outcome = run(deliver_once(make_target(command=command), order_event(), timeout=1.0))
    assert (outcome.delivered, outcome.retryable) == (False, True)
    assert outcome.error == "timed out after 1 s; killed the command and every process it started"
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    run(async_wait_until(lambda: process_gone(grandchild), what="the grandchild to be killed"))


@pytest.mark.slow
def test_exec_command_not_found_is_not_retried() -> None:
    """Exit 127 (not found) will not get better with retries."""
    outcome = run(deliver_once(make_target(command="hook-test-no-such-command"), order_event()))
    assert (outcome.delivered, outcome.retryable, outcome.code) == (False, False, 127)
    assert outcome.error is not None and "not found" in outcome.error


# ----------------------------------------------------------------------------- handler

APP = f"{HANDLERS / 'app.py'}:handler"


async def deliver_many(target: Target, *events: Event, timeout: float = UNIT) -> list[Outcome]:
    await target.start()
    try:
        return [await target.deliver(event, 1, timeout) for event in events]
    finally:
        await target.close()


@pytest.mark.slow
def test_handler_returns_value_with_lambda_context() -> None:
    """The return value comes back in detail; context looks like Lambda's."""
    event = order_event()
    [outcome] = run(deliver_many(make_target(handler=APP), event))
    assert outcome.delivered and outcome.error is None, outcome
    assert outcome.action == f"handler {HANDLERS / 'app.py'}:handler" or outcome.action.endswith(
        "app.py:handler"
    )
    value = returned(outcome)
    assert value["statusCode"] == 200
    assert value["function"] == "app:handler"
    assert value["arn"] == "arn:aws:lambda:local:000000000000:function:app:handler"
    assert value["request_id"] == event.id
    assert 0 < value["remaining_ms"] <= UNIT * 1000
    assert value["summary"] == "Order Placed from shop.orders"  # sibling import worked


@pytest.mark.slow
def test_handler_imports_are_paid_once() -> None:
    """One worker serves every event: the module-level counter keeps counting."""
    outcomes = run(deliver_many(make_target(handler=APP), *(order_event() for _ in range(3))))
    values = [returned(outcome) for outcome in outcomes]
    assert [v["calls"] for v in values] == [1, 2, 3]
    assert len({v["pid"] for v in values}) == 1


@pytest.mark.slow
def test_handler_exception_fails_with_its_traceback() -> None:
    """A raised exception fails without retry: ``Type: message`` and the traceback."""
    [outcome] = run(deliver_many(make_target(handler=APP), order_event(action="fail")))
    assert (outcome.delivered, outcome.retryable) == (False, False)
    assert outcome.error == "ValueError: order 42 has no amount"
    assert outcome.detail is not None
    assert outcome.detail.startswith("Traceback (most recent call last):")
    assert 'raise ValueError(f"order' in outcome.detail and "app.py" in outcome.detail
    assert "_worker.py" not in outcome.detail


@pytest.mark.slow
def test_handler_output_is_captured_without_corrupting_the_protocol() -> None:
    """print, raw fd writes, stderr and logging land in output; the next event still works."""
    outcomes = run(
        deliver_many(make_target(handler=APP), order_event(action="print"), order_event())
    )
    assert all(outcome.delivered for outcome in outcomes), outcomes
    output = outcomes[0].output or ""
    for text in ("printed line", "garbage", "written to fd 1", "to stderr", "logged via logging"):
        assert text in output
    assert returned(outcomes[1])["calls"] == 2


@pytest.mark.slow
def test_handler_worker_crash_is_retryable_and_the_next_event_works() -> None:
    """A worker that dies mid-event: retryable failure, a fresh worker for the next event."""
    first, crashed, after = run(
        deliver_many(
            make_target(handler=APP), order_event(), order_event(action="crash"), order_event()
        )
    )
    assert (crashed.delivered, crashed.retryable, crashed.code) == (False, True, 3)
    assert crashed.error == "the handler's worker died mid-event (exit code 3)"
    assert after.delivered
    assert returned(after)["pid"] != returned(first)["pid"]
    assert returned(after)["calls"] == 1


@pytest.mark.slow
def test_handler_timeout_restarts_the_worker() -> None:
    """A handler that overruns is killed (retryable) and the next event gets a new worker."""

    async def scenario() -> tuple[Outcome, Outcome]:
        target = make_target(handler=APP)
        await target.start()
        try:
            slow = await target.deliver(order_event(action="sleep", seconds=60), 1, 0.5)
            return slow, await target.deliver(order_event(), 1, UNIT)
        finally:
            await target.close()

    slow, after = run(scenario())
    assert (slow.delivered, slow.retryable) == (False, True)
    assert slow.error is not None and slow.error.startswith("timed out after 0.5 s")
    assert after.delivered and returned(after)["calls"] == 1


RELOADABLE = """\
import os
import time
from pathlib import Path

VERSION = {version}


def handler(event, context):
    gate = event["detail"].get("gate")
    if gate:
        Path(gate, "started").touch()
        deadline = time.monotonic() + 60
        while not Path(gate, "release").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    return {{"version": VERSION, "pid": os.getpid()}}
"""


@pytest.mark.slow
def test_handler_hot_reload_between_events_loses_nothing(tmp_path: Path) -> None:
    """Editing the file mid-event: that event finishes on the old code, the next runs the new."""
    app = tmp_path / "app.py"
    app.write_text(RELOADABLE.format(version=1))
    gate = tmp_path / "gate"
    gate.mkdir()
    notices: list[str] = []

    async def scenario() -> tuple[HandlerTarget, list[Outcome]]:
        target = make_target(
            handler=f"{app}:handler", on_notice=lambda text, level="info": notices.append(text)
        )
        assert isinstance(target, HandlerTarget)
        await target.start()
        try:
            first = await target.deliver(order_event(), 1, UNIT)
            slow = asyncio.create_task(target.deliver(order_event(gate=str(gate)), 1, UNIT * 4))
            await async_wait_until(lambda: (gate / "started").exists(), what="slow event start")
            app.write_text(RELOADABLE.format(version=2) + "\n# edited\n")
            await async_wait_until(lambda: target.reload_pending, what="the watcher to notice")
            meanwhile = asyncio.create_task(target.deliver(order_event(), 1, UNIT))
            (gate / "release").touch()
            outcomes = [first, await slow, await meanwhile]
            outcomes.append(await target.deliver(order_event(), 1, UNIT))
            return target, outcomes
        finally:
            await target.close()

    target, outcomes = run(scenario())
    assert all(outcome.delivered for outcome in outcomes), outcomes
    first, slow, meanwhile, after = (returned(outcome) for outcome in outcomes)
    assert (first["version"], slow["version"]) == (1, 1)
    assert slow["pid"] == first["pid"]  # the running event was not killed by the reload
    assert (meanwhile["version"], after["version"]) == (2, 2)
    assert target.reloads >= 1
    assert notices and all(n == "reloaded handler after change to app.py" for n in notices)


@pytest.mark.slow
def test_handler_import_error_fails_until_the_file_is_fixed(tmp_path: Path) -> None:
    """A handler that does not import: probe warns, events fail (no retry), a fix reloads it."""
    app = tmp_path / "app.py"
    app.write_text((HANDLERS / "broken.py").read_text())
    notices: list[str] = []

    async def scenario() -> tuple[str | None, Outcome, Outcome, str | None]:
        target = make_target(
            handler=str(app), on_notice=lambda text, level="info": notices.append(text)
        )
        assert isinstance(target, HandlerTarget)
        await target.start()
        try:
            warning = await target.probe()
            broken = await target.deliver(order_event(), 1, UNIT)
            app.write_text(RELOADABLE.format(version=3))
            await async_wait_until(lambda: target.reloads >= 1, what="the reload")
            fixed = await target.deliver(order_event(), 1, UNIT)
            return warning, broken, fixed, await target.probe()
        finally:
            await target.close()

    warning, broken, fixed, healthy = run(scenario())
    missing = "ModuleNotFoundError: No module named 'hook_test_no_such_module'"
    assert warning is not None and missing in warning
    assert (broken.delivered, broken.retryable) == (False, False)
    assert broken.error == f"cannot load handler: {missing}"
    assert fixed.delivered and returned(fixed)["version"] == 3
    assert healthy is None
    assert "reloaded handler after change to app.py" in notices


def test_handler_spec_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    """``app.py:fn``, ``app.py`` (fn = handler) and Lambda's ``app.fn`` name the same file."""
    monkeypatch.chdir(HANDLERS)
    app = HANDLERS / "app.py"
    assert parse_handler_spec("app.py:handler") == (app, "handler")
    assert parse_handler_spec("app.py") == (app, "handler")
    assert parse_handler_spec("app.handler") == (app, "handler")
    assert parse_handler_spec(f"{app}:describe_it") == (app, "describe_it")


@pytest.mark.parametrize("spec", ["missing.py:handler", "app.py:not-a-name", "app.py:class"])
def test_bad_handler_specs_are_usage_errors(spec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing file or a function that is not a Python name fails before anything starts."""
    monkeypatch.chdir(HANDLERS)
    with pytest.raises(UsageError):
        make_target(handler=spec)


@pytest.mark.slow
def test_example_handler_prices_an_order() -> None:
    """examples/handler.py (the README's) prices an order and rejects one without items."""
    order = Event(
        id=EventId("ex-1"),
        source="shop.orders",
        detail_type="Order Placed",
        detail={
            "orderId": "o-1001",
            "currency": "EUR",
            "items": [{"sku": "mug", "price": 12.5, "quantity": 2}, {"sku": "tee", "price": 30}],
        },
    )
    empty = Event(
        id=EventId("ex-2"),
        source="shop.orders",
        detail_type="Order Placed",
        detail={"orderId": "o-1002"},
    )
    priced, rejected = run(deliver_many(make_target(handler=f"{EXAMPLE}:handler"), order, empty))
    value = returned(priced)
    assert (value["status"], value["total"], value["shipping"]) == ("priced", "55.0", "free")
    assert "order o-1001: 2 item(s), 55.0 EUR, free shipping" in (priced.output or "")
    assert rejected.error == "InvalidOrderError: order 'o-1002' has no items"


def test_https_target_against_a_plain_http_app_says_use_http() -> None:
    """An https:// target whose app speaks plain HTTP fails with "use http://", not an SSL code."""
    event = order_event()

    async def scenario() -> tuple[Recorder, Outcome]:
        async with Recorder() as app:
            https = app.url.replace("http://", "https://") + "/hooks"
            outcome = await deliver_once(make_target(url=https), event)
        return app, outcome

    app, outcome = run(scenario())
    assert not outcome.delivered and not outcome.retryable
    assert outcome.error == f"the target speaks plain HTTP, not TLS: use {app.url}/hooks"


@pytest.fixture
def busy_interpreter() -> Iterator[None]:
    """A thread spinning on the GIL with a short switch interval: a thread woken from
    waitpid (asyncio's child watcher) then waits for the GIL, as on a loaded laptop."""
    import sys
    import threading

    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    spinners = [threading.Thread(target=spin, daemon=True) for _ in range(1)]
    for thread in spinners:
        thread.start()
    yield
    stop.set()
    for thread in spinners:
        thread.join(UNIT)
    sys.setswitchinterval(interval)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["exec", "handler"])
def test_cancelled_deliveries_leave_the_reaping_to_asyncio(
    kind: str,
    tmp_path: Path,
    busy_interpreter: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Cancelling a running command or handler (Ctrl-C) never logs "Unknown child process":
    the target waits for asyncio's child watcher before closing the process transport."""
    started = tmp_path / "started"
    if kind == "exec":
        target: Target = make_target(command=f"touch {shlex.quote(str(started))}; sleep 30")
    else:
        app = tmp_path / "slow.py"
        app.write_text(
            "import pathlib, time\n"
            "def handler(event, context):\n"
            f"    pathlib.Path({str(started)!r}).touch()\n"
            "    time.sleep(30)\n"
        )
        target = make_target(handler=f"{app}:handler")

    async def cancel_mid_run() -> None:
        await target.start()
        try:
            for _ in range(10):  # the race it guards against is a matter of scheduling
                started.unlink(missing_ok=True)
                delivery = asyncio.create_task(target.deliver(order_event(), 1, 60))
                await async_wait_until(started.exists, what="the local code to start")
                delivery.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await delivery
        finally:
            await target.close()

    with caplog.at_level("WARNING", logger="asyncio"):
        run(cancel_mid_run())
    assert not [r.getMessage() for r in caplog.records if "child process" in r.getMessage()]
