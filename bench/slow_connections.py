"""Slow-connection flood: does a relay with default settings stay usable, and its log small?

    .venv/bin/python bench/slow_connections.py [CONNECTIONS] [SECONDS]   # default 1100 25, ~35 s

Starts ``hook relay serve --ingest-only`` (default connection settings, a token) in its own
process with the open-file limit at 1,024 (soft and hard, as on many servers), measures
``GET /v1/health`` with no load (the baseline), then opens CONNECTIONS connections from
127.0.0.1 that each send half a request and stop, and for SECONDS keeps measuring health and
ingesting one webhook a second. Prints one JSON line: health latencies before and during the
flood, how many health/ingest requests succeeded, how many flood connections the relay
answered or closed, and the relay's log size (lines, bytes, tracebacks).
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import HOST, emit, python, summary_ms

TOKEN = "bench-slow-connections-token-0123"
NOFILE = 1024


def _limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


async def _request(port: int, raw: bytes, timeout: float = 10.0) -> tuple[str, float]:
    """Send one raw request on a new connection; its status (or the error) and duration."""
    began = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(raw)
            answer = await reader.read()
            writer.close()
        return answer.split(b" ", 2)[1].decode(), time.perf_counter() - began
    except (OSError, TimeoutError, IndexError) as exc:
        return type(exc).__name__, time.perf_counter() - began


def _health() -> bytes:
    return b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def _ingest(number: int) -> bytes:
    body = b'{"n": %d}' % number
    return (
        b"POST /v1/ingest/bench HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )


async def measure(port: int, connections: int, seconds: float) -> dict[str, object]:
    """The baseline, then the flood; every loop bounded by count and time."""
    baseline = [await _request(port, _health()) for _ in range(10)]
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    began = time.perf_counter()
    for _ in range(connections):
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            break
        writer.write(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        held.append((reader, writer))
    opened_in = time.perf_counter() - began
    health: list[tuple[str, float]] = []
    ingest: list[tuple[str, float]] = []
    end = time.perf_counter() + seconds
    number = 0
    while time.perf_counter() < end and number < seconds * 2:
        health.append(await _request(port, _health()))
        ingest.append(await _request(port, _ingest(number)))
        number += 1
        await asyncio.sleep(0.5)
    answered = sum(1 for reader, _ in held if reader.at_eof() or len(reader._buffer) > 0)  # noqa: SLF001
    for _, writer in held:
        writer.close()
    return {
        "connections": len(held),
        "open_seconds": round(opened_in, 2),
        "baseline_health": summary_ms([d for s, d in baseline if s == "200"]),
        "flood_health": summary_ms([d for s, d in health if s == "200"]),
        "flood_health_ok": f"{sum(s == '200' for s, _ in health)}/{len(health)}",
        "flood_ingest_ok": f"{sum(s == '202' for s, _ in ingest)}/{len(ingest)}",
        "flood_answered_or_closed": answered,
    }


def main() -> None:
    connections = int(sys.argv[1]) if len(sys.argv) > 1 else 1100
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 25.0
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "relay.log"
        with log.open("wb") as stderr:
            relay = subprocess.Popen(
                [python(), "-m", "hookcli", "relay", "serve", "--ingest-only", "--port", "0"]
                + ["--token", TOKEN, "--data-dir", folder],
                stdout=subprocess.PIPE,
                stderr=stderr,
                preexec_fn=_limit_files,
            )
            try:
                assert relay.stdout is not None
                line = relay.stdout.readline().decode()
                port = int(line.rsplit(":", 1)[1])
                figures = asyncio.run(measure(port, connections, seconds))
            finally:
                relay.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    relay.wait(10)
                relay.kill()
        text = log.read_bytes()
    figures |= {
        "nofile": NOFILE,
        "log_lines": text.count(b"\n"),
        "log_bytes": len(text),
        "log_tracebacks": text.count(b"Traceback"),
        "flood_seconds": seconds,
    }
    emit(figures)


if __name__ == "__main__":
    main()
