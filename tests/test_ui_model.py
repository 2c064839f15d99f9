"""The full-screen view's rules without a terminal: which delivery a row shows, what a filter
matches, how a body is displayed, and that a row fits 80 columns."""

from __future__ import annotations

from typing import Any

import pytest

from hookcli.errors import InvalidPatternError, UsageError
from hookcli.ui.model import COLUMNS, Row, body_view, cells, hexdump, parse_filter, row_from_record

EVENT = {"id": "0123456789abcdef", "source": "shop.orders", "detail-type": "Order Placed"}


def delivery(listener: str, status: str, code: int | None = None, **extra: Any) -> dict[str, Any]:
    base = {"listener": listener, "status": status, "attempt": 1, "latency_ms": 3.0, "code": code}
    return base | extra


def record(*deliveries: dict[str, Any]) -> dict[str, Any]:
    return {"seq": 7, "received": 1_700_000_000.0, "event": EVENT, "deliveries": list(deliveries)}


@pytest.mark.parametrize(
    ("deliveries", "listener", "status", "shown", "code"),
    [
        ([], None, "pending", "", None),
        ([delivery("a", "delivered", 200)], None, "delivered", "a", 200),
        (
            [delivery("a", "failed", 500), delivery("a", "delivered", 200)],
            None,
            "delivered",
            "a",
            200,
        ),
        ([delivery("a", "delivered", 200), delivery("b", "failed", 503)], None, "failed", "b", 503),
        (
            [delivery("a", "delivered", 200), delivery("b", "failed", 503)],
            "a",
            "delivered",
            "a",
            200,
        ),
        ([delivery("b", "failed", 503)], "a", "pending", "", None),
    ],
)
def test_row_shows_the_chosen_listener_else_a_failure_else_the_latest(
    deliveries: list[dict[str, Any]],
    listener: str | None,
    status: str,
    shown: str,
    code: int | None,
) -> None:
    """A failing listener's result is what a row shows unless one listener was asked for."""
    row = row_from_record(record(*deliveries), listener)
    assert (row.status, row.listener, row.code) == (status, shown, code)


@pytest.mark.parametrize(
    ("text", "row_status", "expected"),
    [
        ("", "failed", True),
        ("status:failed", "failed", True),
        ("status:failed", "delivered", False),
        ("status:failed,pending", "pending", True),
        ("STATUS:Failed", "failed", True),
        ("order", "delivered", True),
        ("placed shop", "delivered", True),
        ("invoice", "delivered", False),
        ("source:shop", "delivered", True),
        ("type:refund", "delivered", False),
        ("id:01234", "delivered", True),
        ('{"source": ["shop.orders"]}', "delivered", True),
        ('{"detail-type": [{"prefix": "Order"}]}', "delivered", True),
        ('{"source": ["billing"]}', "delivered", False),
    ],
)
def test_filter_terms(text: str, row_status: str, expected: bool) -> None:
    """Free words, key:value terms and EventBridge patterns, all ANDed."""
    row = Row(seq=1, event=dict(EVENT), status=row_status)  # type: ignore[arg-type]
    assert parse_filter(text).matches(row) is expected


@pytest.mark.parametrize(
    ("text", "error", "said"),
    [
        ("status:lost", UsageError, "unknown status lost"),
        ('{"source": "shop"}', InvalidPatternError, "array"),
        ('{"source": [', UsageError, "not valid JSON"),
        ('{"source": ["a"]} x', UsageError, "not valid JSON"),
    ],
)
def test_bad_filters_say_what_is_wrong(text: str, error: type[Exception], said: str) -> None:
    """A filter that cannot work is refused with the reason, before it touches the list."""
    with pytest.raises(error) as caught:
        parse_filter(text)
    assert said in str(caught.value).lower() or said in getattr(caught.value, "message", "")


@pytest.mark.parametrize(
    ("body", "kind", "shown"),
    [
        (b"", "empty", ""),
        (b'{"a":1,"b":[1,2]}', "json", '{\n  "a": 1,\n  "b": [\n    1,\n    2\n  ]\n}'),
        (b"name=shop&total=42", "text", "name=shop&total=42"),
        ("héllo wörld\n".encode(), "text", "héllo wörld\n"),
        (b"\x00\x01\xffPNG", "hex", "00000000  00 01 ff 50 4e 47"),
        (b"bell\x07", "hex", "62 65 6c 6c 07"),
    ],
)
def test_bodies_show_as_pretty_json_text_or_hex(body: bytes, kind: str, shown: str) -> None:
    """JSON is pretty-printed, readable text kept, anything else a hex dump."""
    view = body_view(body)
    assert view.kind == kind
    assert shown in view.text


def test_hexdump_lines_have_offset_hex_and_ascii() -> None:
    """16 bytes a line, like xxd."""
    lines = hexdump(bytes(range(65, 65 + 20))).splitlines()
    assert lines[0].startswith("00000000  41 42") and lines[0].endswith("ABCDEFGHIJKLMNOP")
    assert lines[1].startswith("00000010  51") and lines[1].endswith("QRST")


def test_a_row_fits_80_columns_with_long_names_cut() -> None:
    """Every cell is cut to its column, so the list is 78 columns at most."""
    long = {"id": "x" * 40, "source": "s" * 60, "detail-type": "t" * 60}
    row = Row(seq=1, event=long, listener="l" * 50, code=503, latency_ms=123456.0, attempts=10)
    values = cells(row)
    assert all(len(v) <= w for v, (_, w) in zip(values, COLUMNS, strict=True))
    assert sum(w + 1 for _, w in COLUMNS) <= 80
    assert values[2].endswith("…")


def test_control_characters_in_names_never_reach_the_terminal() -> None:
    """An escape sequence in a source is shown as U+FFFD, not sent to the terminal."""
    row = Row(seq=1, event={"id": "abc", "source": "evil\x1b[2J", "detail-type": "t"})
    assert "\x1b" not in "".join(cells(row))


def test_rows_keep_seq_order_and_drop_the_oldest_tenth_past_the_limit() -> None:
    """Out-of-order rows land in seq order; past the limit the oldest tenth goes at once."""
    from hookcli.ui.feed import Rows

    rows = Rows(limit=20)
    for seq in [*range(1, 11), 0]:
        rows.put(Row(seq=seq, event={"id": f"e{seq}"}))
    assert [r.seq for r in rows.order] == list(range(11))
    assert rows.put(Row(seq=3, event={"id": "e3"})) is rows.get("e3")  # held, not doubled
    for seq in range(11, 21):
        rows.put(Row(seq=seq, event={"id": f"e{seq}"}))
    assert len(rows) == 19 and rows.get("e0") is None and rows.get("e1") is None
    assert rows.order[0].seq == 2
