"""``GET /v1/issues`` and ``GET /v1/issues/{key}`` on a real relay on loopback: failures
answered by a raw websocket listener (docs/protocol.md), grouped, counted, and shrinking as
replays of them succeed."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from hookcli.relay.service import RunningRelay, start_relay

from conftest import UNIT, LoopThread, auth_headers, relay_settings
from fixtures.cli import answer_as

#: No proxy from the environment for loopback calls.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
TARGET = "http://127.0.0.1:3000/"


def call(
    relay: RunningRelay, method: str, path: str, body: Any = None, *, token: bool | str = True
) -> tuple[int, Any]:
    """One JSON call to the relay (with the local token, this ``token``, or none): (status,
    decoded body), error statuses included."""
    data = None if body is None else json.dumps(body).encode()
    auth = {"Authorization": f"Bearer {token}"} if isinstance(token, str) else auth_headers()
    headers = {**(auth if token else {}), "Content-Type": "application/json"}
    request = urllib.request.Request(relay.url + path, data=data, method=method, headers=headers)
    try:
        with _HTTP.open(request, timeout=UNIT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def get(relay: RunningRelay, path: str, **query: Any) -> Any:
    """A GET that must succeed; its JSON body."""
    text = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
    status, body = call(relay, "GET", f"{path}?{text}")
    assert status == 200, body
    return body


def ingest(relay: RunningRelay, count: int) -> list[str]:
    """``count`` webhooks on channel ``shop``; their ids in order."""
    ids = []
    for n in range(count):
        status, body = call(relay, "POST", "/v1/ingest/shop", {"n": n})
        assert status == 202
        ids.append(body["id"])
    return ids


def replay_result(relay: RunningRelay, event_id: str, listener: str, status: str) -> None:
    """Record a replay's result as `hook replay` does (``POST /v1/events/<id>/results``)."""
    body = {"listener": listener, "status": status, "attempt": 1, "latency_ms": 1.0}
    code = 200 if status == "delivered" else 500
    if status == "failed":
        body["error"] = "nope: rejected\nagain"
    status_code, answer = call(
        relay, "POST", f"/v1/events/{event_id}/results", {**body, "code": code, "target": TARGET}
    )
    assert status_code == 200, answer


@pytest.fixture
def failing(relay: RunningRelay) -> list[str]:
    """Four events: ``me`` fails the first three (500 twice alike, then 502), delivers the 4th;
    ``you`` fails the first one with an exec exit status."""
    ids = ingest(relay, 4)
    answer_as(
        relay,
        "me",
        [
            ("failed", 500, "nope: rejected\nrequest 1"),
            ("failed", 500, "nope: rejected\nrequest 2"),
            ("failed", 502, "bad gateway"),
            ("delivered", 200, None),
        ],
        TARGET,
    )
    answer_as(relay, "you", [("failed", 2, "boom")], "exec ./on-event.sh")
    return ids


def test_issues_groups_failures_by_cause(relay: RunningRelay, failing: list[str]) -> None:
    """Three groups, numbered by first seen, each counted, with its newest example."""
    issues = get(relay, "/v1/issues")["issues"]
    summary = [(i["number"], i["listener"], i["cause"], i["count"], i["example"]) for i in issues]
    assert summary == [
        (1, "me", "HTTP 500: nope: rejected", 2, failing[1]),
        (2, "me", "HTTP 502: bad gateway", 1, failing[2]),
        (3, "you", "exit 2: boom", 1, failing[0]),
    ]
    assert [i["target"] for i in issues] == [TARGET, TARGET, "exec ./on-event.sh"]


@pytest.mark.parametrize(
    ("query", "listeners"),
    [
        ({"listener": "you"}, ["you"]),
        ({"listener": "nobody"}, []),
        ({"source": "webhook.shop"}, ["me", "me", "you"]),
        ({"source": "elsewhere"}, []),
        ({"detail_type": "nothing"}, []),
        ({"since": "2099-01-01T00:00:00Z"}, []),
        ({"since": "0"}, ["me", "me", "you"]),
        ({"limit": "2"}, ["me", "me"]),
    ],
)
def test_issues_filters(
    relay: RunningRelay, failing: list[str], query: dict[str, str], listeners: list[str]
) -> None:
    """listener, source, detail_type, since (failure time) and limit narrow the groups."""
    assert [i["listener"] for i in get(relay, "/v1/issues", **query)["issues"]] == listeners


def test_issue_lists_the_events_of_one_group(relay: RunningRelay, failing: list[str]) -> None:
    """The group and its events by seq, each with the failed delivery it is."""
    first = get(relay, "/v1/issues")["issues"][0]
    detail = get(relay, f"/v1/issues/{first['key']}")
    assert detail["issue"] == first
    assert [e["id"] for e in detail["events"]] == failing[:2]
    assert [e["seq"] for e in detail["events"]] == [1, 2]
    assert all(isinstance(e["delivery"], int) for e in detail["events"])
    assert detail["more"] is False


def test_issue_pages_with_after_and_limit(relay: RunningRelay, failing: list[str]) -> None:
    """limit=1 gives one event and more=true; after=<its seq> gives the next and more=false."""
    key = get(relay, "/v1/issues")["issues"][0]["key"]
    first = get(relay, f"/v1/issues/{key}", limit=1)
    second = get(relay, f"/v1/issues/{key}", limit=1, after=first["events"][0]["seq"])
    assert ([e["id"] for e in first["events"]], first["more"]) == ([failing[0]], True)
    assert ([e["id"] for e in second["events"]], second["more"]) == ([failing[1]], False)


def test_a_group_shrinks_as_replays_succeed_and_then_is_gone(
    relay: RunningRelay, failing: list[str]
) -> None:
    """A delivered replay answers its failure: the count drops, then the key is a 404."""
    key = get(relay, "/v1/issues")["issues"][0]["key"]
    replay_result(relay, failing[0], "me", "delivered")
    assert get(relay, f"/v1/issues/{key}")["issue"]["count"] == 1
    replay_result(relay, failing[1], "me", "delivered")
    status, body = call(relay, "GET", f"/v1/issues/{key}")
    assert status == 404
    assert body["error"] == f"no failure group {key} on this relay"
    assert "hook events --issues" in body["hint"]
    assert [i["cause"] for i in get(relay, "/v1/issues")["issues"]] == [
        "HTTP 502: bad gateway",
        "exit 2: boom",
    ]


def test_a_failed_replay_keeps_the_failure(relay: RunningRelay, failing: list[str]) -> None:
    """A replay that fails again is still a failure (now with the replay's cause)."""
    replay_result(relay, failing[2], "me", "failed")
    causes = {i["cause"]: i["count"] for i in get(relay, "/v1/issues")["issues"]}
    assert causes == {"HTTP 500: nope: rejected": 3, "exit 2: boom": 1}


def test_the_keys_stay_the_same_across_a_relay_restart(
    tmp_path: Path, loop_thread: LoopThread
) -> None:
    """Keys depend on the cause only: a restarted relay gives the same keys (scripts keep them)."""
    settings = relay_settings(tmp_path / "relay")
    first = loop_thread.run(start_relay(settings))
    try:
        ingest(first, 1)
        answer_as(first, "me", [("failed", 500, "nope")], TARGET)
        before = get(first, "/v1/issues")["issues"]
    finally:
        loop_thread.run(first.stop())
    second = loop_thread.run(start_relay(settings))
    try:
        after = get(second, "/v1/issues")["issues"]
    finally:
        loop_thread.run(second.stop())
    assert [i["key"] for i in after] == [i["key"] for i in before]
    assert len(before) == 1


@pytest.mark.parametrize("path", ["/v1/issues", "/v1/issues/5ceafecb"])
def test_issues_need_the_token(relay: RunningRelay, path: str) -> None:
    """Without a bearer token: 401 with a hint, as every endpoint but health and ingest."""
    status, body = call(relay, "GET", path, token=False)
    assert status == 401
    assert body["error"] == "missing or invalid bearer token" and body["hint"]


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/v1/issues?limit=0", "'limit' must be an integer from 1 to 1000"),
        ("/v1/issues?limit=abc", "'limit' must be an integer from 1 to 1000"),
        ("/v1/issues?since=yesterday", "expected an ISO time or unix seconds"),
        ("/v1/issues?listener=" + "x" * 201, "'listener' must be at most 200 characters"),
        ("/v1/issues/5ceafecb?limit=1001", "'limit' must be an integer from 1 to 1000"),
        ("/v1/issues/5ceafecb?after=-1", "'after' must be an integer from 0 to"),
        ("/v1/issues/12", "issue keys are 8 hex digits, not '12'"),
    ],
)
def test_bad_issue_queries_are_400_with_a_hint(relay: RunningRelay, path: str, says: str) -> None:
    """Every bad value is a 400 naming it, with a hint; never a 500."""
    status, body = call(relay, "GET", path)
    assert status == 400
    assert says in body["error"] and body["hint"]


def test_an_unknown_key_is_404_with_a_hint(relay: RunningRelay) -> None:
    """A well-formed key no current group has: 404 saying how to list the groups."""
    status, body = call(relay, "GET", "/v1/issues/0123abcd")
    assert status == 404
    assert "hook events --issues" in body["hint"]


def test_no_failures_no_issues(relay: RunningRelay) -> None:
    """A relay where everything was delivered lists no groups."""
    ingest(relay, 2)
    answer_as(relay, "me", [("delivered", 200, None), ("delivered", 200, None)], TARGET)
    assert get(relay, "/v1/issues") == {"issues": []}


def test_a_team_member_sees_only_its_own_listeners_failures(
    tmp_path: Path, loop_thread: LoopThread
) -> None:
    """With a tokens file, groups (and their error texts) are the member's own; another
    member's key is a 404, as if it did not exist."""
    alice, bob = "alice-token-0123456789abcdef", "bob-token-0123456789abcdef0"
    settings = relay_settings(tmp_path / "relay", tokens={alice: "alice", bob: "bob"})
    team = loop_thread.run(start_relay(settings))
    try:
        status, body = call(team, "POST", "/v1/ingest/shop", {"n": 1}, token=alice)
        assert status == 202
        for token, error in ((alice, "alice: nope"), (bob, "bob: secret stack trace")):
            result = {"listener": "me", "status": "failed", "attempt": 1, "latency_ms": 1.0}
            status, _ = call(
                team, "POST", f"/v1/events/{body['id']}/results", {**result, "error": error},
                token=token,
            )  # fmt: skip
            assert status == 200
        status, seen = call(team, "GET", "/v1/issues", token=alice)
        status_bob, seen_bob = call(team, "GET", "/v1/issues", token=bob)
        assert (status, status_bob) == (200, 200)
        assert [(i["listener"], i["error"]) for i in seen["issues"]] == [
            ("alice/me", "alice: nope")
        ]
        bob_key = seen_bob["issues"][0]["key"]
        assert call(team, "GET", f"/v1/issues/{bob_key}", token=alice)[0] == 404
        assert call(team, "GET", "/v1/issues?listener=me", token=alice)[1] == seen
    finally:
        loop_thread.run(team.stop())
