"""The embedded relay's hint: a `hook send` line whose event the listener will actually get."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from hookcli.listen import send_hint
from hookcli.patterns import compile_pattern


@pytest.mark.parametrize(
    ("pattern", "source", "detail_type"),
    [
        ({}, "my.app", "Hello"),
        ({"source": ["shop.orders"]}, "shop.orders", "Hello"),
        ({"detail-type": ["Order Placed"]}, "my.app", "Order Placed"),
        ({"source": ["a.b", "c.d"], "detail-type": ["X"]}, "a.b", "X"),
    ],
)
def test_hint_sends_what_the_pattern_matches(
    pattern: dict[str, Any], source: str, detail_type: str
) -> None:
    """The hint's source and detail-type come from the pattern, and its event matches it."""
    words = shlex.split(send_hint(pattern))
    assert words[words.index("--source") + 1] == source
    assert words[words.index("--detail-type") + 1] == detail_type
    event = {"source": source, "detail-type": detail_type, "detail": {"hello": "world"}}
    assert not pattern or compile_pattern(pattern).matches(event)
    assert "so that it matches" not in send_hint(pattern)


def test_hint_says_so_when_the_pattern_needs_more() -> None:
    """A pattern the sample event cannot meet (a detail field) gets a note, not a false hint."""
    hint = send_hint({"source": ["shop.orders"], "detail": {"total": [{"numeric": [">", 100]}]}})
    assert hint.startswith("hook send --source shop.orders")
    assert hint.endswith("(with the fields your pattern asks for, so that it matches)")
