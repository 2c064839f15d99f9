"""Command-line values: literal text, ``@file``, ``-`` for stdin; durations and sizes."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from hookcli.cli.inputs import parse_duration, parse_size, read_documents, read_text
from hookcli.errors import UsageError


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Standard input replaced by a StringIO the test fills."""
    fake = io.StringIO()
    monkeypatch.setattr(sys, "stdin", fake)
    return fake


# --- read_text ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ['{"source": ["a"]}', "", "plain", "a@b", " @x"])
def test_read_text_returns_literal(value: str) -> None:
    """A value not starting with ``@`` and not ``-`` is the text itself."""
    assert read_text(value, "pattern") == value


def test_read_text_reads_at_file(tmp_path: Path) -> None:
    """``@path`` reads the file as UTF-8."""
    path = tmp_path / "pattern.json"
    path.write_text('{"detail": {"note": ["caf\u00e9"]}}\n', encoding="utf-8")
    assert read_text(f"@{path}", "pattern") == '{"detail": {"note": ["caf\u00e9"]}}\n'


def test_read_text_missing_file_names_path(tmp_path: Path) -> None:
    """A missing ``@file`` is a UsageError naming what and the path."""
    path = tmp_path / "nope.json"
    with pytest.raises(UsageError) as info:
        read_text(f"@{path}", "pattern")
    assert info.value.message == f"pattern: no such file {str(path)!r}"
    assert info.value.exit_code == 2


@pytest.mark.parametrize("make", ["directory", "binary"])
def test_read_text_unreadable_file_is_usage_error(tmp_path: Path, make: str) -> None:
    """A directory or non-UTF-8 file is a UsageError saying it cannot be read."""
    path = tmp_path / "thing"
    if make == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(UsageError, match="event: cannot read"):
        read_text(f"@{path}", "event")


def test_read_text_dash_reads_stdin(stdin: io.StringIO) -> None:
    """``-`` reads all of standard input."""
    stdin.write('{"a": 1}\nmore\n')
    stdin.seek(0)
    assert read_text("-", "event") == '{"a": 1}\nmore\n'


@pytest.mark.parametrize("state", ["none", "closed"])
def test_read_text_dash_without_stdin(monkeypatch: pytest.MonkeyPatch, state: str) -> None:
    """``-`` with no standard input is a UsageError, not a crash."""
    fake = io.StringIO()
    fake.close()
    monkeypatch.setattr(sys, "stdin", None if state == "none" else fake)
    with pytest.raises(UsageError, match="'-' means standard input, but there is none"):
        read_text("-", "event")


# --- read_documents ----------------------------------------------------------------------------

JSONL = '{"n": 1}\n\n   \n{"n": 2}\r\n\t\n{"n": 3}'


def test_read_documents_skips_blanks_with_line_numbers(tmp_path: Path) -> None:
    """Blank lines are skipped; the rest keep their 1-based line numbers."""
    path = tmp_path / "events.jsonl"
    path.write_text(JSONL)
    documents = read_documents(str(path), "--events")
    assert [(d.position, d.value) for d in documents] == [
        ("line 1", {"n": 1}),
        ("line 4", {"n": 2}),
        ("line 6", {"n": 3}),
    ]


def test_read_documents_dash_reads_stdin(stdin: io.StringIO) -> None:
    """``-`` reads the events from standard input."""
    stdin.write(JSONL)
    stdin.seek(0)
    assert [d.position for d in read_documents("-", "--events")] == ["line 1", "line 4", "line 6"]


def test_read_documents_missing_file(tmp_path: Path) -> None:
    """A missing events file is a UsageError naming it."""
    with pytest.raises(UsageError, match="--events: no such file"):
        read_documents(str(tmp_path / "none.jsonl"), "--events")


def test_read_documents_empty_file(tmp_path: Path) -> None:
    """An empty file has no events."""
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    assert read_documents(str(path), "--events") == []


# --- parse_duration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30", 30.0),
        ("30s", 30.0),
        ("1.5", 1.5),
        ("15m", 900.0),
        ("12h", 43200.0),
        ("7d", 604800.0),
        ("2w", 1209600.0),
        ("0.5h", 1800.0),
        (" 7D ", 604800.0),
        ("1e3", 1000.0),
    ],
)
def test_parse_duration(value: str, seconds: float) -> None:
    """Durations take s, m, h, d, w (any case) or plain seconds."""
    assert parse_duration(value, "--retention") == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "--retention: '' is not a duration"),
        ("soon", "--retention: 'soon' is not a duration"),
        ("10ms", "--retention: '10ms' is not a duration"),
        ("1y", "--retention: '1y' is not a duration"),
        ("m", "--retention: 'm' is not a duration"),
        ("0", "--retention must be positive"),
        ("0h", "--retention must be positive"),
        ("-5m", "--retention must be positive"),
    ],
)
def test_parse_duration_rejects(value: str, message: str) -> None:
    """A non-duration or a non-positive one is a UsageError saying which option."""
    with pytest.raises(UsageError) as info:
        parse_duration(value, "--retention")
    assert info.value.message == message


@pytest.mark.parametrize("value", ["nan", "inf", "infinity", "1e999"])
def test_parse_duration_rejects_non_finite(value: str) -> None:
    """NaN and infinite durations are UsageErrors."""
    with pytest.raises(UsageError):
        parse_duration(value, "--retention")


# --- parse_size --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("512", 512),
        ("512b", 512),
        ("1KB", 1000),
        ("1KiB", 1024),
        ("256kib", 262144),
        ("2MB", 2_000_000),
        ("1MiB", 1_048_576),
        ("1 MiB", 1_048_576),
        ("1.5MiB", 1_572_864),
        ("1GB", 1_000_000_000),
        ("1GiB", 1_073_741_824),
        ("1.9", 1),
    ],
)
def test_parse_size(value: str, size: int) -> None:
    """Sizes take B, KB, KiB, MB, MiB, GB, GiB (any case, spaces allowed) or plain bytes."""
    assert parse_size(value, "--max-body") == size


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "--max-body: '' is not a size"),
        ("MiB", "--max-body: 'MiB' is not a size"),
        ("1TB", "--max-body: '1TB' is not a size"),
        ("1 mebibyte", "--max-body: '1 mebibyte' is not a size"),
        ("1.2.3KB", "--max-body: '1.2.3KB' is not a size"),
        ("nan", "--max-body: 'nan' is not a size"),
        ("0", "--max-body must be positive"),
        ("0.5", "--max-body must be positive"),
        ("-1KB", "--max-body must be positive"),
    ],
)
def test_parse_size_rejects(value: str, message: str) -> None:
    """A non-size or a non-positive one is a UsageError saying which option."""
    with pytest.raises(UsageError) as info:
        parse_size(value, "--max-body")
    assert info.value.message == message


@pytest.mark.parametrize("value", ["1e999", "1e400KB"])
def test_parse_size_rejects_overflow(value: str) -> None:
    """A size too large for a float is a UsageError, not an OverflowError."""
    with pytest.raises(UsageError):
        parse_size(value, "--max-body")
