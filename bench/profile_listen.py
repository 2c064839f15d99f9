"""Where ``hook listen`` spends its CPU per event: a stored backlog, the real CLI, cProfile.

    python bench/profile_listen.py [--webhooks [--live]] [--count N] [--concurrency C]
                                   [--profile FILE] [--code DIR]

Starts the target (``_common.py target``) and ``hook relay serve --ingest-only`` in processes of
their own, stores a backlog (EventBridge events via ``fill_store``, or with ``--webhooks``
webhooks POSTed to ``/v1/ingest`` with headers and ~1 KiB JSON bodies, as ``listen.py``'s
webhook phase does), then runs ``python -m hookcli listen --from 0 --json`` (under
``-m cProfile -o FILE`` with ``--profile``) until the target has every event. ``--live``: the
listener starts first (``--from now``) and the webhooks are POSTed while it runs, as in
``webhooks.py`` (events arrive one frame at a time, results leave while live). Prints one JSON
line: the listener's CPU µs per event, and with ``--profile`` the top functions by own time.
Profiled figures are inflated by cProfile's own cost per call; compare profiles with profiles.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from _common import (
    Child,
    CpuMeter,
    emit,
    fill_store,
    make_events,
    python,
    relay_process,
    server_process,
)
from listen import post_webhooks, reset_target, wait_count

_RUN_FROM = (
    "import runpy, sys; sys.path.insert(0, {code!r}); sys.argv[0] = 'hook'; "
    "runpy.run_module('hookcli', run_name='__main__', alter_sys=True)"
)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hook-bench-profile-") as tmp:
        data = Path(tmp)
        if not args.webhooks:
            fill_store(data, make_events(args.count, seed=1))
        async with server_process("target") as target, relay_process(data) as relay:
            if args.webhooks and not args.live:
                await post_webhooks(relay.url, args.count, seed=3)
            async with aiohttp.ClientSession() as session:
                await reset_target(session, target)
                profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
                hookcli = ["-m", "hookcli"]
                if args.code:  # another checkout's hook listen, for an A/B run
                    launcher = data / "hook_from_checkout.py"  # a file: cProfile runs files
                    launcher.write_text(_RUN_FROM.format(code=str(Path(args.code).resolve())))
                    hookcli = [str(launcher)]
                child = await Child.start(
                    [python(), *profile, *hookcli, "listen", "--relay", relay.url]
                    + ["--target", f"127.0.0.1:{target.port}", "--name", "profile"]
                    + ["--concurrency", str(args.concurrency), "--retries", "0"]
                    + ["--from", "now" if args.live else "0", "--json"],
                    "hook listen",
                )
                try:
                    await child.wait_line('"type":"ready"')
                    meter = CpuMeter(listener=child.proc.pid, relay=relay.pid, target=target.pid)
                    user_sys = _user_sys(child.proc.pid)
                    began = time.perf_counter()
                    if args.live:
                        await post_webhooks(relay.url, args.count, seed=3)
                    stats = await wait_count(session, target, args.count)
                    seconds = time.perf_counter() - began
                    cpu = meter.percent()
                    user, system = (
                        b - a for a, b in zip(user_sys, _user_sys(child.proc.pid), strict=True)
                    )
                finally:
                    err = await child.stop()
    got = stats["count"]
    figures: dict[str, Any] = {
        "bench": "profile_listen",
        "kind": ("live webhooks" if args.live else "webhooks") if args.webhooks else "events",
        "events": args.count,
        "received": got,
        "concurrency": args.concurrency,
        "code": args.code or "this checkout",
        "events_per_s": round(got / seconds),
        "listener_cpu_us_per_event": round(
            cpu["listener_cpu_pct"] * seconds * 10_000 / max(1, got)
        ),
        # The split says how much is Python (user) and how much the kernel (loopback sends,
        # epoll, pipe writes): only the user part moves with changes to hook's code.
        "listener_user_us_per_event": round(user * 1e6 / max(1, got)),
        "listener_sys_us_per_event": round(system * 1e6 / max(1, got)),
        **cpu,
    }
    if got < args.count:
        figures["stderr"] = err
    if args.profile:
        figures["calls_per_event"] = calls_per_event(args.profile, got)
        figures["top"] = top_functions(args.profile, got, args.top)
    return figures


def _user_sys(pid: int) -> tuple[float, float]:
    """User and system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def calls_per_event(path: str, events: int) -> float:
    """Python-level calls per event in the profile (start-up included): steps, load-free."""
    stats = pstats.Stats(path)
    return round(stats.total_calls / events, 1)  # type: ignore[attr-defined]


def top_functions(path: str, events: int, count: int) -> list[str]:
    """The ``count`` functions with the most own time: own and cumulative µs per event."""
    stats = pstats.Stats(path)
    rows = []
    for (file, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(file).name}:{line}({name})"
        rows.append((own, cumulative, calls, where))
    rows.sort(reverse=True)
    return [
        f"{own * 1e6 / events:7.1f} own {cum * 1e6 / events:7.1f} cum"
        f" {calls / events:6.2f}/ev {where}"
        for own, cum, calls, where in rows[:count]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--webhooks", action="store_true", help="a backlog of webhooks")
    parser.add_argument(
        "--live", action="store_true", help="with --webhooks: POST them while the listener runs"
    )
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--profile", help="run the listener under cProfile, writing this file")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--code", help="run the listener from this checkout (A/B against it)")
    figures = asyncio.run(run(parser.parse_args()))
    if "top" in figures:
        for line in figures.pop("top"):
            sys.stderr.write(line + "\n")
    emit(figures)


if __name__ == "__main__":
    main()
