"""The relay on loopback: ingest -> store -> websocket stream, cursors, auth, bad input."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from hookcli.relay.server import IngestSettings
from hookcli.relay.service import RunningRelay, start_relay

from conftest import UNIT, auth_headers, relay_settings, run


async def ingest(
    relay: RunningRelay, channel: str, body: bytes | dict[str, Any], **headers: str
) -> aiohttp.ClientResponse:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{relay.url}/v1/ingest/{channel}", data=data, headers=headers
        ) as r:
            await r.read()
            return r


async def subscribe(
    relay: RunningRelay,
    name: str = "dev",
    pattern: dict[str, Any] | None = None,
    start: Any = "last",
    mode: str = "listen",
    window: int = 100,
    token: str | None = None,
) -> tuple[ClientConnection, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else auth_headers()
    ws = await connect(relay.ws_url, additional_headers=headers)
    await ws.send(json.dumps({"type": "hello", "protocol": 1}))
    welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome"
    await ws.send(
        json.dumps(
            {
                "type": "subscribe",
                "name": name,
                "pattern": pattern or {},
                "from": start,
                "mode": mode,
                "window": window,
            }
        )
    )
    subscribed = json.loads(await ws.recv())
    assert subscribed["type"] == "subscribed", subscribed
    return ws, subscribed


async def next_of(
    ws: ClientConnection, kind: str = "event", timeout: float = UNIT
) -> dict[str, Any]:
    """The next message of ``kind``, skipping others (e.g. ``live``)."""
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message


async def answer(ws: ClientConnection, message: dict[str, Any], status: str = "delivered") -> None:
    await ws.send(
        json.dumps(
            {
                "type": "result",
                "seq": message["seq"],
                "id": message["event"]["id"],
                "status": status,
                "attempt": 1,
                "latency_ms": 1.5,
                "code": 200,
            }
        )
    )


async def started(tmp_path: Path, **overrides: Any) -> RunningRelay:
    return await start_relay(relay_settings(tmp_path / "relay", **overrides))


def test_ingest_reaches_a_listener_with_raw_request(tmp_path: Path) -> None:
    """A webhook's JSON becomes detail and its exact bytes, path and query travel with it."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            ws, _ = await subscribe(relay, start="now")
            body = b'{ "type" : "charge.succeeded",  "amount":12 }'
            async with aiohttp.ClientSession() as s:
                async with s.post(
                    f"{relay.url}/v1/ingest/stripe/hooks?x=1",
                    data=body,
                    headers={"Stripe-Signature": "t=1,v1=abc", "X-Hook-Detail-Type": "charge"},
                ) as r:
                    assert r.status == 202
                    accepted = await r.json()
            message = await next_of(ws)
            assert message["event"]["id"] == accepted["id"]
            assert message["event"]["source"] == "webhook.stripe"
            assert message["event"]["detail-type"] == "charge"
            assert message["event"]["detail"] == {"type": "charge.succeeded", "amount": 12}
            request = message["request"]
            assert base64.b64decode(request["body_b64"]) == body
            assert (request["path"], request["query"]) == ("/hooks", "x=1")
            assert ["Stripe-Signature", "t=1,v1=abc"] in request["headers"]
            await ws.close()
        finally:
            await relay.stop()

    run(main())


def test_ingest_names_a_github_webhook_by_its_event(tmp_path: Path) -> None:
    """A GitHub push gets detail-type ``push`` (X-GitHub-Event), so a ``push`` pattern gets it."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            ws, _ = await subscribe(relay, pattern={"detail-type": ["push"]}, start="now")
            async with aiohttp.ClientSession() as s:
                for event in ("ping", "push"):
                    async with s.post(
                        f"{relay.url}/v1/ingest/github",
                        data=b'{"ref": "refs/heads/main"}',
                        headers={"X-GitHub-Event": event, "Content-Type": "application/json"},
                    ) as r:
                        assert r.status == 202
                        pushed = await r.json()
            message = await next_of(ws)
            assert message["event"]["id"] == pushed["id"]
            assert message["event"]["detail-type"] == "push"
            await ws.close()
        finally:
            await relay.stop()

    run(main())


def test_resume_last_gets_exactly_the_unanswered(tmp_path: Path) -> None:
    """After a disconnect, `last` resends what was not answered and nothing that was."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            ws, _ = await subscribe(relay, name="alice", start="now")
            for n in range(6):
                await ingest(relay, "c", {"n": n})
            got = [await next_of(ws) for _ in range(6)]
            for message in got[:3]:
                await answer(ws, message)
            await asyncio.sleep(0)  # let the relay read the answers before we drop the socket
            await ws.close()
            for n in range(6, 8):
                await ingest(relay, "c", {"n": n})
            ws2, subscribed = await subscribe(relay, name="alice", start="last")
            assert subscribed["resumed"] is True
            again = [await next_of(ws2) for _ in range(5)]
            assert [m["event"]["detail"]["n"] for m in again] == [3, 4, 5, 6, 7]
            await ws2.close()
        finally:
            await relay.stop()

    run(main())


def test_answered_events_after_the_cursor_are_not_resent(tmp_path: Path) -> None:
    """Out-of-order answers (concurrency) are remembered: resume skips them."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            ws, _ = await subscribe(relay, name="bob", start="now")
            for n in range(3):
                await ingest(relay, "c", {"n": n})
            got = [await next_of(ws) for _ in range(3)]
            await answer(ws, got[2])  # the newest first: the cursor cannot pass event 0
            await answer(ws, got[1])
            await asyncio.sleep(0.2)
            await ws.close()
            ws2, _ = await subscribe(relay, name="bob", start="last")
            first = await next_of(ws2)
            assert first["event"]["detail"] == {"n": 0}
            await ingest(relay, "c", {"n": 3})
            second = await next_of(ws2)
            assert second["event"]["detail"] == {"n": 3}
            await ws2.close()
        finally:
            await relay.stop()

    run(main())


def test_two_listeners_get_exactly_their_events(tmp_path: Path) -> None:
    """Each listener's pattern selects its own events; none steals another's."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            a, _ = await subscribe(relay, name="a", pattern={"source": ["webhook.a"]}, start="now")
            b, _ = await subscribe(
                relay, name="b", pattern={"detail": {"k": [{"numeric": [">", 5]}]}}, start="now"
            )
            for channel, k in [("a", 1), ("b", 9), ("a", 7), ("b", 2)]:
                await ingest(relay, channel, {"k": k})
            got_a = [(await next_of(a))["event"]["detail"]["k"] for _ in range(2)]
            got_b = [(await next_of(b))["event"]["detail"]["k"] for _ in range(2)]
            assert got_a == [1, 7]
            assert got_b == [9, 7]
            await a.close()
            await b.close()
        finally:
            await relay.stop()

    run(main())


def test_stalled_listener_does_not_slow_another(tmp_path: Path) -> None:
    """A listener that never answers fills its window; another keeps receiving everything."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            stalled, _ = await subscribe(relay, name="stalled", start="now", window=2)
            fast, _ = await subscribe(relay, name="fast", start="now")
            for n in range(50):
                await ingest(relay, "c", {"n": n})
            got = []
            for _ in range(50):
                message = await next_of(fast)
                got.append(message["event"]["detail"]["n"])
                await answer(fast, message)
            assert got == list(range(50))
            # The stalled one received its window's worth and nothing more.
            first = [await next_of(stalled) for _ in range(2)]
            assert [m["event"]["detail"]["n"] for m in first] == [0, 1]
            with pytest.raises(TimeoutError):
                await next_of(stalled, timeout=0.3)
            await answer(stalled, first[0])
            assert (await next_of(stalled))["event"]["detail"] == {"n": 2}
            await stalled.close()
            await fast.close()
        finally:
            await relay.stop()

    run(main())


def test_tail_moves_no_cursor(tmp_path: Path) -> None:
    """A tail sees events without answering; the listener's cursor is untouched."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            ws, _ = await subscribe(relay, name="carol", start="now")
            await ws.close()
            tail, _ = await subscribe(relay, mode="tail", start="now")
            await ingest(relay, "c", {"n": 1})
            assert (await next_of(tail))["event"]["detail"] == {"n": 1}
            await tail.close()
            ws2, subscribed = await subscribe(relay, name="carol", start="last")
            assert (await next_of(ws2))["event"]["detail"] == {"n": 1}
            await ws2.close()
        finally:
            await relay.stop()

    run(main())


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad-message"),
        ("[1,2]", "bad-message"),
        ('{"type":"subscribe","name":"","pattern":{}}', "bad-message"),
        ('{"type":"subscribe","name":"x","pattern":{"source":"s"}}', "invalid-pattern"),
        ('{"type":"result","seq":1,"id":"x","status":"delivered"}', "not-subscribed"),
        ('{"type":"welcome","relay":"r","version":"v","mode":"m","protocol":1}', "bad-message"),
    ],
)
def test_malformed_messages_get_an_error_and_the_relay_serves_on(
    tmp_path: Path, frame: str, code: str
) -> None:
    """Bad frames get a clear error; the connection and other listeners carry on."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            other, _ = await subscribe(relay, name="other", start="now")
            ws = await connect(relay.ws_url, additional_headers=auth_headers())
            await ws.send(frame)
            error = await next_of(ws, "error")
            assert error["code"] == code
            assert error["fatal"] is False
            assert error["message"]
            if code == "invalid-pattern":
                assert error["message"].startswith("Event pattern is not valid. Reason:")
            await ws.send('{"type":"whatever-new","x":1}')  # unknown types are ignored
            await ws.send('{"type":"hello","protocol":1}')
            assert (await next_of(ws, "welcome"))["protocol"] == 1
            await ingest(relay, "c", {"ok": True})
            assert (await next_of(other))["event"]["detail"] == {"ok": True}
            await ws.close()
            await other.close()
        finally:
            await relay.stop()

    run(main())


def test_tokens_required_when_configured(tmp_path: Path) -> None:
    """Without the right bearer token the stream and history refuse; health stays open."""

    async def main() -> None:
        relay = await started(tmp_path, tokens={"s3cret-token-value-123": ""})
        try:
            with pytest.raises(InvalidStatus) as refused:
                await connect(relay.ws_url)
            assert refused.value.response.status_code == 401
            with pytest.raises(InvalidStatus):
                await connect(relay.ws_url, additional_headers={"Authorization": "Bearer nope"})
            ws, _ = await subscribe(relay, start="now", token="s3cret-token-value-123")
            await ws.close()
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{relay.url}/v1/events") as r:
                    assert r.status == 401
                    assert "token" in (await r.json())["error"]
                async with s.get(f"{relay.url}/v1/health") as r:
                    assert r.status == 200
        finally:
            await relay.stop()

    run(main())


def test_refuses_public_bind_without_token(tmp_path: Path) -> None:
    """An open relay on a non-loopback address is refused before binding."""
    from hookcli.errors import ConfigError

    with pytest.raises(ConfigError, match="without a token"):
        run(started(tmp_path, host="0.0.0.0"))


def test_ingest_body_cap_and_signature(tmp_path: Path) -> None:
    """Over the cap is 413 naming the cap; a bad HMAC is 401; a good one is accepted."""

    async def main() -> None:
        relay = await started(
            tmp_path, ingest=IngestSettings(max_body=1000, secrets={"gh": "topsecret"})
        )
        try:
            big = await ingest(relay, "open", b"x" * 1001)
            assert big.status == 413
            body = b'{"action":"opened"}'
            bad = await ingest(relay, "gh", body, **{"X-Hook-Signature": "sha256=00"})
            assert bad.status == 401
            good_sig = "sha256=" + hmac.new(b"topsecret", body, hashlib.sha256).hexdigest()
            good = await ingest(relay, "gh", body, **{"X-Hook-Signature": good_sig})
            assert good.status == 202
            open_channel = await ingest(relay, "open", b"plain text, not json")
            assert open_channel.status == 202
            assert relay.relay.store.head() == 2
        finally:
            await relay.stop()

    run(main())


@pytest.mark.parametrize(
    ("channel", "status"),
    [
        ("stripe.live_1-a", 202),
        ("caf%C3%A9", 202),  # letters are any script's, as str.isalnum says
        ("a" * 64, 202),
        ("a" * 65, 400),
        ("bad!", 400),
    ],
    ids=["punctuation", "unicode-letters", "64-long", "65-long", "bang"],
)
def test_ingest_channel_names_get_the_same_verdict_every_time(
    tmp_path: Path, channel: str, status: int
) -> None:
    """A channel name is accepted or refused with a hint, the same on every request (cached)."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            answers = [await ingest(relay, channel, {"n": n}) for n in range(3)]
            assert [r.status for r in answers] == [status] * 3
            assert relay.relay.store.head() == (3 if status == 202 else 0)
        finally:
            await relay.stop()

    run(main())


def test_history_and_one_event(tmp_path: Path) -> None:
    """GET /v1/events filters by pattern and status; /v1/events/<id> shows deliveries."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            ws, _ = await subscribe(relay, name="dave", start="now")
            await ingest(relay, "a", {"n": 1})
            await ingest(relay, "b", {"n": 2})
            m1 = await next_of(ws)
            m2 = await next_of(ws)
            await answer(ws, m1)
            await answer(ws, m2, status="failed")
            await ws.close()
            async with aiohttp.ClientSession(headers=auth_headers()) as s:
                pattern = json.dumps({"source": ["webhook.b"]})
                async with s.get(f"{relay.url}/v1/events", params={"pattern": pattern}) as r:
                    rows = (await r.json())["events"]
                assert [row["event"]["detail"] for row in rows] == [{"n": 2}]
                params = {"status": "failed", "listener": "dave"}
                async with s.get(f"{relay.url}/v1/events", params=params) as r:
                    rows = (await r.json())["events"]
                assert [row["event"]["id"] for row in rows] == [m2["event"]["id"]]
                async with s.get(f"{relay.url}/v1/events/{m1['event']['id']}") as r:
                    one = await r.json()
                assert one["deliveries"][0]["status"] == "delivered"
                assert one["deliveries"][0]["listener"] == "dave"
                async with s.get(f"{relay.url}/v1/events/nope") as r:
                    assert r.status == 404
                    assert "no event" in (await r.json())["error"]
        finally:
            await relay.stop()

    run(main())


def test_token_scopes_listener_names(tmp_path: Path) -> None:
    """With a tokens file, cursors and history live under the token's name; teams don't mix."""

    async def main() -> None:
        tokens = {"team-a-token-0123456789": "team-a", "team-b-token-0123456789": "team-b"}
        relay = await started(tmp_path, tokens=tokens)
        try:
            a, _ = await subscribe(relay, name="dev", start="now", token="team-a-token-0123456789")
            await ingest(relay, "c", {"n": 1})
            message = await next_of(a)
            await answer(a, message, status="failed")
            await asyncio.sleep(0.2)  # the relay flushes results every 50 ms
            await a.close()
            # Team b's listener of the same name is another listener: it starts fresh.
            b, subscribed = await subscribe(
                relay, name="dev", start="last", token="team-b-token-0123456789"
            )
            assert subscribed["resumed"] is False
            await b.close()
            event_id = message["event"]["id"]
            for token, found in [("team-a-token-0123456789", 1), ("team-b-token-0123456789", 0)]:
                headers = {"Authorization": f"Bearer {token}"}
                async with aiohttp.ClientSession(headers=headers) as s:
                    params = {"status": "failed", "listener": "dev"}
                    async with s.get(f"{relay.url}/v1/events", params=params) as r:
                        assert len((await r.json())["events"]) == found
            headers = {"Authorization": "Bearer team-a-token-0123456789"}
            async with aiohttp.ClientSession(headers=headers) as s:
                body = {"listener": "team-a/dev", "status": "delivered", "attempt": 1}
                async with s.post(f"{relay.url}/v1/events/{event_id}/results", json=body) as r:
                    assert r.status == 200
                async with s.get(f"{relay.url}/v1/events/{event_id}") as r:
                    listeners = {d["listener"] for d in (await r.json())["deliveries"]}
            assert listeners == {"team-a/dev"}
        finally:
            await relay.stop()

    run(main())


def test_results_batch_moves_the_cursor(tmp_path: Path) -> None:
    """Answers sent together in one results message count like single ones."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            ws, _ = await subscribe(relay, name="batch", start="now")
            for n in range(3):
                await ingest(relay, "c", {"n": n})
            got = [await next_of(ws) for _ in range(3)]
            items = [
                {"seq": m["seq"], "id": m["event"]["id"], "status": "delivered"} for m in got[:2]
            ]
            await ws.send(json.dumps({"type": "results", "items": items}))
            await asyncio.sleep(0.2)  # the relay flushes results every 50 ms
            await ws.close()
            ws2, subscribed = await subscribe(relay, name="batch", start="last")
            assert subscribed["start"] == got[1]["seq"]
            assert (await next_of(ws2))["event"]["detail"] == {"n": 2}
            await ws2.close()
        finally:
            await relay.stop()

    run(main())


def test_oversized_message_closes_only_that_connection(tmp_path: Path) -> None:
    """A frame over the message cap closes that socket (1009); others keep streaming."""

    async def main() -> None:
        relay = await started(tmp_path, max_message=64 * 1024)
        try:
            other, _ = await subscribe(relay, name="other", start="now")
            ws = await connect(relay.ws_url, max_size=None, additional_headers=auth_headers())
            await ws.send("x" * (65 * 1024))
            async with asyncio.timeout(UNIT):
                await ws.wait_closed()
            assert ws.close_code == 1009
            await ingest(relay, "c", {"still": "serving"})
            assert (await next_of(other))["event"]["detail"] == {"still": "serving"}
            await other.close()
        finally:
            await relay.stop()

    run(main())


def test_store_failure_is_503_and_unhealthy(tmp_path: Path) -> None:
    """When the store cannot be written, ingest answers 503 (retry later) and health says why."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            relay.relay.store.close()
            response = await ingest(relay, "c", {"n": 1})
            assert response.status == 503
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{relay.url}/v1/health") as r:
                    assert r.status == 503
                    assert (await r.json())["reason"].startswith("store:")
        finally:
            await relay.stop()

    run(main())


def test_pending_is_what_the_listener_will_get(tmp_path: Path) -> None:
    """status=pending lists only unanswered events that match the listener's own pattern."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            ws, _ = await subscribe(relay, name="picky", pattern={"source": ["webhook.a"]})
            await ws.close()
            await ingest(relay, "a", {"n": 1})
            await ingest(relay, "b", {"n": 2})
            async with aiohttp.ClientSession(headers=auth_headers()) as s:
                params = {"status": "pending", "listener": "picky"}
                async with s.get(f"{relay.url}/v1/events", params=params) as r:
                    rows = (await r.json())["events"]
            assert [row["event"]["detail"] for row in rows] == [{"n": 1}]
        finally:
            await relay.stop()

    run(main())


def test_history_full_rows_carry_the_raw_request(tmp_path: Path) -> None:
    """History rows show a webhook's size; with full=1 they carry its exact bytes."""

    async def main() -> None:
        relay = await started(tmp_path)
        try:
            body = b'{"k": "v",  "n": 1}'
            await ingest(relay, "gh", body)
            async with aiohttp.ClientSession(headers=auth_headers()) as s:
                async with s.get(f"{relay.url}/v1/events") as r:
                    (short,) = (await r.json())["events"]
                async with s.get(f"{relay.url}/v1/events", params={"full": "1"}) as r:
                    (full,) = (await r.json())["events"]
            assert short["request"]["size"] == len(body)
            assert "body_b64" not in short["request"]
            assert base64.b64decode(full["request"]["body_b64"]) == body
        finally:
            await relay.stop()

    run(main())
