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
TEXT = st.sampled_from(
    ["", "x", "xy", "Xy", "yx", "XY", "xyx", "10.0.0.1", "2001:db8::1", "a*b", "é", "É", "xÉ"]
)
NUMBERS = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.5, 1e300, -0.0, 2**53, 2**53 + 1]),
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

STRINGS = st.sampled_from(["", "x", "xy", "Xy", "10.0.0.1", "a*b", "é", "É", "xÉ"])
GLOBS = st.sampled_from(["*", "x*", "*y", "x*y", "", "a\\*b", "*x*", "x*y*", "*é", "X*y*x"])
BOUNDS = st.sampled_from([-2, -1, 0, 0.5, 1, 1.5, 2, 2**53])
STRING_LISTS = st.lists(STRINGS.filter(bool), min_size=1, max_size=2)
ITEMS = st.one_of(
    SCALARS,
    st.builds(lambda s: {"prefix": s}, STRINGS),
    st.builds(lambda s: {"suffix": s}, STRINGS),
    st.builds(lambda s: {"equals-ignore-case": s}, STRINGS),
    st.builds(lambda s: {"prefix": {"equals-ignore-case": s}}, STRINGS),
    st.builds(lambda s: {"suffix": {"equals-ignore-case": s}}, STRINGS),
    st.builds(lambda s: {"wildcard": s}, GLOBS),
    st.builds(lambda s: {"anything-but": s}, st.one_of(STRINGS, st.integers(-2, 2))),
    st.builds(lambda s: {"anything-but": s}, st.one_of(STRING_LISTS, st.lists(BOUNDS, min_size=1))),
    st.builds(
        lambda s: {"anything-but": {"prefix": s}}, st.one_of(STRING_LISTS, STRINGS.filter(bool))
    ),
    st.builds(
        lambda s: {"anything-but": {"suffix": s}}, st.one_of(STRING_LISTS, STRINGS.filter(bool))
    ),
    st.builds(
        lambda s: {"anything-but": {"equals-ignore-case": s}}, st.one_of(STRINGS, STRING_LISTS)
    ),
    st.builds(
        lambda s: {"anything-but": {"wildcard": s}},
        st.one_of(GLOBS, st.lists(GLOBS, min_size=1, max_size=2)),
    ),
    st.builds(
        lambda op, n: {"numeric": [op, n]}, st.sampled_from([">", ">=", "<", "<=", "="]), BOUNDS
    ),
    st.builds(
        lambda low, width, ops: {"numeric": [ops[0], low, ops[1], low + width]},
        BOUNDS,
        st.sampled_from([0.5, 1, 2]),
        st.sampled_from([(">", "<"), (">=", "<"), (">", "<="), (">=", "<=")]),
    ),
    st.builds(lambda b: {"exists": b}, st.booleans()),
    st.builds(
        lambda c: {"cidr": c},
        st.sampled_from(["10.0.0.0/8", "10.0.0.1/31", "2001:db8::/32", "::/0"]),
    ),
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


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 4), PATTERN_OBJECTS),
        st.tuples(st.just("remove"), st.integers(0, 4), st.none()),
    ),
    min_size=1,
    max_size=10,
)


@SETTINGS
@given(OPERATIONS, st.lists(OBJECT_EVENTS, min_size=1, max_size=3))
def test_pattern_set_agrees_after_every_add_replace_and_remove(
    operations: list[tuple[str, int, dict[str, Any] | None]], events: list[dict[str, Any]]
) -> None:
    """The incrementally kept index agrees with Pattern.matches after every change to the set."""
    compiled = {}
    pattern_set = PatternSet()
    for operation, i, pattern in operations:
        name = f"p{i}"
        if operation == "add":
            try:
                compiled[name] = compile_pattern(pattern or {})
            except InvalidPatternError:
                continue
            pattern_set.add(name, compiled[name])
        elif name in compiled:
            del compiled[name]
            pattern_set.remove(name)
        for event in events:
            expected = {name for name, pattern in compiled.items() if pattern.matches(event)}
            assert pattern_set.matches(event) == expected


@SETTINGS
@given(st.lists(VALUE_LISTS, min_size=1, max_size=40), st.lists(SCALARS, min_size=1, max_size=4))
def test_many_value_lists_on_one_path_agree_with_each_pattern(
    value_lists: list[list[Any]], values: list[Any]
) -> None:
    """Dozens of conditions on one path (shared range bounds, affix lengths, exclusion lists)
    index to exactly the patterns whose own matches() is true, for one leaf or an array."""
    compiled = {}
    pattern_set = PatternSet()
    for i, value_list in enumerate(value_lists):
        try:
            compiled[f"p{i}"] = compile_pattern({"a": value_list})
        except InvalidPatternError:
            continue
        pattern_set.add(f"p{i}", compiled[f"p{i}"])
    for event in [{"a": value} for value in values] + [{"a": values}, {"b": 1}]:
        expected = {name for name, pattern in compiled.items() if pattern.matches(event)}
        assert pattern_set.matches(event) == expected


def agree_on_one_path(value_lists: list[list[Any]], events: list[dict[str, Any]]) -> None:
    """Assert PatternSet names exactly the patterns {"a": value_list} whose matches() is true."""
    compiled = {}
    pattern_set = PatternSet()
    for i, value_list in enumerate(value_lists):
        try:
            compiled[f"p{i}"] = compile_pattern({"a": value_list})
        except InvalidPatternError:
            continue
        pattern_set.add(f"p{i}", compiled[f"p{i}"])
    for event in events:
        expected = {name for name, pattern in compiled.items() if pattern.matches(event)}
        assert pattern_set.matches(event) == expected


NUMERIC_ITEMS = st.one_of(
    st.builds(
        lambda op, n: {"numeric": [op, n]}, st.sampled_from([">", ">=", "<", "<=", "="]), BOUNDS
    ),
    st.builds(
        lambda low, width, ops: {"numeric": [ops[0], low, ops[1], low + width]},
        BOUNDS,
        st.sampled_from([0.5, 1, 3]),
        st.sampled_from([(">", "<"), (">=", "<"), (">", "<="), (">=", "<=")]),
    ),
    st.builds(lambda n: {"anything-but": n}, st.lists(BOUNDS, min_size=1, max_size=2)),
    BOUNDS,
)


@SETTINGS
@given(
    st.lists(st.lists(NUMERIC_ITEMS, min_size=1, max_size=3), min_size=1, max_size=30),
    st.lists(st.one_of(BOUNDS, st.sampled_from([-3, -1.5, 0.25, 2.5, 4, 2**53 + 1])), max_size=4),
)
def test_numeric_conditions_on_one_path_agree_with_each_pattern(
    value_lists: list[list[Any]], numbers: list[Any]
) -> None:
    """§8: bounds equal to, between and beyond the ranges' (open and closed) pick the same
    patterns as each pattern alone, several ranges and exclusions per value list included."""
    agree_on_one_path(value_lists, [{"a": n} for n in numbers] + [{"a": numbers}])


WORDS = st.sampled_from(["x", "xy", "Xy", "yx", "xyz", "é", "É"])
EXCLUSION_ITEMS = st.one_of(
    *(
        st.builds(lambda s, op=op: {"anything-but": {op: s}} if op else {"anything-but": s}, values)
        for op, values in (
            ("", st.one_of(WORDS, st.lists(WORDS, min_size=1, max_size=3))),
            ("prefix", st.one_of(WORDS, st.lists(WORDS, min_size=1, max_size=2))),
            ("suffix", st.one_of(WORDS, st.lists(WORDS, min_size=1, max_size=2))),
            ("equals-ignore-case", st.lists(WORDS, min_size=1, max_size=2)),
            ("wildcard", st.lists(st.sampled_from(["x*", "*y", "*y*", "x*z"]), min_size=1)),
        )
    ),
    st.builds(lambda s: {"equals-ignore-case": s}, WORDS),
)


@SETTINGS
@given(
    st.lists(st.lists(EXCLUSION_ITEMS, min_size=1, max_size=3), min_size=1, max_size=30),
    st.lists(st.one_of(WORDS, st.sampled_from(["", "XYZ", "xÉ", "zz"]), NUMBERS), max_size=4),
)
def test_anything_but_conditions_on_one_path_agree_with_each_pattern(
    value_lists: list[list[Any]], values: list[Any]
) -> None:
    """§7: anything-but lists OR'ed in one value list (a value passes if any one lets it
    through) index to the same patterns as each pattern alone."""
    agree_on_one_path(value_lists, [{"a": v} for v in values] + [{"a": values}, {"a": None}])


ELEMENT = st.dictionaries(st.sampled_from(["b", "c"]), st.one_of(WORDS, st.integers(0, 2)))
ARRAY_PATTERN = st.dictionaries(
    st.sampled_from(["b", "c"]),
    st.lists(
        st.one_of(WORDS, st.integers(0, 2), st.builds(lambda b: {"exists": b}, st.booleans())),
        min_size=1,
        max_size=2,
    ),
    min_size=1,
)


@SETTINGS
@given(
    st.lists(st.tuples(ARRAY_PATTERN, st.one_of(st.none(), WORDS)), min_size=1, max_size=8),
    st.lists(st.lists(ELEMENT, max_size=3), min_size=1, max_size=3),
)
def test_conditions_in_arrays_of_objects_agree_with_each_pattern(
    patterns: list[tuple[dict[str, Any], str | None]], arrays: list[list[dict[str, Any]]]
) -> None:
    """§1.5/§9: fields of one array's objects (exists:false too) must hold in one element;
    PatternSet's confirmation of such sub-rules agrees with each pattern alone."""
    compiled = {}
    pattern_set = PatternSet()
    for i, (fields, top) in enumerate(patterns):
        pattern: dict[str, Any] = {"a": fields}
        if top is not None:
            pattern["t"] = [top]
        compiled[f"p{i}"] = compile_pattern(pattern)
        pattern_set.add(f"p{i}", compiled[f"p{i}"])
    for array in arrays:
        for event in ({"a": array, "t": "x"}, {"a": array, "t": ["xy", "x"]}):
            expected = {name for name, pattern in compiled.items() if pattern.matches(event)}
            assert pattern_set.matches(event) == expected
