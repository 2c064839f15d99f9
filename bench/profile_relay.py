"""Where the relay spends its CPU per webhook: ``bench/webhooks.py``'s ingest load, the relay alone.

    python bench/profile_relay.py [--count N] [--profile FILE] [--code DIR]

Starts ``hook relay serve --ingest-only`` in its own process (under ``-m cProfile -o FILE`` with
``--profile``; ``--code DIR`` runs another checkout's relay, for A/B runs interleaved in one
shell loop), subscribes one raw websocket listener that answers every event in ``results``
messages (flushed every 5 ms, as ``hook listen`` does while catching up), then SENDERS
connections POST ``--count`` of webhooks.py's signed 1 KiB webhooks back to back. Prints one
JSON line: the relay's CPU µs per webhook from the first POST to the last event received, and
with ``--profile`` the top functions by own time (µs per webhook) on stderr. Profiled figures
are inflated by cProfile's cost per call; compare profiles with profiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    PHASE_SECONDS,
    Child,
    CpuMeter,
    RawHttp,
    cpu_seconds,
    emit,
    python,
    relay_auth,
    result_item,
    subscribe,
)
from webhooks import CHANNEL, SENDERS, build_requests, send
from websockets.asyncio.client import connect

_RUN_FROM = (
    "import runpy, sys; sys.path.insert(0, {code!r}); sys.argv[0] = 'hook'; "
    "runpy.run_module('hookcli', run_name='__main__', alter_sys=True)"
)


async def listener(url: str, count: int, ready: asyncio.Event) -> float:
    """Receive ``count`` events, answering them every 5 ms; when the last one arrived."""
    ws_url = url.replace("http", "ws", 1) + "/v1/stream"
    batch: list[str] = []
    async with connect(ws_url, additional_headers=relay_auth(), max_size=None) as ws:
        await subscribe(ws, "profile", {}, "now", window=1000)
        ready.set()

        async def answer() -> None:
            while True:
                await asyncio.sleep(0.005)
                if batch:
                    items = ",".join(batch)
                    batch.clear()
                    await ws.send('{"type":"results","items":[' + items + "]}")

        answering = asyncio.create_task(answer())
        received = 0
        try:
            async with asyncio.timeout(PHASE_SECONDS * 2):
                async for text in ws:
                    message = json.loads(text)
                    if message["type"] != "event":
                        continue
                    batch.append(result_item(message["seq"], message["event"]["id"]))
                    received += 1
                    if received == count:
                        break
            last = time.perf_counter()
            await asyncio.sleep(0.05)  # the last results reach the relay
        finally:
            answering.cancel()
    return last


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hook-bench-profile-relay-") as tmp:
        profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
        hookcli = ["-m", "hookcli"]
        if args.code:
            launcher = Path(tmp) / "hook_from_checkout.py"  # a file: cProfile runs files
            launcher.write_text(_RUN_FROM.format(code=str(Path(args.code).resolve())))
            hookcli = [str(launcher)]
        child = await Child.start(
            [python(), *profile, *hookcli, "relay", "serve", "--ingest-only", "--port", "0"]
            + ["--data-dir", tmp, "--max-events", "1000000"],
            "relay",
        )
        try:
            line = await child.wait_line("listening on")
            url = line.rsplit(" ", 1)[-1].strip()
            pid = child.proc.pid
            path = f"/v1/ingest/{CHANNEL}"
            requests = build_requests("profile", path, args.count)
            warm = build_requests("warm", path, 200)
            ready = asyncio.Event()
            listening = asyncio.create_task(listener(url, args.count + len(warm), ready))
            await asyncio.wait_for(ready.wait(), PHASE_SECONDS)
            following = iter(range(args.count))
            pool = [await RawHttp.open(url) for _ in range(SENDERS)]
            for n, request in enumerate(warm):
                await send(pool[n % SENDERS], request)
            meter = CpuMeter(relay=pid)
            before = cpu_seconds(pid)

            async def sender(http: RawHttp) -> None:
                for n in following:
                    if await send(http, requests[n]) != 202:
                        raise RuntimeError(f"webhook {n} not accepted")

            began = time.perf_counter()
            async with asyncio.timeout(PHASE_SECONDS * 2):
                await asyncio.gather(*(sender(http) for http in pool))
                last = await listening
            relay_seconds = cpu_seconds(pid) - before
            cpu = meter.percent()
            for http in pool:
                await http.close()
        finally:
            err = await child.stop()
    seconds = last - began
    figures: dict[str, Any] = {
        "bench": "profile_relay",
        "webhooks": args.count,
        "accepted_per_s": round(args.count / seconds),
        "relay_cpu_us_per_webhook": round(relay_seconds * 1e6 / args.count),
        "other_cpu_pct": cpu.get("other_cpu_pct"),
    }
    if args.profile:
        if not Path(args.profile).exists():
            raise RuntimeError("the relay wrote no profile: " + err)
        top(args.profile, args.count + 200)
    return figures


def top(path: str, count: int, rows: int = 30) -> None:
    """The top functions by own time, µs per webhook, to stderr."""
    stats = pstats.Stats(path)
    entries = stats.stats  # type: ignore[attr-defined]
    ordered = sorted(entries.items(), key=lambda kv: kv[1][2], reverse=True)
    total = sum(v[2] for v in entries.values())
    calls = sum(v[1] for v in entries.values())
    sys.stderr.write(f"total own {total * 1e6 / count:.0f} us/webhook, {calls / count:.0f} calls\n")
    for (file, lineno, name), (_cc, nc, tt, ct, _callers) in ordered[:rows]:
        where = f"{Path(file).parent.name}/{Path(file).name}:{lineno}({name})"
        sys.stderr.write(
            f"{tt * 1e6 / count:8.1f} {ct * 1e6 / count:8.1f} {nc / count:6.2f}  {where}\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--profile", help="run the relay under cProfile, writing this file")
    parser.add_argument("--code", help="run this checkout's relay (A/B)")
    emit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
