"""The relay against hostile or buggy clients: numbers out of range, a full disk, results that
lie, unanswered events, changed patterns. Real relays on loopback, real websocket clients."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from test_listen import Hook, hook, listen  # noqa: F401  (hook: the subprocess fixture)
from websockets.asyncio.client import ClientConnection, connect

from hookcli.protocol import Start
from hookcli.relay.service import RunningRelay, start_relay
from hookcli.relay.store import Store

from conftest import UNIT, LoopThread, async_wait_until, relay_settings, run

TOKEN = "protocol-safety-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def started(tmp_path: Path, **overrides: Any) -> RunningRelay:
    return await start_relay(relay_settings(tmp_path / "relay", tokens={TOKEN: ""}, **overrides))


async def opened(relay: RunningRelay) -> ClientConnection:
    """A websocket that said hello and got welcome."""
    ws = await connect(relay.ws_url, additional_headers=AUTH)
    await ws.send(json.dumps({"type": "hello", "protocol": 1}))
    assert json.loads(await ws.recv())["type"] == "welcome"
    return ws


async def send_subscribe(ws: ClientConnection, name: str = "dev", **fields: Any) -> dict[str, Any]:
    """Send subscribe (``from_`` for ``from``) and return the relay's answer."""
    body = {"type": "subscribe", "name": name, "pattern": {}, "from": "last", **fields}
    if "from_" in body:
        body["from"] = body.pop("from_")
    await ws.send(json.dumps(body))
    async with asyncio.timeout(UNIT):
        answer: dict[str, Any] = json.loads(await ws.recv())
    return answer


async def subscribe(
    relay: RunningRelay, name: str = "dev", **fields: Any
) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await opened(relay)
    answer = await send_subscribe(ws, name, **fields)
    assert answer["type"] == "subscribed", answer
    return ws, answer


async def ingest(relay: RunningRelay, channel: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{relay.url}/v1/ingest/{channel}", json=body) as r:
            return r.status, await r.json()


async def api(relay: RunningRelay, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with session.request(method, relay.url + path, **kwargs) as r:
            return r.status, await r.json(content_type=None)


async def next_of(ws: ClientConnection, kind: str = "event") -> dict[str, Any]:
    """The next message of ``kind``, skipping others (e.g. ``live``)."""
    async with asyncio.timeout(UNIT):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message["type"] == kind:
                return message


async def first_message(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(UNIT):
        message: dict[str, Any] = json.loads(await ws.recv())
    return message


def result(event: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {
        "type": "result",
        "seq": event["seq"],
        "id": event["event"]["id"],
        "status": "delivered",
        "attempt": 1,
        "latency_ms": 1.5,
        "code": 200,
    }
    body.update(overrides)
    return body


async def healthy(relay: RunningRelay) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{relay.url}/v1/health") as r:
            body: dict[str, Any] = await r.json()
            assert (r.status == 200) == body["ok"]
            return body


def fill_disk(store: Store) -> None:
    """Make SQLite itself refuse to grow the file (SQLITE_FULL), as a full disk does."""
    db = store._conn
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


def free_disk(store: Store) -> None:
    store._conn.execute("PRAGMA max_page_count = 1073741823")


# ------------------------------------------------------------------ numbers from the wire


@pytest.mark.parametrize(
    ("overrides", "names_seq"),
    [
        ({"code": 2**63}, True),
        ({"code": -(2**31) - 1}, True),
        ({"attempt": 1e30}, True),
        ({"attempt": 2**63}, True),
        ({"latency_ms": 1e30}, True),
        ({"seq": 2**63}, False),
        ({"seq": 1e30}, False),
    ],
    ids=[
        "code-2^63",
        "code-below-int32",
        "attempt-1e30",
        "attempt-2^63",
        "latency-1e30",
        "seq-2^63",
        "seq-1e30",
    ],
)
def test_out_of_range_result_is_refused_and_later_results_are_recorded(
    tmp_path: Path, overrides: dict[str, Any], names_seq: bool
) -> None:
    """A result with a number out of range gets bad-message; the flusher lives and records on."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            ws, _ = await subscribe(relay, "numbers", from_="now")
            await ingest(relay, "c", {"n": 1})
            event = await next_of(ws)
            await ws.send(json.dumps(result(event, **overrides)))
            error = await next_of(ws, "error")
            assert error["code"] == "bad-message" and error["hint"] and not error["fatal"]
            assert error.get("seq") == (event["seq"] if names_seq else None)
            await ws.send(json.dumps(result(event)))
            store = relay.relay.store
            await async_wait_until(
                lambda: (
                    (known := store.listener("numbers")) is not None
                    and known.cursor == event["seq"]
                ),
                what="the cursor to move past the answered event",
            )
            [delivery] = store.deliveries(event["event"]["id"])
            assert (delivery.code, delivery.attempt) == (200, 1)
            assert (await healthy(relay))["ok"] is True
            await ws.close()
        finally:
            await relay.stop()

    run(main())


@pytest.mark.parametrize(
    "start",
    [2**63, 10**30, "99999999999999999999", 1e30, -1],
    ids=["2^63", "10^30", "digits", "float", "negative"],
)
def test_subscribe_from_out_of_range_is_bad_message_and_the_connection_serves_on(
    tmp_path: Path, start: Any
) -> None:
    """``from`` past 2^63-1 (or a float) is a bad-message; the same socket can subscribe again."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            ws = await opened(relay)
            error = await send_subscribe(ws, "far", from_=start)
            assert error["type"] == "error" and error["code"] == "bad-message", error
            assert "'from'" in error["message"] and error["hint"]
            assert (await send_subscribe(ws, "far", from_="now"))["type"] == "subscribed"
            await ws.close()
        finally:
            await relay.stop()

    run(main())


@pytest.mark.parametrize("mode", ["tail", "listen"])
def test_from_past_the_head_is_answered_clearly(tmp_path: Path, mode: str) -> None:
    """A subscription from a seq the store has not reached is refused (start-past-head), not
    left waiting forever."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            await ingest(relay, "c", {"n": 1})
            ws = await opened(relay)
            error = await send_subscribe(ws, "ahead", from_=2**63 - 1, mode=mode)
            assert error["type"] == "error" and error["code"] == "start-past-head", error
            assert "newest event (1)" in error["message"] and error["hint"]
            answer = await send_subscribe(ws, "ahead", from_=2, mode=mode)
            assert answer["type"] == "subscribed" and answer["start"] == 1
            await ws.close()
        finally:
            await relay.stop()

    run(main())


@pytest.mark.parametrize(
    "query",
    [
        {"before": "99999999999999999999"},
        {"after": "9223372036854775808"},
        {"after": "-1"},
        {"limit": "1e3"},
        {"limit": "²"},
        {"since": "nan"},
        {"since": "1e400"},
        {"until": "-inf"},
        {"since": "not a time"},
        {"status": "sideways"},
        # Deep enough for json's recursion limit, short enough for aiohttp's 8 KiB request line.
        {"pattern": "[" * 2000},
        {"pattern": '{"detail":' + "[" * 1200 + "]" * 1200 + "}"},
    ],
    ids=lambda q: "-".join(f"{k}={v[:12]}" for k, v in q.items()),
)
def test_history_query_out_of_range_is_400_with_a_hint(
    tmp_path: Path, query: dict[str, str]
) -> None:
    """Bad query values are a 400 ``{"error", "hint"}``, never a 500 with a traceback."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            status, body = await api(relay, "GET", "/v1/events", params=query)
            assert status == 400, body
            assert body["error"] and body["hint"]
        finally:
            await relay.stop()

    run(main())


@pytest.mark.parametrize(
    "body",
    [
        '{"listener": "x", "status": "delivered", "detail": ' + "[" * 100_000 + "]" * 100_000 + "}",
        json.dumps({"listener": "x", "status": "delivered", "code": 2**63}),
        json.dumps({"listener": "x", "status": "delivered", "attempt": 1e30}),
        json.dumps({"listener": "x" * 201, "status": "delivered"}),
    ],
    ids=["deeply-nested", "code-2^63", "attempt-1e30", "long-listener"],
)
def test_recording_a_bad_replay_result_is_400(tmp_path: Path, body: str) -> None:
    """``POST /v1/events/<id>/results`` refuses a deep or out-of-range body with 400 + hint."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            _, created = await ingest(relay, "c", {"n": 1})
            status, answer = await api(
                relay,
                "POST",
                f"/v1/events/{created['id']}/results",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            assert status == 400, answer
            assert answer["error"].startswith("bad result") and answer["hint"]
            assert relay.relay.store.deliveries(created["id"]) == []
        finally:
            await relay.stop()

    run(main())


# ------------------------------------------------------------------ a full disk


async def answered_batch(relay: RunningRelay, name: str, count: int) -> ClientConnection:
    """Subscribe ``name`` to channel a, ingest ``count`` events and answer them all while the
    store refuses to grow; returns once /v1/health says the results cannot be recorded."""
    ws, _ = await subscribe(relay, name, from_="now", pattern={"source": ["webhook.a"]})
    for n in range(count):
        await ingest(relay, "a", {"n": n})
    events = [await next_of(ws) for _ in range(count)]
    fill_disk(relay.relay.store)
    await ws.send(json.dumps({"type": "results", "items": [result(e) for e in events]}))
    health: dict[str, Any] = {}

    async def poll() -> None:
        nonlocal health
        health = await healthy(relay)

    for _ in range(int(UNIT * 20)):
        await poll()
        if not health["ok"]:
            break
        await asyncio.sleep(0.05)
    assert health["ok"] is False and "cannot record results" in health["reason"], health
    return ws


def test_results_answered_while_the_disk_is_full_are_written_when_space_returns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Disk full: results are kept, health says why, ingest is 503; space back: all written."""

    async def main() -> None:
        relay = await started(tmp_path)
        store = relay.relay.store
        try:
            ws = await answered_batch(relay, "full", 100)
            # The last page may still hold a webhook or two: ingest until the store says full.
            for n in range(500):
                status, body = await ingest(relay, "fill", {"n": n})
                if status != 202:
                    break
            assert status == 503 and body["hint"]

            # Retried (every second) and still logged once: wait for a few failed tries.
            def tries(health: dict[str, Any]) -> int:
                found = re.search(r"(\d+) tries failed", health.get("reason", ""))
                return int(found.group(1)) if found else 0

            for _ in range(int(UNIT * 20)):
                health = await healthy(relay)
                if tries(health) >= 3:
                    break
                await asyncio.sleep(0.05)
            assert tries(health) >= 3, health
            free_disk(store)

            def written() -> bool:
                return store.stats()["deliveries"] == 100

            await async_wait_until(written, UNIT * 2, "the kept results to be written")
            assert (await healthy(relay))["ok"] is True
            assert store.listener("full").cursor == store.head()  # type: ignore[union-attr]
            status, _ = await ingest(relay, "a", {"n": "after"})
            assert status == 202
            assert (await next_of(ws))["event"]["detail"] == {"n": "after"}
            await ws.close()
        finally:
            await relay.stop()

    with caplog.at_level(logging.WARNING, logger="hook.relay"):
        run(main())
    outage = [r for r in caplog.records if "cannot record results" in r.getMessage()]
    assert len(outage) == 1 and outage[0].exc_info is None  # once per outage, no traceback


def test_reconnect_during_a_full_disk_redelivers_nothing_answered(tmp_path: Path) -> None:
    """Answered while the disk is full, then reconnected: nothing is sent again, the cursor
    holds, and the results are written once space returns."""

    async def main() -> None:
        relay = await started(tmp_path)
        store = relay.relay.store
        try:
            ws = await answered_batch(relay, "sleepy", 60)
            await ws.close()
            ws2, subscribed = await subscribe(
                relay, "sleepy", from_="last", pattern={"source": ["webhook.a"]}
            )
            assert subscribed["resumed"] is True
            assert subscribed["start"] == store.head()
            assert (await first_message(ws2))["type"] == "live"  # no event came first
            free_disk(store)
            await async_wait_until(
                lambda: store.stats()["deliveries"] == 60, UNIT * 2, "the kept results"
            )
            assert store.listener("sleepy").cursor == store.head()  # type: ignore[union-attr]
            assert (await healthy(relay))["ok"] is True
            await ws2.close()
        finally:
            await relay.stop()

    run(main())


# ------------------------------------------------------------------ results that lie


def test_result_with_the_wrong_id_is_refused_and_the_event_stays_in_flight(tmp_path: Path) -> None:
    """A result whose id is not the event's at that seq gets id-mismatch and is not recorded."""

    async def main() -> None:
        relay = await started(tmp_path)
        store = relay.relay.store
        try:
            ws, _ = await subscribe(relay, "ids", from_="now")
            await ingest(relay, "c", {"n": 1})
            await ingest(relay, "c", {"n": 2})
            first, second = await next_of(ws), await next_of(ws)
            await ws.send(json.dumps(result(first, id=second["event"]["id"])))
            error = await next_of(ws, "error")
            assert error["code"] == "id-mismatch" and error["seq"] == first["seq"]
            assert error["hint"] and not error["fatal"]
            await ws.send(json.dumps(result(first)))  # still in flight: the true answer counts
            await async_wait_until(
                lambda: store.listener("ids").cursor == first["seq"],  # type: ignore[union-attr]
                what="the cursor to pass the first event",
            )
            assert len(store.deliveries(first["event"]["id"])) == 1
            assert store.deliveries(second["event"]["id"]) == []
            await ws.close()
        finally:
            await relay.stop()

    run(main())


def test_results_batch_is_answered_item_by_item(tmp_path: Path) -> None:
    """Valid items of a batch are recorded; each bad one gets its own error naming it."""

    async def main() -> None:
        relay = await started(tmp_path)
        store = relay.relay.store
        try:
            ws, _ = await subscribe(relay, "batch", from_="now")
            for n in range(3):
                await ingest(relay, "c", {"n": n})
            a, b, c = [await next_of(ws) for _ in range(3)]
            items = [
                result(a),
                {**result(b), "status": "maybe"},
                7,
                {**result(c), "id": a["event"]["id"]},
            ]
            await ws.send(json.dumps({"type": "results", "items": items}))
            errors = [await next_of(ws, "error") for _ in range(3)]
            got = {(e["code"], e.get("seq"), e.get("index")) for e in errors}
            assert got == {
                ("bad-message", b["seq"], 1),
                ("bad-message", None, 2),
                ("id-mismatch", c["seq"], None),
            }
            assert all(e["hint"] for e in errors)
            await async_wait_until(
                lambda: len(store.deliveries(a["event"]["id"])) == 1, what="a recorded"
            )
            await ws.send(json.dumps({"type": "results", "items": [result(b), result(c)]}))
            await async_wait_until(
                lambda: store.listener("batch").cursor == c["seq"],  # type: ignore[union-attr]
                what="the cursor to pass every answered event",
            )
            await ws.close()
        finally:
            await relay.stop()

    run(main())


# ------------------------------------------------------------------ ack wait and redelivery


def test_unanswered_event_is_redelivered_after_ack_wait_with_its_delivery_count(
    tmp_path: Path,
) -> None:
    """Left unanswered past ack_wait, the same frame comes again with ``delivery: 2``."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            ws, _ = await subscribe(relay, "slow", from_="now", ack_wait=1.0)
            await ingest(relay, "c", {"n": 1})
            first_raw = await next_raw(ws)
            again_raw = await next_raw(ws)
            first, again = json.loads(first_raw), json.loads(again_raw)
            assert (first["delivery"], again["delivery"]) == (1, 2)
            # Byte for byte the same frame apart from the count (the fast path's exact bytes).
            assert again_raw.replace('"delivery":2', '"delivery":1', 1) == first_raw
            await ws.send(json.dumps(result(again)))
            await ingest(relay, "c", {"n": 2})
            following = await next_of(ws)
            assert following["event"]["detail"] == {"n": 2} and following["delivery"] == 1
            await ws.close()
        finally:
            await relay.stop()

    run(main())


async def next_raw(ws: ClientConnection) -> str:
    """The next ``event`` frame's text, as sent."""
    async with asyncio.timeout(UNIT):
        while True:
            text = await ws.recv()
            assert isinstance(text, str)
            if text.startswith('{"type":"event"'):
                return text


def test_delivery_count_carries_over_a_reconnect(tmp_path: Path) -> None:
    """An event sent, left unanswered and sent again on the next connection is delivery 2."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            ws, _ = await subscribe(relay, "again", from_="now")
            await ingest(relay, "c", {"n": 1})
            assert (await next_of(ws))["delivery"] == 1
            await ws.close()
            ws2, _ = await subscribe(relay, "again", from_="last")
            assert (await next_of(ws2))["delivery"] == 2
            await ws2.close()
        finally:
            await relay.stop()

    run(main())


# ------------------------------------------------------------------ changed patterns


def test_changed_pattern_is_refused_with_both_patterns(tmp_path: Path) -> None:
    """Resubscribing a name with another pattern is pattern-changed, not a silent cursor jump."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            ws, _ = await subscribe(relay, "pc", from_="now", pattern={"source": ["webhook.a"]})
            await ws.close()
            ws2 = await opened(relay)
            error = await send_subscribe(ws2, "pc", pattern={"source": ["webhook.b"]})
            assert error["type"] == "error" and error["code"] == "pattern-changed", error
            assert error["old_pattern"] == {"source": ["webhook.a"]}
            assert error["new_pattern"] == {"source": ["webhook.b"]}
            assert "pattern_change" in error["hint"] and not error["fatal"]
            same = await send_subscribe(ws2, "pc", pattern={"source": ["webhook.a"]})
            assert same["type"] == "subscribed" and same["resumed"] is True
            await ws2.close()
        finally:
            await relay.stop()

    run(main())


@pytest.mark.parametrize(("change", "gets_backlog"), [("keep-cursor", True), ("restart", False)])
def test_pattern_change_when_asked_for(tmp_path: Path, change: str, gets_backlog: bool) -> None:
    """keep-cursor resumes from the cursor with the new pattern; restart starts from now."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            ws, _ = await subscribe(relay, "pc", from_="now", pattern={"source": ["webhook.a"]})
            await ws.close()
            await ingest(relay, "b", {"n": "missed"})
            ws2, subscribed = await subscribe(
                relay, "pc", pattern={"source": ["webhook.b"]}, pattern_change=change
            )
            assert subscribed["resumed"] is gets_backlog
            message = await first_message(ws2)
            if gets_backlog:
                assert message["type"] == "event" and message["event"]["detail"] == {"n": "missed"}
            else:
                assert message["type"] == "live" and subscribed["start"] == 1
            await ws2.close()
            known = relay.relay.store.listener("pc")
            assert known is not None and known.pattern == {"source": ["webhook.b"]}
        finally:
            await relay.stop()

    run(main())


def test_hook_listen_refuses_a_changed_pattern_and_says_how_to_go_on(
    tmp_path: Path,
    loop_thread: LoopThread,
    hook: Callable[..., Hook],  # noqa: F811
) -> None:
    """``hook listen`` with another pattern for a known name exits 2 with the way forward;
    ``--pattern-change keep-cursor`` resumes."""
    running = loop_thread.run(start_relay(relay_settings(tmp_path / "relay", tokens={TOKEN: ""})))
    try:
        args = ["--token", TOKEN, "--exec", "true"]
        first = hook(*listen(running.url, "cli-pc", "--source", "webhook.a", *args))
        first.wait_ready()
        first.close()
        changed = hook(*listen(running.url, "cli-pc", "--source", "webhook.b", *args))
        assert changed.wait_exit() == 2, changed.describe()
        assert "webhook.a" in changed.stderr and "webhook.b" in changed.stderr
        assert "--pattern-change keep-cursor" in changed.stderr
        assert changed.of("ready") == []
        kept = hook(
            *listen(
                running.url,
                "cli-pc",
                "--source",
                "webhook.b",
                "--pattern-change",
                "keep-cursor",
                *args,
            )
        )
        assert kept.wait_ready()["resumed"] is True
        kept.close()
    finally:
        loop_thread.run(running.stop())


def test_hook_listen_answers_a_redelivery_of_an_event_it_is_still_delivering_once(
    tmp_path: Path,
) -> None:
    """The relay sends a slow event again (short ack_wait); the listener delivers it once and
    answers once."""
    from aiohttp import web

    from hookcli.config import Connection
    from hookcli.delivery import RetryPolicy
    from hookcli.listen import ListenSettings, TargetSpec
    from hookcli.listen import listen as run_listen
    from hookcli.updates import Delivered, Notice, Update

    async def main() -> None:
        relay = await started(tmp_path)
        release = asyncio.Event()
        requests: list[bytes] = []

        async def slow(request: web.Request) -> web.Response:
            requests.append(await request.read())
            await release.wait()
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/{tail:.*}", slow)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        updates: list[Update] = []
        settings = ListenSettings(
            connection=Connection(relay=relay.url, token=TOKEN, configured=True),
            name="patient",
            pattern={},
            target=TargetSpec(url=f"http://127.0.0.1:{port}/hooks"),
            start=Start.parse("now"),
            policy=RetryPolicy(retries=0, timeout=UNIT * 4),
            ack_wait=0.2,
        )
        listener = asyncio.create_task(run_listen(settings, updates.append))
        store = relay.relay.store
        try:
            await async_wait_until(lambda: store.listener("patient") is not None, what="subscribed")
            _, created = await ingest(relay, "c", {"n": 1})
            await async_wait_until(lambda: len(requests) == 1, what="the delivery to start")
            await async_wait_until(
                lambda: any(
                    isinstance(u, Notice) and "sent again (delivery" in u.message for u in updates
                ),
                what="a redelivery while the target is still working",
            )
            release.set()
            await async_wait_until(
                lambda: store.listener("patient").cursor == created["seq"],  # type: ignore[union-attr]
                what="the answer to be recorded",
            )
            # A later event passes through the same worker queue: any second copy came first.
            _, later = await ingest(relay, "c", {"n": 2})
            await async_wait_until(
                lambda: any(isinstance(u, Delivered) and u.seq == later["seq"] for u in updates),
                what="the later event to be delivered",
            )
            assert len(requests) == 2
            assert [u.seq for u in updates if isinstance(u, Delivered)] == [
                created["seq"],
                later["seq"],
            ]
            assert len(store.deliveries(created["id"])) == 1
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            await runner.cleanup()
            await relay.stop()

    run(main())


def test_a_replaced_connection_is_told_which_listener_took_it_over(tmp_path: Path) -> None:
    """The fatal already-subscribed error names the listener, so its terminal says who."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            old, _ = await subscribe(relay, "alice@laptop:3000")
            new, _ = await subscribe(relay, "alice@laptop:3000")
            error = await next_of(old, "error")
            assert (error["code"], error["fatal"]) == ("already-subscribed", True)
            assert "'alice@laptop:3000'" in error["message"]
            await new.close()
        finally:
            await relay.stop()

    run(main())
