"""Events files as `hook send --file` and `hook pattern test --events` read them (core + CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hookcli.cli import app
from hookcli.errors import InvalidEventError
from hookcli.events import Document, split_documents
from hookcli.send import LOCAL_ACCOUNT, LOCAL_REGION, as_stored

EXAMPLES = Path(__file__).parent.parent / "examples"
ORDER = {"source": "shop.orders", "detail-type": "Order Placed", "detail": {"total": 25}}
PUT = {"Source": "shop.payments", "DetailType": "Payment Captured", "Detail": '{"amount": 25}'}


@pytest.mark.parametrize(
    ("text", "positions"),
    [
        (json.dumps(ORDER) + "\n\n" + json.dumps(PUT) + "\n", ["line 1", "line 3"]),
        (json.dumps([ORDER, PUT], indent=2), ["entry 1", "entry 2"]),
        (json.dumps(ORDER, indent=2), [""]),
        (json.dumps(ORDER), ["line 1"]),
        ("\n  \n", []),
    ],
    ids=["jsonl", "array", "pretty-object", "one-line", "blank"],
)
def test_split_documents_reads_each_shape(text: str, positions: list[str]) -> None:
    """JSON Lines, a JSON array and one (pretty-printed) object each give their objects."""
    documents = split_documents(text, "f.json")
    assert [d.position for d in documents] == positions


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (json.dumps(ORDER) + "\n{oops\n", "f.json line 2 is not valid JSON"),
        ('{\n  "source": x\n}', "f.json is neither JSON Lines nor one JSON document: "
         "Expecting value at line 2 column 13"),
        (json.dumps([ORDER, 3]), "f.json entry 2 must be a JSON object, not int"),
        ("42", "f.json must hold event objects, not int"),
    ],
    ids=["jsonl-line", "pretty-object", "array-entry", "scalar"],
)  # fmt: skip
def test_split_documents_errors_say_where(text: str, message: str) -> None:
    """A bad events file's error names the line, the entry, or the position in the document."""
    with pytest.raises(InvalidEventError) as caught:
        split_documents(text, "f.json")
    assert caught.value.message.startswith(message), caught.value.message


def test_as_stored_gives_a_put_entry_the_bus_envelope() -> None:
    """A PutEvents entry becomes the EventBridge event the local bus would deliver."""
    stored = as_stored(Document("line 3", PUT), "f", event_id="e-1", time="2026-01-01T00:00:00Z")
    assert stored == {
        "version": "0", "id": "e-1", "detail-type": "Payment Captured",
        "source": "shop.payments", "account": LOCAL_ACCOUNT, "time": "2026-01-01T00:00:00Z",
        "region": LOCAL_REGION, "resources": [], "detail": {"amount": 25},
    }  # fmt: skip


def test_as_stored_keeps_a_captured_events_own_fields() -> None:
    """An EventBridge event's own id, account and region are kept (it is a captured event)."""
    captured = {**ORDER, "id": "abc", "account": "111122223333", "region": "eu-west-1"}
    stored = as_stored(Document("line 1", captured), "f", event_id="e-1", time="t")
    assert (stored["id"], stored["account"], stored["region"]) == (
        "abc",
        "111122223333",
        "eu-west-1",
    )


def test_as_stored_rejects_what_send_rejects() -> None:
    """A line `hook send --file` refuses is refused here too, naming the line."""
    with pytest.raises(InvalidEventError, match="f line 2: needs a non-empty detail-type"):
        as_stored(Document("line 2", {"source": "a", "detail": {}}), "f", event_id="e", time="t")


def test_pattern_test_events_labels_each_verdict() -> None:
    """The README's example: the shop.payments line (PutEvents-shaped) matches, by line number."""
    result = CliRunner().invoke(
        app,
        ["pattern", "test", '{"source":["shop.payments"]}', "--events",
         str(EXAMPLES / "events.jsonl")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["line", "1", "no"], ["line", "2", "no"], ["line", "3", "match"],
        ["line", "4", "no"], ["line", "5", "no"],
    ]  # fmt: skip
    assert "Payment Captured  shop.payments" in lines[2]


def test_pattern_test_events_none_matched_exits_1(tmp_path: Path) -> None:
    """No event matched: exit 1, one `no match` line per event."""
    path = tmp_path / "one.json"
    path.write_text(json.dumps(ORDER, indent=2))
    result = CliRunner().invoke(
        app, ["pattern", "test", '{"source":["x"]}', "--events", str(path), "--json"]
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "position": "event", "match": False, "source": "shop.orders", "detail-type": "Order Placed",
    }  # fmt: skip


def test_pattern_test_takes_a_put_entry_as_event() -> None:
    """A lone PutEvents-shaped EVENT is tested as the event the bus makes of it."""
    result = CliRunner().invoke(
        app, ["pattern", "test", '{"detail": {"amount": [25]}}', json.dumps(PUT)]
    )
    assert (result.exit_code, result.stdout) == (0, "match\n")
