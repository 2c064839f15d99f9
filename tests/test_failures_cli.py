"""``hook events --issues`` and ``hook replay --issue`` as a user drives them: real ``hook``
subprocesses, a real relay on loopback, a real HTTP target that fails and then recovers."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hookcli.relay.service import RunningRelay

from conftest import UNIT, RecordingTarget, auth_headers, wait_until
from fixtures.cli import answer_as, clean_env, hook
from fixtures.terminal import PtyProcess

pytestmark = pytest.mark.slow

_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment for `hook`: no HOOK_* from the caller, no config file, no colour."""
    return clean_env(tmp_path)


def api(relay: RunningRelay, path: str, body: Any = None) -> Any:
    """A JSON call to the relay with the local token."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        relay.url + path,
        data=data,
        method="GET" if body is None else "POST",
        headers={**auth_headers(), "Content-Type": "application/json"},
    )
    with _HTTP.open(request, timeout=UNIT) as response:
        return json.loads(response.read())


def issues(env: dict[str, str], relay: RunningRelay, *args: str) -> list[dict[str, Any]]:
    """`hook events --issues --json` as parsed lines (it must succeed)."""
    ran = hook(env, "events", "--issues", "--json", "--relay", relay.url, *args)
    assert ran.code == 0, ran.stderr
    return ran.lines()


@pytest.fixture
def outage(
    relay: RunningRelay, http_target: RecordingTarget, env: dict[str, str]
) -> Iterator[list[str]]:
    """`hook listen --name shop` delivers three webhooks to a target answering 500: three
    failures, one group. The target then recovers (answers 200)."""
    http_target.default_status = 500
    listener = subprocess.Popen(
        [sys.executable, "-m", "hookcli", "listen", "--target", http_target.url, "--name",
         "shop", "--from", "1", "--retries", "0", "--relay", relay.url, "--json"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        # --from 1: the listener gets these whether it subscribes before or after they arrive.
        ids = [api(relay, "/v1/ingest/shop", {"order": n})["id"] for n in range(3)]
        failed = urllib.parse.urlencode({"listener": "shop", "status": "failed"})
        wait_until(
            lambda: len(api(relay, f"/v1/events?{failed}")["events"]) == 3,
            UNIT * 3,
            "three failed deliveries",
        )
    finally:
        listener.terminate()
        listener.communicate(timeout=UNIT)
    http_target.default_status = 200
    yield ids


def test_failures_form_one_group_with_their_count(
    relay: RunningRelay, http_target: RecordingTarget, env: dict[str, str], outage: list[str]
) -> None:
    """Three deliveries failed alike: one group of 3, its cause, target and newest example."""
    (group,) = issues(env, relay)
    assert group["type"] == "issue"
    assert (group["number"], group["count"], group["listener"]) == (1, 3, "shop")
    assert (group["kind"], group["code"]) == ("http", 500)
    assert group["cause"].startswith("HTTP 500")
    assert group["target"].startswith(http_target.url)
    assert group["example"] == outage[-1]


def test_issues_json_lines_have_the_documented_fields(
    relay: RunningRelay, env: dict[str, str], outage: list[str]
) -> None:
    """One JSON object per group with exactly the fields docs/protocol.md lists."""
    (group,) = issues(env, relay)
    assert set(group) == {
        "type", "key", "number", "listener", "target", "kind", "code", "error", "cause",
        "count", "first_seen", "last_seen", "example", "example_seq",
    }  # fmt: skip
    assert len(group["key"]) == 8 and group["first_seen"].endswith("Z")


def test_replay_issue_delivers_every_event_and_the_group_is_gone(
    relay: RunningRelay, http_target: RecordingTarget, env: dict[str, str], outage: list[str]
) -> None:
    """The target recovered: `replay --issue 1` (no --target: the recorded one) delivers all
    three in order, exit 0, each recorded as the answer to its failure; no group is left."""
    before = len(http_target.requests)
    ran = hook(env, "replay", "--issue", "1", "--relay", relay.url, "--json")
    assert ran.code == 0, ran.stderr
    results = [line for line in ran.lines() if line.get("type") == "result"]
    assert [(r["id"], r["status"]) for r in results] == [(i, "delivered") for i in outage]
    assert len(http_target.requests) == before + 3
    assert issues(env, relay) == []
    replays = [d for d in api(relay, f"/v1/events/{outage[0]}")["deliveries"] if d["replay"]]
    assert [(d["listener"], d["status"]) for d in replays] == [("shop", "delivered")]
    assert replays[0]["replay_of"] is not None


def test_replay_issue_by_key_that_fails_again_exits_1_and_keeps_the_group(
    relay: RunningRelay, http_target: RecordingTarget, env: dict[str, str], outage: list[str]
) -> None:
    """Still failing: exit 1 with a hint naming the same --issue, and the group keeps all 3."""
    http_target.default_status = 500
    (group,) = issues(env, relay)
    ran = hook(env, "replay", "--issue", group["key"], "--retries", "0", "--relay", relay.url)
    assert ran.code == 1
    assert "Error: 3 of 3 replays failed" in ran.stderr
    assert f"hook replay --issue {group['key']}" in ran.stderr
    assert [g["count"] for g in issues(env, relay)] == [3]


def test_replay_issue_shows_progress_on_a_terminal(
    relay: RunningRelay, http_target: RecordingTarget, env: dict[str, str], outage: list[str]
) -> None:
    """On a terminal: what is replayed, to where, then one line per event."""
    terminal = PtyProcess(
        [sys.executable, "-m", "hookcli", "replay", "--issue", "1", "--relay", relay.url],
        env,
        columns=100,
        rows=40,
    )
    assert terminal.proc.wait(UNIT * 3) == 0
    wait_until(lambda: all(i[:8] in terminal.text for i in outage), what="a line per event")
    assert "Replaying 3 failed deliveries of issue #1 (HTTP 500" in terminal.text
    assert http_target.url in terminal.text


@pytest.mark.parametrize("given", ["7", "0123abcd"])
def test_an_unknown_issue_is_a_usage_error_with_a_hint(
    relay: RunningRelay, env: dict[str, str], given: str
) -> None:
    """A number or key no current group has: exit 2, pointing at `hook events --issues`."""
    ran = hook(env, "replay", "--issue", given, "--relay", relay.url)
    assert ran.code == 2
    assert f"Error: no failure group {given!r} on this relay" in ran.stderr
    assert "hook events --issues" in ran.stderr


def test_an_exec_group_needs_the_command_named(relay: RunningRelay, env: dict[str, str]) -> None:
    """hook never runs a command the relay names: an exec group asks for --exec (exit 2)."""
    api(relay, "/v1/ingest/shop", {"n": 1})
    answer_as(relay, "jobs", [("failed", 2, "boom")], "exec ./on-event.sh")
    ran = hook(env, "replay", "--issue", "1", "--relay", relay.url)
    assert ran.code == 2
    assert "went to `exec ./on-event.sh`: give --exec to replay it" in ran.stderr


def test_replay_issue_with_an_explicit_exec_records_for_the_group_listener(
    relay: RunningRelay, env: dict[str, str]
) -> None:
    """With --exec given, the group's events run through it and the group is answered."""
    api(relay, "/v1/ingest/shop", {"n": 1})
    answer_as(relay, "jobs", [("failed", 2, "boom")], "exec ./on-event.sh")
    ran = hook(env, "replay", "--issue", "1", "--exec", "cat >/dev/null", "--relay", relay.url)
    assert ran.code == 0, ran.stderr
    assert issues(env, relay) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["events", "--issues", "--status", "failed"], "it takes no --status or --pattern"),
        (["events", "--issues", "--source", "a", "--source", "b"], "one --source"),
        (["events", "--issues", "--limit", "0"], "--limit"),
        (["events", "--issues", "--since", "yesterday"], "expected an ISO time or unix seconds"),
        (["replay", "--issue", "1", "--failed", "--target", "127.0.0.1:9"], "without EVENT_IDs"),
    ],
)
def test_bad_issue_options_exit_2(
    relay: RunningRelay, env: dict[str, str], args: list[str], says: str
) -> None:
    """Options that cannot work: exit 2, saying why."""
    ran = hook(env, *args, "--relay", relay.url)
    assert ran.code == 2
    assert says in ran.stderr


def test_issues_table_fits_80_columns(
    relay: RunningRelay, env: dict[str, str], outage: list[str]
) -> None:
    """On an 80-column terminal: a header, one row per group, nothing wider than 80."""
    terminal = PtyProcess(
        [sys.executable, "-m", "hookcli", "events", "--issues", "--relay", relay.url],
        env,
        columns=80,
        rows=24,
    )
    assert terminal.proc.wait(UNIT * 3) == 0
    wait_until(lambda: "hook replay --issue" in terminal.text, what="the table")
    lines = terminal.text.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("#"))
    assert header.split() == ["#", "count", "listener", "cause", "first", "seen", "last",
                              "seen", "example"]  # fmt: skip
    row = next(line for line in lines if line.lstrip().startswith("1 "))
    assert row.split()[:3] == ["1", "3", "shop"]
    assert outage[-1][:8] in row
    assert max(len(line) for line in lines) <= 80


def test_no_failures_says_so(relay: RunningRelay, env: dict[str, str]) -> None:
    """Nothing failing: piped, no lines at all; on a terminal, one dim sentence."""
    assert issues(env, relay) == []
    terminal = PtyProcess(
        [sys.executable, "-m", "hookcli", "events", "--issues", "--relay", relay.url],
        env,
        columns=80,
        rows=24,
    )
    assert terminal.proc.wait(UNIT * 3) == 0
    wait_until(lambda: "No failures" in terminal.text, what="the sentence")


def test_a_relay_without_issues_says_to_upgrade(
    http_target: RecordingTarget, env: dict[str, str]
) -> None:
    """A server answering 404 for /v1/issues (a relay older than issue 10): exit 3, upgrade."""
    http_target.default_status = 404
    ran = hook(env, "events", "--issues", "--relay", http_target.url)
    assert ran.code == 3
    assert "does not group failures" in ran.stderr
    assert "upgrade the relay" in ran.stderr
