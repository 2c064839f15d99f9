"""Property tests for the pattern engine (hypothesis): its invariants over generated input."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookcli.patterns import InvalidPatternError, PatternSet, compile_pattern, load_event

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = st.sampled_from(["a", "b", "c", "a.b", "b.c", ""])
TEXT = st.sampled_from(["", "x", "xy", "Xy", "yx", "10.0.0.1", "2001:db8::1", "a*b", "é"])
NUMBERS = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0.5, 1.0, 2.0, 1e300, -0.0, 2**53, 2**53 + 1]),
)
SCALARS = st.one_of(TEXT, NUMBERS, st.booleans(), st.none())

EVENTS: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(KEYS, inner, max_size=3),
    ),
    max_leaves=12,
)
OBJECT_EVENTS = st.dictionaries(KEYS, EVENTS, max_size=4)


def own_leaves(node: Any, prefix: tuple[str, ...], out: dict[tuple[str, ...], Any]) -> None:
    """Leaves of one consistent selection: the first element of every array (§1.5)."""
    if isinstance(node, dict):
        for key, child in node.items():
            own_leaves(child, (*prefix, key), out)
    elif isinstance(node, list):
        for element in node:
            if element != [] and element != {}:
                own_leaves(element, prefix, out)
                return
    elif prefix:
        out.setdefault(prefix, node)


def nest(leaves: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    pattern: dict[str, Any] = {}
    for path, value in leaves.items():
        node = pattern
        for key in path[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):  # a leaf and an object under one key: keep the leaf
                break
            node = child
        else:
            if not isinstance(node.get(path[-1]), dict):
                node[path[-1]] = [value]
    return prune(pattern)


def prune(node: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, child in node.items():
        if isinstance(child, dict):
            child = prune(child)
            if not child:
                continue
        out[key] = child
    return out


@SETTINGS
@given(OBJECT_EVENTS)
def test_a_pattern_of_an_events_own_values_matches_it(event: dict[str, Any]) -> None:
    """§3/§4: exact values taken from the event itself (one array element each) match it."""
    leaves: dict[tuple[str, ...], Any] = {}
    own_leaves(event, (), leaves)
    pattern = nest(leaves)
    if pattern:
        assert compile_pattern(pattern).matches(event)


@SETTINGS
@given(
    st.one_of(TEXT, NUMBERS.filter(lambda n: isinstance(n, float) or abs(n) <= 2**53)),
    st.booleans(),
)
def test_anything_but_a_value_rejects_it(value: Any, as_list: bool) -> None:
    """§7: {"anything-but": v} never matches v itself, nor an array of only v."""
    exclusion = [value] if as_list else value
    pattern = compile_pattern({"k": [{"anything-but": exclusion}]})
    assert not pattern.matches({"k": value})
    assert not pattern.matches({"k": [value, value]})


JSON: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=6),
        st.sampled_from(["prefix", "numeric", "anything-but", "$or", "wildcard", "*", "**"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.text(max_size=4),
                st.sampled_from(
                    ["prefix", "suffix", "numeric", "anything-but", "exists", "cidr", "$or"]
                ),
                st.sampled_from(["wildcard", "equals-ignore-case", "exactly", "<", ">="]),
            ),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=15,
)


@SETTINGS
@given(JSON)
def test_compiling_any_json_raises_only_invalid_pattern_errors(document: Any) -> None:
    """Any JSON document (as a mapping or as text) compiles or raises InvalidPatternError."""
    for pattern in (document, json.dumps(document)):
        try:
            compiled = compile_pattern(pattern)
        except InvalidPatternError:
            continue
        compiled.matches({"a": 1, "b": [None, {"c": "x"}]})


@SETTINGS
@given(st.text(max_size=40))
def test_compiling_any_text_raises_only_invalid_pattern_errors(text: str) -> None:
    """Arbitrary text is either a pattern or an InvalidPatternError."""
    try:
        compile_pattern(text)
    except InvalidPatternError:
        pass


# Patterns from the whole grammar over a small vocabulary, so they often match. -------------

STRINGS = st.sampled_from(["", "x", "xy", "Xy", "10.0.0.1", "a*b"])
ITEMS = st.one_of(
    SCALARS,
    st.builds(lambda s: {"prefix": s}, STRINGS),
    st.builds(lambda s: {"suffix": s}, STRINGS),
    st.builds(lambda s: {"equals-ignore-case": s}, STRINGS),
    st.builds(lambda s: {"prefix": {"equals-ignore-case": s}}, STRINGS),
    st.builds(lambda s: {"wildcard": s}, st.sampled_from(["*", "x*", "*y", "x*y", "", "a\\*b"])),
    st.builds(lambda s: {"anything-but": s}, st.one_of(STRINGS, st.integers(-2, 2))),
    st.builds(lambda s: {"anything-but": {"prefix": s}}, st.sampled_from(["x", "y"])),
    st.builds(lambda s: {"anything-but": {"wildcard": s}}, st.sampled_from(["x*", "*"])),
    st.builds(lambda n: {"numeric": [">", n]}, st.integers(-2, 2)),
    st.builds(lambda n: {"numeric": [">=", n, "<", n + 2]}, st.integers(-2, 2)),
    st.builds(lambda n: {"numeric": ["=", n]}, st.sampled_from([0, 1, 2**53])),
    st.builds(lambda b: {"exists": b}, st.booleans()),
    st.just({"cidr": "10.0.0.0/8"}),
)
VALUE_LISTS = st.lists(ITEMS, min_size=1, max_size=3)
PATTERN_OBJECTS: st.SearchStrategy[dict[str, Any]] = st.recursive(
    st.dictionaries(KEYS, VALUE_LISTS, min_size=1, max_size=2),
    lambda inner: st.one_of(
        st.dictionaries(KEYS, st.one_of(VALUE_LISTS, inner), min_size=1, max_size=3),
        st.builds(
            lambda base, alternatives: {**base, "$or": alternatives},
            st.dictionaries(KEYS, VALUE_LISTS, max_size=1),
            st.lists(inner, min_size=2, max_size=3),
        ),
    ),
    max_leaves=6,
)


@SETTINGS
@given(st.lists(PATTERN_OBJECTS, min_size=1, max_size=6), st.lists(OBJECT_EVENTS, max_size=5))
def test_pattern_set_agrees_with_each_pattern_alone(
    patterns: list[dict[str, Any]], events: list[dict[str, Any]]
) -> None:
    """PatternSet.matches names exactly the patterns whose own matches() is true."""
    compiled = {}
    for i, pattern in enumerate(patterns):
        try:
            compiled[f"p{i}"] = compile_pattern(pattern)
        except InvalidPatternError:
            continue
    pattern_set = PatternSet()
    for name, pattern in compiled.items():
        pattern_set.add(name, pattern)
    for event in events:
        expected = {name for name, pattern in compiled.items() if pattern.matches(event)}
        assert pattern_set.matches(event) == expected


@SETTINGS
@given(PATTERN_OBJECTS, OBJECT_EVENTS)
def test_source_compiles_to_the_same_matcher(
    pattern: dict[str, Any], event: dict[str, Any]
) -> None:
    """Pattern.source sent as JSON text compiles back to a pattern with the same verdicts."""
    try:
        compiled = compile_pattern(pattern)
    except InvalidPatternError:
        return
    again = compile_pattern(json.dumps(compiled.source))
    assert again.matches(event) is compiled.matches(event)


@SETTINGS
@given(
    st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False),
    st.integers(-(2**60), 2**60),
)
def test_numeric_ranges_agree_with_float64(low: float, value: int) -> None:
    """§8: a numeric bound compares like float64 arithmetic on the event's number."""
    pattern = compile_pattern({"n": [{"numeric": [">", low]}]})
    # §8 / issue 11: an integer whose float64 does not print back as itself is in no range.
    comparable = abs(value) <= 2**53 or Decimal(repr(float(value))) == value
    assert pattern.matches({"n": value}) is (comparable and float(value) > low)
    assert math.isfinite(low)


def event_text(pairs: list[tuple[str, Any]]) -> str:
    """JSON text of an object whose keys may repeat (a dict cannot hold that)."""
    return "{" + ",".join(f"{json.dumps(key)}:{json.dumps(value)}" for key, value in pairs) + "}"


@SETTINGS
@given(
    st.lists(PATTERN_OBJECTS, min_size=1, max_size=6),
    st.lists(st.integers(0, 5), max_size=3),
    st.lists(st.lists(st.tuples(KEYS, EVENTS), max_size=5), max_size=4),
)
def test_pattern_set_agrees_after_removals_and_on_repeated_keys(
    patterns: list[dict[str, Any]], removed: list[int], events: list[list[tuple[str, Any]]]
) -> None:
    """PatternSet.matches == {names whose Pattern.matches}, after removals, for events whose
    text repeats keys (issue 11: event-ruler's own multi-rule Machine broke this 4,356 times)."""
    compiled = {}
    pattern_set = PatternSet()
    for i, pattern in enumerate(patterns):
        try:
            compiled[f"p{i}"] = compile_pattern(pattern)
        except InvalidPatternError:
            continue
        pattern_set.add(f"p{i}", compiled[f"p{i}"])
    pattern_set.matches({})  # build the index, so the removals below must rebuild it
    for i in removed:
        if f"p{i}" in compiled:
            del compiled[f"p{i}"]
            pattern_set.remove(f"p{i}")
    for pairs in events:
        event = load_event(event_text(pairs))
        expected = {name for name, pattern in compiled.items() if pattern.matches(event)}
        assert pattern_set.matches(event) == expected


@SETTINGS
@given(PATTERN_OBJECTS, PATTERN_OBJECTS, OBJECT_EVENTS)
def test_repeated_pattern_keys_compile_like_their_merged_source(
    first: dict[str, Any], second: dict[str, Any], event: dict[str, Any]
) -> None:
    """Text repeating keys (two objects' members in one) matches like its merged source."""
    members = [*first.items(), *second.items()]
    text = "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in members) + "}"
    try:
        compiled = compile_pattern(text)
    except InvalidPatternError:
        return
    again = compile_pattern(compiled.source)
    assert again.matches(event) is compiled.matches(event)
