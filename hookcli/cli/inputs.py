"""Reading command-line values that may be JSON text, ``@path`` or ``-`` (standard input)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from hookcli.errors import UsageError
from hookcli.events import Document, split_documents


def read_text(value: str, what: str) -> str:
    """The text behind ``value``: ``@path`` reads a file, ``-`` stdin, else the value itself."""
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
    _refuse_file_name(value, what)
    return value


def _refuse_file_name(value: str, what: str) -> None:
    """A value that is not JSON but names a file was meant as ``@file``: say so, rather than
    let the JSON parser answer ``Expecting value: line 1 column 1``."""
    import json

    text = value.strip()
    if not text or text[0] in "{[":
        return
    try:
        json.loads(text)
    except ValueError:
        if Path(text).expanduser().is_file():
            raise UsageError(
                f"{what}: {text!r} is a file name, not JSON", hint=f"did you mean @{text}?"
            ) from None


def read_documents(path: str, what: str) -> list[Document]:
    """The event objects in a file (or ``-`` for stdin): JSON Lines, a JSON array or one object."""
    text = read_text(path if path == "-" else "@" + path, what)
    return split_documents(text, "stdin" if path == "-" else path)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZES = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_duration(value: str, what: str) -> float:
    """``30s``, ``15m``, ``12h``, ``7d``, ``2w`` or plain seconds."""
    text = value.strip().lower()
    unit = text[-1:] if text[-1:] in _UNITS else "s"
    number = text[:-1] if text[-1:] in _UNITS else text
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        raise UsageError(f"{what}: {value!r} is not a duration", hint="e.g. 30m, 12h, 7d") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"{what} must be positive")
    return seconds


def parse_size(value: str, what: str) -> int:
    """``1MiB``, ``512KiB``, ``2MB`` or plain bytes."""
    text = value.strip().lower().replace(" ", "")
    digits = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(digits) :]
    if unit not in _SIZES or not digits:
        raise UsageError(f"{what}: {value!r} is not a size", hint="e.g. 1MiB, 256KiB")
    try:
        size = int(float(digits) * _SIZES[unit])
    except (ValueError, OverflowError):
        raise UsageError(f"{what}: {value!r} is not a size", hint="e.g. 1MiB, 256KiB") from None
    if size <= 0:
        raise UsageError(f"{what} must be positive")
    return size
