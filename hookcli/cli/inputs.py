"""Reading command-line values that may be JSON text, ``@path`` or ``-`` (standard input)."""

from __future__ import annotations

import sys
from pathlib import Path

from hookcli.errors import UsageError


def read_text(value: str, what: str) -> str:
    """The text behind ``value``: ``@path`` reads a file, ``-`` reads stdin, else the value itself."""
    if value == "-":
        if sys.stdin is None or sys.stdin.closed:
            raise UsageError(f"{what}: '-' means standard input, but there is none")
        return sys.stdin.read()
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"{what}: no such file {str(path)!r}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{what}: cannot read {str(path)!r}: {exc}") from exc
    return value


def open_lines(path: str, what: str) -> list[tuple[int, str]]:
    """Non-blank lines of a JSONL file (or ``-`` for stdin) with their 1-based line numbers."""
    text = read_text(path if path == "-" else "@" + path, what)
    return [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
