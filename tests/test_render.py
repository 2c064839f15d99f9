"""The --json output contract: every line is one JSON object, whatever the event holds."""

from __future__ import annotations

import io
import json

import pytest

from hookcli.cli.render import JsonRenderer, result_line, update_to_json
from hookcli.events import Event, EventId
from hookcli.targets import Outcome
from hookcli.updates import Delivered, Received

EVENT = Event(id=EventId("e-1"), source='shop"orders', detail_type="Order\tPlaced", detail={})


@pytest.mark.parametrize(
    "update",
    [
        Delivered(1, EVENT, Outcome(True, False, 1.23456, 200, None, None, "POST http://x/"), 1),
        Delivered(
            2, EVENT, Outcome(False, True, 10.0, None, 'é \\ "q"', "d", "exec ./a.sh"), 4, True
        ),
        Delivered(3, EVENT, Outcome(False, False, 0.0, 500, "\ud800 lone", None, ""), 2),
        Delivered(
            4,
            EVENT,
            Outcome(True, False, 2.0, None, None, None, "handler a.py:h", 'x\n"é"\t\x1b', "[1]"),
            1,
        ),
    ],
)
def test_result_line_equals_the_dict_form(update: Delivered) -> None:
    """The hand-built result line is the same JSON object as update_to_json's."""
    assert json.loads(result_line(update)) == update_to_json(update)


def test_lone_surrogates_never_crash_the_output() -> None:
    """An event with a lone surrogate (valid JSON) prints as a valid line on a UTF-8 stream."""
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
    odd = Event(id=EventId("e-2"), source="s\ud800", detail_type="d", detail={"k": "\udfff"})
    renderer = JsonRenderer("listen", out=out, err=out)
    renderer(Received(5, odd))
    renderer(Delivered(5, odd, Outcome(True, False, 1.0, 200, None, None, "POST x"), 1))
    lines = raw.getvalue().decode("utf-8").splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["event", "result"]
    assert json.loads(lines[0])["event"]["source"] == "s\ud800"


def test_terminal_output_survives_lone_surrogates() -> None:
    """The terminal renderer prints an event with lone surrogates instead of crashing."""
    import subprocess
    import sys

    script = (
        "from hookcli.cli.render import TerminalRenderer\n"
        "from hookcli.events import Event\n"
        "from hookcli.targets import Outcome\n"
        "from hookcli.updates import Delivered, Received\n"
        "e = Event(id='e-3', source='s\\ud800', detail_type='d\\udfff', detail={'k': '\\ud800'})\n"
        "for kind in ('tail', 'listen'):\n"
        "    r = TerminalRenderer(kind)\n"
        "    r(Received(1, e))\n"
        "    r(Delivered(1, e, Outcome(False, False, 1.0, 500, 'x\\ud800', None, 'POST x'), 1))\n"
        "    r.close()\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        env={"PYTHONIOENCODING": "utf-8:strict", "TERM": "xterm", "COLUMNS": "120"},
        timeout=30,
    )
    assert ran.returncode == 0, ran.stderr.decode()
    assert "\\ud800" in ran.stdout.decode() or "\ufffd" in ran.stdout.decode()
