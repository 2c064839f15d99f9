"""The target's input from the command line: ``hook transform test``, ``hook listen
--input-path/--input-transformer/--from-rule`` and ``hook replay --input-path``, as real
subprocesses against a real relay, a real recording target and moto's server."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_listen import Hook, hook, ingest, listen  # noqa: F401 (hook is a fixture)

from hookcli.events import parse_event
from hookcli.relay.service import RunningRelay, start_relay

from conftest import UNIT, LoopThread, RecordingTarget, relay_settings

EVENT = {
    "version": "0",
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "123456789012",
    "time": "2015-11-11T21:29:54Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
    "detail": {"instance-id": "i-0123456789", "state": "RUNNING"},
}
TRANSFORMER = {
    "InputPathsMap": {"instance": "$.detail.instance-id", "state": "$.detail.state"},
    "InputTemplate": '{"instance": <instance>, "status": "<instance> is <state>", '
    '"rule": <aws.events.rule-name>}',
}


def run_hook(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m hookcli ARGS`` to completion, in ``tmp_path``, no HOOK_* variables."""
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("HOOK_")}
    env["HOOK_CONFIG"] = str(tmp_path / "no-such-config.toml")
    return subprocess.run(
        [sys.executable, "-m", "hookcli", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=UNIT * 3,
        env=env,
        cwd=tmp_path,
        check=False,
    )


def write(tmp_path: Path, name: str, value: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(value))
    return "@" + str(path)


# ----------------------------------------------------------------------------- hook transform test


def test_transform_test_prints_the_input_the_target_gets(tmp_path: Path) -> None:
    """TRANSFORMER and EVENT from files: the filled, minified template on stdout, exit 0."""
    done = run_hook(
        tmp_path,
        "transform",
        "test",
        write(tmp_path, "t.json", TRANSFORMER),
        write(tmp_path, "e.json", EVENT),
        "--rule-name",
        "ec2-state",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        '{"instance":"i-0123456789","status":"i-0123456789 is RUNNING","rule":"ec2-state"}\n'
    )


def test_transform_test_json_and_input_path(tmp_path: Path) -> None:
    """--input-path with --json: one {"input": TEXT} line."""
    done = run_hook(
        tmp_path, "transform", "test", "--input-path", "$.detail.state", json.dumps(EVENT), "--json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"input": '"RUNNING"'}


@pytest.mark.parametrize(
    ("transformer", "expected"),
    [
        (
            {"InputPathsMap": {"a": "$.a"}, "InputTemplate": '"<b>"'},
            "Error: InputTemplate for target hook contains invalid placeholder b.",
        ),
        (
            {"InputPathsMap": {f"v{n}": "$.a" for n in range(101)}, "InputTemplate": '"x"'},
            "less than or equal to 100",
        ),
        ({"InputPathsMap": {"a.b": "$.a"}, "InputTemplate": '"x"'}, "regular expression"),
    ],
    ids=["undefined-placeholder", "101-paths", "bad-name"],
)
def test_transform_test_refuses_what_eventbridge_refuses(
    tmp_path: Path, transformer: Any, expected: str
) -> None:
    """A transformer PutTargets would refuse: exit 2, EventBridge's reason, no traceback."""
    done = run_hook(tmp_path, "transform", "test", json.dumps(transformer), json.dumps(EVENT))
    assert done.returncode == 2
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_transform_test_exits_1_when_eventbridge_would_deliver_nothing(tmp_path: Path) -> None:
    """A filled JSON template that is not JSON: exit 1 and why, on stderr."""
    transformer = {"InputPathsMap": {"d": "$.detail"}, "InputTemplate": '{"d": "<d>"}'}
    done = run_hook(tmp_path, "transform", "test", json.dumps(transformer), json.dumps(EVENT))
    assert done.returncode == 1
    assert "not valid JSON" in done.stderr and done.stdout == ""


def test_input_path_and_input_transformer_together_are_refused(tmp_path: Path) -> None:
    """One input setting per target, as PutTargets says: exit 2 before any network I/O."""
    done = run_hook(
        tmp_path,
        "listen",
        "--relay",
        "http://127.0.0.1:9",
        "--target",
        "3000",
        "--input-path",
        "$.detail",
        "--input-transformer",
        json.dumps(TRANSFORMER),
    )
    assert done.returncode == 2
    assert "Only one of Input, InputPath, or InputTransformer" in done.stderr


# ----------------------------------------------------------------------------- listen and replay


@pytest.fixture
def relay(tmp_path: Path, loop_thread: LoopThread) -> Iterator[RunningRelay]:
    """An ingest-only relay; EventBridge events are committed into it directly."""
    running = loop_thread.run(start_relay(relay_settings(tmp_path / "relay")))
    yield running
    loop_thread.run(running.stop())


def commit(loop_thread: LoopThread, relay: RunningRelay, **detail: Any) -> str:
    """Store one EventBridge event (as the SQS source would) and return its id."""
    event = parse_event({**EVENT, "id": str(uuid.uuid4()), "detail": detail})
    loop_thread.run(relay.relay.commit([event]))
    return event.id


@pytest.mark.slow
def test_listen_input_transformer_delivers_the_filled_template(
    tmp_path: Path,
    relay: RunningRelay,
    loop_thread: LoopThread,
    http_target: RecordingTarget,
    hook: Callable[..., Hook],  # noqa: F811
) -> None:
    """The target gets the filled template as the POST body; a webhook still arrives as sent."""
    listener = hook(
        *listen(
            relay.url,
            "shaped",
            "--target",
            http_target.url,
            "--input-transformer",
            write(tmp_path, "t.json", TRANSFORMER),
            "--json",
        )
    )
    listener.wait_ready()
    commit(loop_thread, relay, **{"instance-id": "i-42", "state": "STOPPED"})
    ingest(relay.url, "shop", b'{ "order" : 1 }')
    results = listener.wait_results(2)
    assert [r["status"] for r in results] == ["delivered", "delivered"]
    first, second = http_target.requests
    assert first.body == b'{"instance":"i-42","status":"i-42 is STOPPED","rule":"shaped"}'
    # Webhooks never went through an EventBridge rule's target: their bytes stay exact.
    assert second.body == b'{ "order" : 1 }'


@pytest.mark.slow
def test_listen_input_path_that_selects_nothing_fails_without_retrying(
    relay: RunningRelay,
    loop_thread: LoopThread,
    http_target: RecordingTarget,
    hook: Callable[..., Hook],  # noqa: F811
) -> None:
    """No input for this event: a failed result (1 attempt, reason given), the target untouched."""
    listener = hook(
        *listen(
            relay.url,
            "pathless",
            "--target",
            http_target.url,
            "--input-path",
            "$.detail.absent",
            "--retries",
            "3",
            "--json",
        )
    )
    listener.wait_ready()
    commit(loop_thread, relay, state="RUNNING")
    [result] = listener.wait_results(1)
    assert (result["status"], result["attempts"]) == ("failed", 1)
    assert "selects nothing" in result["error"]
    assert http_target.requests == []


@pytest.mark.slow
def test_replay_input_path_delivers_the_same_input_as_listen(
    tmp_path: Path, relay: RunningRelay, loop_thread: LoopThread, http_target: RecordingTarget
) -> None:
    """``hook replay --input-path`` sends what the path selects, through the same path."""
    event_id = commit(loop_thread, relay, state="PENDING", n=7)
    done = run_hook(
        tmp_path,
        "replay",
        event_id,
        "--relay",
        relay.url,
        "--target",
        http_target.url,
        "--input-path",
        "$.detail",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    [request] = http_target.requests
    assert request.body == b'{"state":"PENDING","n":7}'


# ----------------------------------------------------------------------------- --from-rule on moto


@pytest.fixture(scope="module")
def moto_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningRelay, Any]]:
    """A relay on the emulated bus (moto's server), and an EventBridge client on that bus."""
    from hookcli.sources.emulator import CREDENTIALS
    from hookcli.sources.eventbridge import AwsSettings, clients

    thread = LoopThread()
    running = thread.run(
        start_relay(relay_settings(tmp_path_factory.mktemp("moto-relay"), source=True))
    )
    settings = AwsSettings(
        bus=running.info.bus,
        region=running.info.region,
        endpoint_url=running.info.endpoint_url,
        credentials=CREDENTIALS,
    )
    events, sqs, _ = clients(settings)
    queue = sqs.create_queue(QueueName="orders-target")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {"source": ["shop"], "detail-type": ["Order"]}
    events.put_rule(Name="orders-rule", EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule="orders-rule",
        Targets=[
            {
                "Id": "orders-queue",
                "Arn": queue_arn,
                "InputTransformer": {
                    "InputPathsMap": {"total": "$.detail.total"},
                    # Quoted: moto's own PutEvents fills templates too and leaves the predefined
                    # variables as they are, which must still be JSON for it.
                    "InputTemplate": '{"total": <total>, "by": "rule <aws.events.rule-name>"}',
                },
            }
        ],
    )
    events.put_rule(Name="two-targets", EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule="two-targets",
        Targets=[
            {"Id": "first", "Arn": queue_arn, "InputPath": "$.detail"},
            {"Id": "second", "Arn": queue_arn},
        ],
    )
    yield running, events
    thread.run(running.stop())
    thread.stop()


@pytest.mark.slow
def test_from_rule_listens_with_the_rules_pattern_and_its_targets_input(
    moto_relay: tuple[RunningRelay, Any],
    http_target: RecordingTarget,
    hook: Callable[..., Hook],  # noqa: F811
) -> None:
    """DescribeRule + ListTargetsByRule on the emulated bus: pattern and InputTransformer both."""
    running, events = moto_relay
    listener = hook(
        *listen(
            running.url,
            "from-rule",
            "--target",
            http_target.url,
            "--from-rule",
            "orders-rule",
            "--from",
            "now",
            "--json",
        )
    )
    ready = listener.wait_ready(timeout=UNIT * 2)
    assert ready["pattern"] == {"source": ["shop"], "detail-type": ["Order"]}
    notices = [line.get("message", "") for line in listener.of("notice")]
    assert any("orders-rule" in text and "InputTransformer" in text for text in notices), notices
    entries = [
        {"Source": "shop", "DetailType": "Refund", "Detail": json.dumps({"total": 1})},
        {"Source": "shop", "DetailType": "Order", "Detail": json.dumps({"total": 250})},
    ]
    answer = events.put_events(
        Entries=[{**entry, "EventBusName": running.info.bus} for entry in entries]
    )
    assert answer["FailedEntryCount"] == 0
    [result] = listener.wait_results(1, timeout=UNIT * 2)
    assert result["status"] == "delivered"
    [request] = http_target.requests
    assert request.body == b'{"total":250,"by":"rule orders-rule"}'


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--from-rule", "two-targets"], "pass --target-id with one of: first, second"),
        (["--from-rule", "two-targets", "--target-id", "third"], "has no target 'third'"),
        (["--from-rule", "no-such-rule"], "no rule 'no-such-rule'"),
    ],
    ids=["several-targets", "unknown-target", "unknown-rule"],
)
def test_from_rule_errors_say_what_to_fix(
    moto_relay: tuple[RunningRelay, Any],
    tmp_path: Path,
    args: list[str],
    expected: str,
) -> None:
    """A rule hook cannot use: a non-zero exit and the fix, before anything is delivered."""
    running, _ = moto_relay
    done = run_hook(tmp_path, "listen", "--relay", running.url, "--target", "3000", *args)
    assert done.returncode in (2, 6), done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr


def test_readme_transform_example_prints_the_documented_input(tmp_path: Path) -> None:
    """The README's `hook transform test` line runs and prints the order summary."""
    from test_readme import ROOT, hook_lines

    (words,) = [w for w in hook_lines() if w[1:3] == ["transform", "test"]]
    done = subprocess.run(
        [sys.executable, "-m", "hookcli", *words[1:]],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=UNIT * 3,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "order": "o-1042",
        "total": 117.9,
        "skus": ["BOOK-0451", "GIFT-WRAP", "LAMP-0007"],
        "note": "gold customer, order o-1042",
        "rule": "orders-to-fulfilment",
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        # --exec: the input text on stdin, then a newline (as the event's JSON would be).
        ("exec", '"RUNNING"\n'),
        # --handler: the input decoded, as Lambda passes it; the context keeps the event id.
        ("handler", "RUNNING"),
    ],
)
def test_exec_and_handler_get_the_transformed_input(
    tmp_path: Path,
    relay: RunningRelay,
    loop_thread: LoopThread,
    hook: Callable[..., Hook],  # noqa: F811
    kind: str,
    expected: str,
) -> None:
    """Every target kind gets the same input: the command's stdin, the handler's event."""
    out = tmp_path / "got.txt"
    if kind == "exec":
        target = ["--exec", f"cat > {out}"]
    else:
        (tmp_path / "app.py").write_text(
            "import json, pathlib\n"
            "def handler(event, context):\n"
            f"    got = json.dumps([event, context.aws_request_id])\n"
            f"    pathlib.Path({str(out)!r}).write_text(got)\n"
        )
        target = ["--handler", f"{tmp_path / 'app.py'}:handler"]
    listener = hook(
        *listen(relay.url, f"input-{kind}", *target, "--input-path", "$.detail.state", "--json")
    )
    listener.wait_ready()
    event_id = commit(loop_thread, relay, state="RUNNING")
    [result] = listener.wait_results(1)
    assert result["status"] == "delivered", listener.describe()
    if kind == "exec":
        assert out.read_text() == expected
    else:
        assert json.loads(out.read_text()) == [expected, event_id]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--from-rule", "r", "--source", "shop"], "--from-rule takes the pattern and the input"),
        (["--from-rule", "r", "--input-path", "$.detail"], "--from-rule takes the pattern"),
        (["--target-id", "t1"], "--bus and --target-id go with --from-rule RULE"),
    ],
    ids=["with-source", "with-input-path", "target-id-alone"],
)
def test_from_rule_option_mixups_exit_2_before_network_io(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    """--from-rule replaces the pattern and input options; mixing them is a usage error."""
    done = run_hook(tmp_path, "listen", "--relay", "http://127.0.0.1:9", "--target", "3000", *args)
    assert done.returncode == 2
    assert expected in done.stderr
