"""A team relay (``--tokens``): members share events, never each other's results or cursors.

A real relay on loopback with a tokens file; members talk to it with real websocket and HTTP
clients. Token rules go through the real CLI (``python -m hookcli relay serve``) and refuse
before anything binds; a non-loopback address is only ever a string that cannot be bound.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from test_listen import hook_env
from test_relay import next_of, subscribe
from websockets.asyncio.client import ClientConnection

from hookcli.errors import ConfigError
from hookcli.relay.service import RunningRelay, check_bind, load_tokens, start_relay

from conftest import UNIT, LoopThread, relay_settings

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdef0"
TEAM = "team-token-0123456789abcdef"
CAROL = "carol-token-0123456789abcde"
TOKENS = {ALICE: "alice", BOB: "bob", TEAM: "team", CAROL: "carol"}
#: TEST-NET-1 (RFC 5737): assigned to no interface here, so even a broken check cannot bind it.
UNBINDABLE = "192.0.2.1"


@pytest.fixture
def team(tmp_path: Path, loop_thread: LoopThread) -> Iterator[RunningRelay]:
    running = loop_thread.run(start_relay(relay_settings(tmp_path / "relay", tokens=TOKENS)))
    yield running
    loop_thread.run(running.stop())


async def call(
    relay: RunningRelay, token: str, method: str, path: str, **kwargs: Any
) -> tuple[int, str]:
    """One API request as ``token``; the status and the body text."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.request(method, relay.url + path, **kwargs) as response:
            return response.status, await response.text()


async def rows(relay: RunningRelay, token: str, **query: str) -> list[dict[str, Any]]:
    status, text = await call(relay, token, "GET", "/v1/events", params=query)
    assert status == 200, text
    found: list[dict[str, Any]] = json.loads(text)["events"]
    return found


async def answer(ws: ClientConnection, message: dict[str, Any], status: str, error: str) -> None:
    result = {"type": "result", "seq": message["seq"], "id": message["event"]["id"]}
    await ws.send(json.dumps({**result, "status": status, "attempt": 1, "error": error}))


async def record(relay: RunningRelay, token: str, event_id: str, body: dict[str, Any]) -> None:
    status, text = await call(relay, token, "POST", f"/v1/events/{event_id}/results", json=body)
    assert status == 200, text


async def send(relay: RunningRelay, n: int) -> str:
    """Ingest ``{"n": n}``; the new event's id."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{relay.url}/v1/ingest/shop", json={"n": n}) as response:
            assert response.status == 202
            event_id: str = (await response.json())["id"]
            return event_id


async def results_of_two_members(relay: RunningRelay) -> dict[str, str]:
    """Three events: both fail ``both``; only alice fails ``alice``; alice delivers ``ok``.

    Alice answers through her stream, bob records through the results API (as replay does).
    """
    ws, _ = await subscribe(relay, name="dev", start="now", token=ALICE)
    ids = {name: await send(relay, n) for n, name in enumerate(["both", "alice", "ok"])}
    for name in ["both", "alice", "ok"]:
        message = await next_of(ws)
        assert message["event"]["id"] == ids[name]
        if name == "ok":
            await answer(ws, message, "delivered", "")
        else:
            await answer(ws, message, "failed", f"alice-secret-{name}")
    failure = {"listener": "dev", "status": "failed", "attempt": 1, "error": "bob-secret-trace"}
    await record(relay, BOB, ids["both"], failure)

    async def flushed() -> bool:
        return len(await rows(relay, ALICE, listener="dev", limit="10")) == 3

    async with asyncio.timeout(UNIT):
        while not await flushed():
            await asyncio.sleep(0.02)
    await ws.close()
    return ids


VIEWS = [
    ("/v1/events", {}),
    ("/v1/events", {"full": "1"}),
    ("/v1/events", {"status": "failed"}),
    ("/v1/events", {"status": "delivered"}),
    ("/v1/events", {"listener": "dev"}),
    ("/v1/events/{both}", {}),
]


@pytest.mark.parametrize(("path", "query"), VIEWS)
@pytest.mark.parametrize(("me", "mine", "theirs"), [(ALICE, "alice", "bob"), (BOB, "bob", "alice")])
def test_member_sees_only_own_delivery_rows(
    team: RunningRelay,
    loop_thread: LoopThread,
    path: str,
    query: dict[str, str],
    me: str,
    mine: str,
    theirs: str,
) -> None:
    """Every history view shows a member its own listeners' results and none of the other's."""

    async def main() -> None:
        ids = await results_of_two_members(team)
        status, text = await call(team, me, "GET", path.format(**ids), params=query)
        assert status == 200, text
        body = json.loads(text)
        events = body["events"] if "events" in body else [body]
        deliveries = [d for row in events for d in row["deliveries"]]
        assert f"{theirs}-secret" not in text
        assert all(d["listener"].startswith(f"{mine}/") for d in deliveries), deliveries
        if query.get("status") != "delivered" or mine == "alice":
            assert deliveries, "the member's own results are missing"

    loop_thread.run(main())


@pytest.mark.parametrize(
    ("me", "status", "expected"),
    [
        (ALICE, "failed", ["alice", "both"]),
        (BOB, "failed", ["both"]),
        (ALICE, "delivered", ["ok"]),
        (BOB, "delivered", []),
    ],
)
def test_status_filter_counts_only_own_results(
    team: RunningRelay, loop_thread: LoopThread, me: str, status: str, expected: list[str]
) -> None:
    """``?status=`` without a listener lists events by the member's own results only."""

    async def main() -> None:
        ids = await results_of_two_members(team)
        names = {event_id: name for name, event_id in ids.items()}
        found = await rows(team, me, status=status)
        assert [names[row["event"]["id"]] for row in found] == expected

    loop_thread.run(main())


def test_events_stay_the_teams(team: RunningRelay, loop_thread: LoopThread) -> None:
    """Every member still sees every event (only results are private)."""

    async def main() -> None:
        ids = await results_of_two_members(team)
        for token in (ALICE, BOB, TEAM):
            assert {row["event"]["id"] for row in await rows(team, token)} == set(ids.values())

    loop_thread.run(main())


def test_team_cannot_take_carols_cursor(team: RunningRelay, loop_thread: LoopThread) -> None:
    """``team`` naming ``carol/x`` is its own listener: carol's cursor, stream and rows hold."""

    async def main() -> None:
        carol, _ = await subscribe(team, name="x", start="now", token=CAROL)
        await send(team, 1)
        message = await next_of(carol)
        await answer(carol, message, "failed", "carol-secret")
        event_id = message["event"]["id"]
        async with asyncio.timeout(UNIT):
            while not await rows(team, CAROL, listener="x", status="failed"):
                await asyncio.sleep(0.02)
        # While carol is connected, team subscribes under her full name: no takeover.
        taker, subscribed = await subscribe(team, name="carol/x", start="last", token=TEAM)
        assert subscribed["resumed"] is False
        await send(team, 2)
        assert (await next_of(carol))["event"]["detail"] == {"n": 2}  # carol still streams
        await record(team, TEAM, event_id, {"listener": "carol/x", "status": "delivered"})
        assert await rows(team, TEAM, listener="carol/x", status="failed") == []
        await taker.close()
        await carol.close()
        [row] = await rows(team, CAROL, listener="x", status="failed")
        assert [(d["listener"], d["status"]) for d in row["deliveries"]] == [("carol/x", "failed")]
        again, subscribed = await subscribe(team, name="x", start="last", token=CAROL)
        assert subscribed["resumed"] is True and subscribed["start"] == message["seq"]
        await again.close()

    loop_thread.run(main())


@pytest.mark.parametrize("name", ["team/carol", "/carol", "team/"])
def test_tokens_file_refuses_slash_in_names(tmp_path: Path, name: str) -> None:
    """A name with '/' would collide with another member's listener names: refused by line."""
    path = tmp_path / "tokens.txt"
    path.write_text(f"# team\nteam:{TEAM}\n{name}:{CAROL}\n")
    with pytest.raises(ConfigError, match=r"line 3: the name .* contains '/'") as raised:
        load_tokens(path)
    assert CAROL not in str(raised.value) and "team-carol" in (raised.value.hint or "")


@pytest.mark.parametrize(
    ("host", "tokens", "refused"),
    [
        (UNBINDABLE, {"x": ""}, "shorter than 16"),
        (UNBINDABLE, {"x" * 15: ""}, "shorter than 16"),
        (UNBINDABLE, {ALICE: "alice", "short": "bob"}, "shorter than 16"),
        (UNBINDABLE, {}, "without a token"),
        ("::", {"x": ""}, "shorter than 16"),
        (UNBINDABLE, {"x" * 16: ""}, None),
        ("127.0.0.1", {"x": ""}, None),  # loopback: a short token stays allowed
        ("::1", {}, None),
        ("localhost", {"x": ""}, None),
    ],
)
def test_check_bind(host: str, tokens: dict[str, str], refused: str | None) -> None:
    """Beyond loopback only tokens of 16+ characters unlock the relay (nothing is bound here)."""
    if refused is None:
        check_bind(host, tokens)
        return
    with pytest.raises(ConfigError, match=refused) as raised:
        check_bind(host, tokens)
    assert "x" * 15 not in str(raised.value)


def serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``hook relay serve --ingest-only ARGS``, expected to refuse at once."""
    return subprocess.run(
        [sys.executable, "-m", "hookcli", "relay", "serve", "--ingest-only",
         "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True, text=True, env=hook_env(tmp_path), timeout=UNIT * 3,
    )  # fmt: skip


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port we hold: a relay that got as far as binding would say it is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.slow
def test_token_beside_tokens_is_refused(tmp_path: Path, held_port: int) -> None:
    """``--token`` with ``--tokens`` exits 2 with a hint, before binding or opening the store."""
    path = tmp_path / "tokens.txt"
    path.write_text(f"alice:{ALICE}\n")
    ran = serve(tmp_path, "--port", str(held_port), "--tokens", str(path), "--token", TEAM)
    assert ran.returncode == 2, ran.stderr
    assert "--token (or HOOK_TOKEN) and --tokens exclude each other" in ran.stderr
    assert "under a name" in ran.stderr and "cannot listen" not in ran.stderr
    assert TEAM not in ran.stderr + ran.stdout
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_short_token_cannot_unlock_a_public_host(tmp_path: Path) -> None:
    """``--token x --host <public>`` exits 2 with how to make a token; nothing is bound."""
    ran = serve(tmp_path, "--host", UNBINDABLE, "--port", "8750", "--token", "x")
    assert ran.returncode == 2, ran.stderr
    assert "shorter than 16 characters" in ran.stderr
    assert "secrets.token_urlsafe(32)" in ran.stderr
    assert "cannot listen" not in ran.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_tokens_file_slash_refused_by_the_cli(tmp_path: Path, held_port: int) -> None:
    """The real CLI names the bad line of a tokens file and exits 2."""
    path = tmp_path / "tokens.txt"
    path.write_text(f"team:{TEAM}\nteam/carol:{CAROL}\n")
    ran = serve(tmp_path, "--port", str(held_port), "--tokens", str(path))
    assert ran.returncode == 2, ran.stderr
    assert f"{path} line 2: the name 'team/carol' contains '/'" in " ".join(ran.stderr.split())
