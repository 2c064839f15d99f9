"""The handler worker: imports a Lambda-style handler once, then calls it for each event.

Run by ``hookcli.targets.handler`` as ``python -B -m hookcli.targets._worker FILE FUNCTION``.
Stdlib only, and nothing heavy imported, so a restart after an edit is quick.

Protocol (both ways): frames of a 4-byte big-endian length and that many bytes of UTF-8 JSON.

    worker -> parent   {"type": "ready"}  or  {"type": "import-error", "error", "traceback"}
    parent -> worker   {"type": "invoke", "event", "timeout"}
    worker -> parent   {"type": "result", "ok": true, "value", "output"}
                       {"type": "result", "ok": false, "error", "traceback", "output"}

The frames use private copies of the original stdin and stdout; fd 0 then reads /dev/null and
fd 1 goes to stderr, so nothing the handler prints or reads can corrupt the protocol. During a
call, fds 1 and 2 point at a scratch file, which captures the handler's output (print, logging,
child processes alike) for the result: its first ``OUTPUT_LIMIT`` bytes, shown under the event.
"""

from __future__ import annotations

import faulthandler
import importlib.machinery
import importlib.util
import inspect
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import TracebackType
from typing import IO, Any

#: What goes back to the parent: return value text, captured output, traceback (characters).
VALUE_LIMIT = 2048
OUTPUT_LIMIT = 4096
TRACEBACK_LIMIT = 8192
#: Lambda's default memory size; a string, as the Lambda Python runtime gives it.
MEMORY_LIMIT_IN_MB = "128"


class LambdaContext:
    """The ``context`` argument, with the attributes and method of AWS Lambda's Python one."""

    def __init__(self, request_id: str, function_name: str, timeout: float) -> None:
        self.aws_request_id = request_id
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"
        self.memory_limit_in_mb = MEMORY_LIMIT_IN_MB
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "hook/local"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until this invocation's timeout, as Lambda counts them."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _FreshLoader(importlib.machinery.SourceFileLoader):
    """Compile the handler file from source every time: a cached .pyc written in the same
    second as an edit of the same size would look current and run the old code."""

    def get_code(self, fullname: str) -> Any:
        return compile(self.get_data(self.path), self.path, "exec", dont_inherit=True)


def load(path: Path, function: str) -> tuple[str, Any]:
    """Import ``path`` as a module (its folder first on sys.path) and return (name, callable)."""
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = path.stem if path.stem not in sys.modules else f"_hook_handler_{path.stem}"
    loader = _FreshLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so the module can be found by pickle, dataclasses, siblings
    loader.exec_module(module)
    handler = getattr(module, function, None)
    if handler is None:
        raise AttributeError(f"{path.name} has no function {function!r}")
    if not callable(handler):
        raise TypeError(f"{path.name}: {function} is a {type(handler).__name__}, not a function")
    return f"{path.stem}:{function}", handler


def main(argv: list[str]) -> int:
    """Serve invocations until the parent closes our stdin."""
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    # A crash (segfault) dumps its traceback to the real stderr, even mid-call.
    crash_log = os.fdopen(os.dup(2), "w")
    faulthandler.enable(crash_log)
    path, function = Path(argv[0]), argv[1]
    try:
        function_name, handler = load(path, function)
    except BaseException as exc:  # SystemExit or KeyboardInterrupt at import are bad imports too
        send(replies, {"type": "import-error", "error": _one_line(exc), "traceback": _trace(exc)})
        return 0
    send(replies, {"type": "ready"})
    scratch = tempfile.TemporaryFile()
    while (request := receive(requests)) is not None:
        send(replies, invoke(handler, function_name, request, scratch))
    return 0


def invoke(
    handler: Any, function_name: str, request: dict[str, Any], scratch: IO[bytes]
) -> dict[str, Any]:
    """Call the handler once with its output captured; the reply frame for the parent."""
    event = request["event"]
    # The id comes apart from the event: a transformed input need not be an object.
    event_id = request.get("id") or (event.get("id", "") if isinstance(event, dict) else "")
    context = LambdaContext(str(event_id), function_name, float(request["timeout"]))
    _flush()
    scratch.seek(0)
    scratch.truncate()
    saved = os.dup(1), os.dup(2)
    os.dup2(scratch.fileno(), 1)
    os.dup2(scratch.fileno(), 2)
    try:
        value = handler(event, context)
        if inspect.isawaitable(value):  # an async def handler
            import asyncio

            value = asyncio.run(_awaited(value))
    except BaseException as exc:
        reply: dict[str, Any] = {
            "type": "result",
            "ok": False,
            "error": _one_line(exc),
            "traceback": _trace(exc),
        }
    else:
        reply = {"type": "result", "ok": True, "value": _encode(value)}
    finally:
        _flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
    # The start of what it printed: the lines shown under the event's line.
    size = scratch.seek(0, os.SEEK_END)
    scratch.seek(0)
    output = scratch.read(OUTPUT_LIMIT).decode("utf-8", "replace")
    reply["output"] = output if size <= OUTPUT_LIMIT else output + "\u2026"
    return reply


async def _awaited(value: Any) -> Any:
    return await value


def send(stream: IO[bytes], message: dict[str, Any]) -> None:
    """Write one frame."""
    data = json.dumps(message, ensure_ascii=False, default=str).encode()
    stream.write(len(data).to_bytes(4, "big") + data)
    stream.flush()


def receive(stream: IO[bytes]) -> dict[str, Any] | None:
    """Read one frame; None at end of input (the parent is done with us)."""
    header = stream.read(4)
    if len(header) < 4:
        return None
    data = stream.read(int.from_bytes(header, "big"))
    message: dict[str, Any] = json.loads(data)
    return message


def _encode(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError) as exc:  # e.g. a circular structure
        text = f"<not JSON: {exc}>"
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 1] + "\u2026"


def _one_line(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "\u2026"


def _trace(exc: BaseException) -> str:
    """The traceback without this module's and importlib's own frames."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and _is_ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return text if len(text) <= TRACEBACK_LIMIT else "\u2026" + text[-TRACEBACK_LIMIT:]


def _is_ours(filename: str) -> bool:
    return filename == __file__ or filename.startswith("<frozen importlib")


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed or replaced by the handler
            pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
