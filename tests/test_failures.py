"""Failure grouping (``hookcli.failures``) and the issues query checks, offline: table-driven."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookcli.errors import UsageError
from hookcli.failures import (
    KEY_LENGTH,
    MAX_ERROR_LINE,
    FailureCount,
    cause_key,
    first_line,
    group_failures,
    group_members,
)
from hookcli.protocol import IssueQuery, parse_issue_key, parse_issue_query

from conftest import UNIT

HTTP = "http://127.0.0.1:3000/"


def row(
    listener: str = "me:3000",
    target: str | None = HTTP,
    code: int | None = 500,
    error: str | None = "500 Internal Server Error",
    count: int = 1,
    first_at: float = 100.0,
    last_at: float | None = None,
    example: str = "e1",
    example_seq: int = 1,
) -> FailureCount:
    """A counted row as the store gives it."""
    return FailureCount(
        listener, target, code, error, count, first_at, last_at or first_at, example, example_seq
    )


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (None, ""),
        ("", ""),
        ("boom", "boom"),
        ("  boom  ", "boom"),
        ("first\nsecond", "first"),
        ("\n \n  Traceback (most recent call last):\n  File", "Traceback (most recent call last):"),
        ("x" * 500, "x" * MAX_ERROR_LINE),
        ("   \n\t\n", ""),
    ],
)
def test_first_line_is_the_first_non_blank_line_stripped_and_capped(
    error: str | None, line: str
) -> None:
    """The part of an error a group compares: its first non-blank line, at most 200 chars."""
    assert first_line(error) == line


def test_cause_key_is_pinned() -> None:
    """A cause's key never changes between versions or restarts: scripts keep it."""
    assert cause_key("me:3000", HTTP, 500, "nope: rejected\nmore") == "5ceafecb"


@pytest.mark.parametrize(
    "other",
    [
        ("you:3000", HTTP, 500, "nope"),
        ("me:3000", "http://127.0.0.1:4000/", 500, "nope"),
        ("me:3000", None, 500, "nope"),
        ("me:3000", HTTP, 502, "nope"),
        ("me:3000", HTTP, None, "nope"),
        ("me:3000", HTTP, 500, "nope!"),
    ],
)
def test_cause_key_differs_when_any_part_of_the_cause_does(
    other: tuple[str, str | None, int | None, str],
) -> None:
    """Listener, target, code and first error line each tell causes apart."""
    base = cause_key("me:3000", HTTP, 500, "nope")
    assert len(base) == KEY_LENGTH and all(c in "0123456789abcdef" for c in base)
    assert cause_key(*other) != base


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("nope\nbody 1", "nope\nbody 2"),
        ("  nope ", "nope"),
        (None, ""),
        ("x" * 300, "x" * 200 + "y" * 100),
    ],
)
def test_cause_key_ignores_what_follows_the_first_line(a: str | None, b: str | None) -> None:
    """Errors that agree in their (normalised) first line share a key."""
    assert cause_key("me", HTTP, 500, a) == cause_key("me", HTTP, 500, b)


def test_rows_with_the_same_first_line_merge_into_one_group() -> None:
    """Counts add up; first seen is the oldest, last seen and example the newest."""
    groups = group_failures(
        [
            row(
                error="nope\nid 1", count=3, first_at=10.0, last_at=20.0, example="a", example_seq=3
            ),
            row(
                error="nope\nid 2", count=2, first_at=5.0, last_at=30.0, example="b", example_seq=9
            ),
            row(error="nope", count=1, first_at=7.0, last_at=25.0, example="c", example_seq=7),
        ]
    )
    assert [(g.count, g.error, g.example, g.example_seq) for g in groups] == [(6, "nope", "b", 9)]
    assert groups[0].first_seen == "1970-01-01T00:00:05.000Z"
    assert groups[0].last_seen == "1970-01-01T00:00:30.000Z"


def test_groups_are_numbered_by_first_seen() -> None:
    """Number 1 is the oldest group; the numbering follows first seen, not row order."""
    groups = group_failures(
        [
            row(listener="c", first_at=30.0),
            row(listener="a", first_at=10.0),
            row(listener="b", first_at=20.0),
        ]
    )
    assert [(g.number, g.listener) for g in groups] == [(1, "a"), (2, "b"), (3, "c")]


def test_groups_seen_at_the_same_moment_are_numbered_by_key() -> None:
    """Ties in first seen never depend on the order the store returned rows in."""
    rows = [row(listener=name, first_at=1.0) for name in ("a", "b", "c", "d")]
    forward = [(g.number, g.key) for g in group_failures(rows)]
    backward = [(g.number, g.key) for g in group_failures(list(reversed(rows)))]
    assert forward == backward
    assert [key for _, key in forward] == sorted(key for _, key in forward)


def test_no_rows_no_groups() -> None:
    """Nothing failing: no groups."""
    assert group_failures([]) == []


def test_group_members_are_the_rows_of_that_key() -> None:
    """A group's rows (what its detail lists) are those whose normalised cause has its key."""
    rows = [row(error="nope\n1"), row(error="nope\n2"), row(error="other")]
    (nope, _other) = sorted(group_failures(rows), key=lambda g: g.error)
    assert group_members(rows, nope.key) == rows[:2]


@pytest.mark.parametrize(
    ("target", "code", "error", "kind", "cause"),
    [
        (HTTP, 500, "nope", "http", "HTTP 500: nope"),
        ("https://example.com/x", 404, "", "http", "HTTP 404"),
        ("exec ./on-event.sh", 2, "boom", "exec", "exit 2: boom"),
        ("handler app.py:handler", None, "ValueError: bad", "handler", "ValueError: bad"),
        (HTTP, None, "connection refused", "http", "connection refused"),
        (None, 3, "x", None, "3: x"),
        (None, None, None, None, "failed"),
    ],
)
def test_kind_and_cause_say_what_failed_in_a_few_words(
    target: str | None, code: int | None, error: str | None, kind: str | None, cause: str
) -> None:
    """HTTP status, exit status or the error alone, read from the target's description."""
    (group,) = group_failures([row(target=target, code=code, error=error)])
    assert (group.kind, group.cause) == (kind, cause)


def test_to_dict_is_plain_json() -> None:
    """The JSON shape scripts and the relay use: every field, JSON-serialisable."""
    (group,) = group_failures([row(example="abc", example_seq=4)])
    data: dict[str, Any] = json.loads(json.dumps(group.to_dict()))
    assert data == {
        "key": group.key,
        "number": 1,
        "listener": "me:3000",
        "target": HTTP,
        "kind": "http",
        "code": 500,
        "error": "500 Internal Server Error",
        "cause": "HTTP 500: 500 Internal Server Error",
        "count": 1,
        "first_seen": "1970-01-01T00:01:40.000Z",
        "last_seen": "1970-01-01T00:01:40.000Z",
        "example": "abc",
        "example_seq": 4,
    }


def test_the_grouping_core_imports_nothing_heavy() -> None:
    """hookcli.failures is core (STYLE.md): no aiohttp, websockets, rich, typer, asyncio."""
    code = (
        "import json, sys; import hookcli.failures;"
        " print(json.dumps(sorted(m for m in ('aiohttp', 'websockets', 'rich', 'typer',"
        " 'boto3', 'asyncio', 'sqlite3') if m in sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=UNIT * 2, check=True
    )
    assert json.loads(done.stdout) == []


# ---------------------------------------------------------------------- query checks


@pytest.mark.parametrize(
    ("query", "parsed"),
    [
        ({}, IssueQuery()),
        ({"limit": "1"}, IssueQuery(limit=1)),
        ({"limit": "1000", "after": "0"}, IssueQuery(limit=1000)),
        ({"listener": "me", "source": "s", "detail_type": "d"}, IssueQuery("me", "s", "d")),
        ({"since": "1714521600", "after": "7"}, IssueQuery(since="1714521600", after=7)),
        ({"listener": "", "limit": ""}, IssueQuery()),
    ],
)  # fmt: skip
def test_issue_queries_within_range_parse(query: dict[str, str], parsed: IssueQuery) -> None:
    """Good values come through; empty ones mean absent."""
    assert parse_issue_query(query) == parsed


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"limit": "0"}, "'limit' must be an integer from 1 to 1000"),
        ({"limit": "1001"}, "'limit' must be an integer from 1 to 1000"),
        ({"limit": "-1"}, "'limit'"),
        ({"limit": "1e3"}, "'limit'"),
        ({"limit": "٣"}, "'limit'"),
        ({"after": "9223372036854775808"}, "'after' must be an integer from 0 to"),
        ({"after": "x"}, "'after'"),
        ({"listener": "n" * 201}, "'listener' must be at most 200 characters"),
        ({"source": "s" * 201}, "'source'"),
        ({"since": "9" * 65}, "'since'"),
    ],
)
def test_issue_queries_out_of_range_are_usage_errors_with_a_hint(
    query: dict[str, str], says: str
) -> None:
    """Each bad value names the parameter and its range, and points at the docs."""
    with pytest.raises(UsageError) as caught:
        parse_issue_query(query)
    assert says in caught.value.message
    assert caught.value.hint == "see GET /v1/issues in docs/protocol.md"


@pytest.mark.parametrize(("text", "key"), [("c5cb04c1", "c5cb04c1"), ("C5CB04C1", "c5cb04c1")])
def test_issue_keys_are_eight_hex_digits(text: str, key: str) -> None:
    """A key in either case is accepted as lower-case hex."""
    assert parse_issue_key(text) == key


@pytest.mark.parametrize("text", ["", "1", "c5cb04c", "c5cb04c1a", "g5cb04c1", "../../x"])
def test_other_issue_keys_are_usage_errors(text: str) -> None:
    """Anything else (a group number too) is refused with a hint to list the groups."""
    with pytest.raises(UsageError) as caught:
        parse_issue_key(text)
    assert caught.value.hint is not None and "hook events --issues" in caught.value.hint


_rows = st.builds(
    FailureCount,
    listener=st.sampled_from(["a", "b"]),
    target=st.sampled_from([HTTP, "exec x", None]),
    code=st.sampled_from([500, 2, None]),
    error=st.one_of(st.none(), st.text(max_size=30)),
    count=st.integers(1, 5),
    first_at=st.floats(0, 1e9),
    last_at=st.floats(0, 1e9),
    example=st.text(min_size=1, max_size=5),
    example_seq=st.integers(1, 100),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_rows, max_size=12))
def test_grouping_keeps_every_failure_once(rows: list[FailureCount]) -> None:
    """Counts add up to the rows' total, numbers run 1..n, keys are distinct and each group's
    members are exactly the rows with its key."""
    groups = group_failures(rows)
    assert sum(g.count for g in groups) == sum(r.count for r in rows)
    assert [g.number for g in groups] == list(range(1, len(groups) + 1))
    assert len({g.key for g in groups}) == len(groups)
    assert sum(len(group_members(rows, g.key)) for g in groups) == len(rows)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["listener", "source", "detail_type", "since", "limit", "after", "x"]),
        st.text(max_size=30),
    )
)
def test_any_issue_query_parses_or_is_a_usage_error(query: dict[str, str]) -> None:
    """Whatever the query text, the answer is a parsed query or a UsageError (a 400)."""
    try:
        parsed = parse_issue_query(query)
    except UsageError as exc:
        assert exc.hint
    else:
        assert parsed.limit is None or 1 <= parsed.limit <= 1000
