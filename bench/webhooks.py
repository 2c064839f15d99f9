"""Webhooks end to end: senders -> relay -> ``hook listen --target`` -> a local app, vs direct.

Issue 13's workload. Four processes: the relay (``python -m hookcli relay serve --ingest-only
--port 0``), the real CLI ``python -m hookcli listen --target URL --json`` (defaults otherwise;
stdout piped here and read line by line), the target (``python bench/webhooks.py target``: an
aiohttp app that checks every request's Stripe-style signature byte for byte and records when each
webhook id arrived), and this process (the senders and the clock). Senders use
``_common.RawHttp``-style kept-alive connections with pre-built requests, so this process is not
the limit. Times are ``perf_counter`` (CLOCK_MONOTONIC, one clock for every process).

- throughput: SENDERS concurrent senders, each POSTing 1 KiB JSON webhooks (a
  ``Stripe-Signature: t=..,v1=<hex HMAC-SHA256 of "t." + body>`` header) back to back for
  THROUGHPUT_SECONDS. Figures: delivered/s from the first send to the last arrival at the target,
  POSTs answered/s, and CPU microseconds per webhook for the relay, the listener and the target
  (from /proc/<pid>/stat over the same window). Baseline: the same senders POSTing straight to
  the target (requests/s, target CPU per request).
- latency: LATENCY_RATE webhooks/s on an absolute schedule (open loop), from just before the POST
  to the target's receipt; baseline: the same, straight to the target.
- exact and complete: the target counts signature mismatches (a byte changed anywhere in the body
  or the signature header) and how often each id arrived; every webhook the relay accepted (202)
  must arrive exactly once.

Goals (issue 13, quiet machine): delivered >= 1,200/s; relay <= 250 us and listener <= 200 us of
CPU per webhook; p99 at 50/s < 5 ms; 0 mismatches; nothing lost or duplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from _common import (
    HOST,
    PHASE_SECONDS,
    Child,
    RawHttp,
    Running,
    count_results,
    cpu_seconds,
    emit,
    machine_busy_seconds,
    python,
    relay_process,
    summary_ms,
)

SENDERS = 8
THROUGHPUT_SECONDS = 10.0
#: Pre-built requests per throughput phase: a bound on the loop, above any rate reached here.
MAX_WEBHOOKS = 60_000
BODY_BYTES = 1024
LATENCY_RATE = 50.0
LATENCY_WARMUP = 50
LATENCY_WEBHOOKS = 400
WARMUP_WEBHOOKS = 300
SECRET = b"whsec_bench_webhooks"
CHANNEL = "stripe"
TARGET_PATH = "/webhooks/stripe"
POLL_SECONDS = 0.02
DRAIN_SECONDS = 60.0


# ---------------------------------------------------------------------- webhooks


def webhook_body(webhook_id: str, n: int) -> bytes:
    """A Stripe-like event of exactly BODY_BYTES bytes of compact JSON, its id first."""
    head = (
        f'{{"id":"{webhook_id}","object":"event","api_version":"2024-06-20",'
        f'"created":{1_700_000_000 + n},"type":"payment_intent.succeeded","livemode":false,'
        f'"pending_webhooks":1,"request":{{"id":"req_{n:014d}","idempotency_key":null}},'
        f'"data":{{"object":{{"id":"pi_{n:024d}","object":"payment_intent",'
        f'"amount":{n % 9000 + 100},"currency":"eur","status":"succeeded",'
        f'"customer":"cus_{n % 997:014d}",'
        f'"description":"Order #{n} \\u2014 caf\u00e9 cr\u00e8me","metadata":{{"order":"o-{n:08d}",'
        f'"pad":"'
    )
    tail = '"}}}}'
    pad = BODY_BYTES - len((head + tail).encode())
    return (head + "x" * pad + tail).encode()


def signature(timestamp: int, body: bytes) -> str:
    """Stripe's scheme: ``t=<unix>,v1=<hex HMAC-SHA256 of "<t>." + body>``."""
    mac = hmac.new(SECRET, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def webhook_id(phase: str, n: int) -> str:
    return f"evt_{phase}_{n:08d}"


def build_requests(phase: str, path: str, count: int) -> list[bytes]:
    """``count`` complete HTTP/1.1 POSTs of distinct signed webhooks to ``path``."""
    stamp = int(time.time())
    requests = []
    for n in range(count):
        body = webhook_body(webhook_id(phase, n), n)
        requests.append(
            f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: Stripe/1.0\r\n"
            f"Content-Type: application/json; charset=utf-8\r\n"
            f"Stripe-Signature: {signature(stamp, body)}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    return requests


async def send(http: RawHttp, request: bytes) -> int:
    """Write one pre-built request on a kept-alive connection; the answer's status."""
    http.writer.write(request)
    head = await http.reader.readuntil(b"\r\n\r\n")
    marker = head.lower().find(b"content-length:")
    if marker < 0:
        raise RuntimeError(f"no Content-Length in {head!r}")
    length = int(head[marker + 15 : head.index(b"\r\n", marker)])
    await http.reader.readexactly(length)
    return int(head[9:12])


@contextlib.asynccontextmanager
async def connections(url: str, count: int) -> AsyncIterator[list[RawHttp]]:
    opened = [await RawHttp.open(url) for _ in range(count)]
    try:
        yield opened
    finally:
        for http in opened:
            await http.close()


async def flood(url: str, requests: Sequence[bytes], expect: int) -> tuple[int, float, float]:
    """SENDERS connections sending ``requests`` back to back for THROUGHPUT_SECONDS.

    Returns how many were answered ``expect``, the first send time and the last answer time.
    """
    following = iter(range(len(requests)))
    answered = 0
    async with connections(url, SENDERS) as pool:
        began = time.perf_counter()
        stop = began + THROUGHPUT_SECONDS

        async def sender(http: RawHttp) -> None:
            nonlocal answered
            for n in following:
                status = await send(http, requests[n])
                if status != expect:
                    raise RuntimeError(f"{url} answered {status}, not {expect}, to webhook {n}")
                answered += 1
                if time.perf_counter() >= stop:
                    return

        async with asyncio.timeout(THROUGHPUT_SECONDS + PHASE_SECONDS):
            await asyncio.gather(*(sender(http) for http in pool))
        ended = time.perf_counter()
    return answered, began, ended


async def paced(url: str, requests: Sequence[bytes], expect: int) -> dict[int, float]:
    """Send each request at its slot of LATENCY_RATE/s (open loop: a slow answer does not delay
    the next send); when each POST started, by index."""
    starts: dict[int, float] = {}
    async with connections(url, SENDERS) as pool:
        idle: asyncio.Queue[RawHttp] = asyncio.Queue()
        for http in pool:
            idle.put_nowait(http)

        async def post(n: int) -> None:
            http = await idle.get()
            try:
                starts[n] = time.perf_counter()
                status = await send(http, requests[n])
            finally:
                idle.put_nowait(http)
            if status != expect:
                raise RuntimeError(f"{url} answered {status}, not {expect}, to webhook {n}")

        tasks = []
        first = time.perf_counter() + 0.05
        async with asyncio.timeout(len(requests) / LATENCY_RATE + PHASE_SECONDS):
            for n in range(len(requests)):
                delay = first + n / LATENCY_RATE - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(post(n)))
            await asyncio.gather(*tasks)
    return starts


# ---------------------------------------------------------------------- the target's side


class Target:
    """The bench's handle on the target process: its stats over a plain connection."""

    def __init__(self, running: Running) -> None:
        self.running = running
        self.url = running.url
        self.pid = running.pid

    async def _call(self, method: str, path: str) -> dict[str, Any]:
        http = await RawHttp.open(self.url)
        try:
            http.writer.write(
                f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 0\r\n\r\n".encode()
            )
            head = await http.reader.readuntil(b"\r\n\r\n")
            marker = head.lower().find(b"content-length:")
            length = int(head[marker + 15 : head.index(b"\r\n", marker)])
            data: dict[str, Any] = json.loads(await http.reader.readexactly(length))
            return data
        finally:
            await http.close()

    async def stats(self, times: bool = False) -> dict[str, Any]:
        return await self._call("GET", "/_stats" + ("?times=1" if times else ""))

    async def reset(self) -> None:
        await self._call("POST", "/_reset")

    async def wait_for(self, phase: str, count: int, seconds: float) -> dict[str, Any]:
        """Poll until ``count`` distinct ids of ``phase`` arrived (or the deadline); the stats
        with times."""
        deadline = time.perf_counter() + seconds
        while True:
            stats = await self.stats()
            if stats["phases"].get(phase, 0) >= count or time.perf_counter() > deadline:
                return await self.stats(times=True)
            await asyncio.sleep(POLL_SECONDS)


@contextlib.asynccontextmanager
async def target_process() -> AsyncIterator[Target]:
    child = await Child.start([python(), str(Path(__file__)), "target"], "target")
    try:
        try:
            line = await child.wait_line("port ")
        except RuntimeError:
            raise RuntimeError("the target did not start: " + await child.stop()) from None
        yield Target(Running(f"http://{HOST}:{int(line.split()[1])}", child.proc.pid))
    finally:
        await child.stop()


def exactness(stats: dict[str, Any], ids: Sequence[str]) -> dict[str, Any]:
    """Whether every id in ``ids`` arrived exactly once, and nothing arrived altered."""
    times: dict[str, list[float]] = stats["times"]
    missing = [i for i in ids if i not in times]
    duplicated = [i for i in ids if len(times.get(i, ())) > 1]
    return {
        "sent": len(ids),
        "arrived": sum(1 for i in ids if i in times),
        "missing": len(missing),
        "missing_ids": missing[:5],
        "duplicated": len(duplicated),
        "signature_mismatches": stats["mismatches"],
        "unexpected_requests": stats["unknown"],
    }


# ---------------------------------------------------------------------- phases


class Meter:
    """CPU seconds of some processes and of the whole machine, from a starting point."""

    def __init__(self, **pids: int) -> None:
        self.pids = pids
        self.machine = machine_busy_seconds()
        self.own = time.process_time()
        self.start = {name: cpu_seconds(pid) for name, pid in pids.items()}

    def used(self) -> dict[str, float]:
        used = {name: cpu_seconds(pid) - self.start[name] for name, pid in self.pids.items()}
        used["bench"] = time.process_time() - self.own
        used["other"] = max(0.0, machine_busy_seconds() - self.machine - sum(used.values()))
        return used


def cpu_figures(used: dict[str, float], count: int, wall: float) -> dict[str, Any]:
    """Per process: microseconds of CPU per webhook, and percent of one core meanwhile."""
    figures: dict[str, Any] = {}
    for name, seconds in used.items():
        if name != "other":
            figures[f"{name}_cpu_us_per_webhook"] = round(seconds * 1e6 / max(count, 1))
        figures[f"{name}_cpu_pct"] = round(100 * seconds / wall) if wall > 0 else None
    return figures


async def direct_throughput(target: Target) -> dict[str, Any]:
    """The senders POSTing straight to the target."""
    requests = build_requests("direct", TARGET_PATH, MAX_WEBHOOKS)
    await target.reset()
    meter = Meter(target=target.pid)
    answered, began, ended = await flood(target.url, requests, 200)
    stats = await target.wait_for("direct", answered, 10)
    used = meter.used()
    arrivals = [t for ts in stats["times"].values() for t in ts]
    wall = ended - began
    return {
        "answered_per_s": round(answered / wall),
        "delivered_per_s": round(answered / (max(arrivals) - began)) if arrivals else 0,
        **exactness(stats, [webhook_id("direct", n) for n in range(answered)]),
        **cpu_figures(used, answered, wall),
    }


async def hook_throughput(relay: Running, target: Target, listener: Child) -> dict[str, Any]:
    """The senders POSTing to the relay's ingest; the listener delivering to the target."""
    await target.reset()
    path = f"/v1/ingest/{CHANNEL}"
    warmup = build_requests("warmup", path, WARMUP_WEBHOOKS)
    await flood(relay.url, warmup, 202)
    await target.wait_for("warmup", WARMUP_WEBHOOKS, 20)
    await asyncio.sleep(0.2)  # the warm-up's last result lines
    count_results(listener)
    await target.reset()
    requests = build_requests("hook", path, MAX_WEBHOOKS)
    meter = Meter(relay=relay.pid, listener=listener.proc.pid, target=target.pid)
    answered, began, ended = await flood(relay.url, requests, 202)
    stats = await target.wait_for("hook", answered, DRAIN_SECONDS)
    used = meter.used()
    arrivals = [t for ts in stats["times"].values() for t in ts]
    last = max(arrivals) if arrivals else ended
    await asyncio.sleep(0.2)
    delivered, failed = count_results(listener)
    return {
        "delivered_per_s": round(len(stats["times"]) / (last - began)),
        "answered_per_s": round(answered / (ended - began)),
        "seconds_sending": round(ended - began, 2),
        "seconds_to_last_arrival": round(last - began, 2),
        **exactness(stats, [webhook_id("hook", n) for n in range(answered)]),
        "result_lines_delivered": delivered,
        "result_lines_failed": failed,
        **cpu_figures(used, answered, last - began),
    }


async def latency(url: str, path: str, target: Target, phase: str, expect: int) -> dict[str, Any]:
    """Paced webhooks at LATENCY_RATE/s: from just before the POST to the target's receipt."""
    await paced(url, build_requests(f"{phase}warm", path, LATENCY_WARMUP), expect)
    await target.wait_for(f"{phase}warm", LATENCY_WARMUP, 10)
    await target.reset()
    requests = build_requests(phase, path, LATENCY_WEBHOOKS)
    starts = await paced(url, requests, expect)
    stats = await target.wait_for(phase, LATENCY_WEBHOOKS, 10)
    times = stats["times"]
    delays = [
        times[webhook_id(phase, n)][0] - began
        for n, began in starts.items()
        if webhook_id(phase, n) in times
    ]
    return {
        "rate": LATENCY_RATE,
        **summary_ms(delays),
        **exactness(stats, [webhook_id(phase, n) for n in range(LATENCY_WEBHOOKS)]),
    }


@contextlib.asynccontextmanager
async def listener_process(relay: Running, target: Target) -> AsyncIterator[Child]:
    """``hook listen --target URL --json``, otherwise with its defaults, as a user runs it."""
    child = await Child.start(
        [
            python(),
            "-m",
            "hookcli",
            "listen",
            "--relay",
            relay.url,
            "--target",
            f"{HOST}:{target.running.port}{TARGET_PATH}",
            "--json",
        ],
        "hook listen",
    )
    try:
        try:
            await child.wait_line('"type":"ready"')
        except RuntimeError:
            raise RuntimeError("hook listen did not get ready: " + await child.stop()) from None
        yield child
    finally:
        await child.stop()


def goals(hook: dict[str, Any], live: dict[str, Any], direct: dict[str, Any]) -> dict[str, bool]:
    exact = all(
        phase["signature_mismatches"] == 0 and phase["unexpected_requests"] == 0
        for phase in (hook, live, direct)
    )
    complete = all(
        phase["missing"] == 0 and phase["duplicated"] == 0 and phase["arrived"] == phase["sent"]
        for phase in (hook, live)
    )
    return {
        "delivered_per_s_at_least_1200": hook["delivered_per_s"] >= 1200,
        "relay_cpu_at_most_250us": hook["relay_cpu_us_per_webhook"] <= 250,
        "listener_cpu_at_most_200us": hook["listener_cpu_us_per_webhook"] <= 200,
        "p99_at_50_per_s_under_5ms": live["p99_ms"] < 5.0,
        "byte_exact": exact,
        "nothing_lost_or_duplicated": complete,
    }


async def main() -> None:
    began = time.perf_counter()
    figures: dict[str, Any] = {
        "bench": "webhooks",
        "layout": "relay, hook listen, target: one process each; senders and clock here",
        "senders": SENDERS,
        "body_bytes": BODY_BYTES,
        "seconds": THROUGHPUT_SECONDS,
    }
    with tempfile.TemporaryDirectory(prefix="hook-bench-webhooks-") as tmp:
        async with target_process() as target, relay_process(Path(tmp)) as relay:
            direct = await direct_throughput(target)
            direct_live = await latency(target.url, TARGET_PATH, target, "dlat", 200)
            async with listener_process(relay, target) as listener:
                hook = await hook_throughput(relay, target, listener)
                live = await latency(relay.url, f"/v1/ingest/{CHANNEL}", target, "hlat", 202)
                count_results(listener)
    figures["throughput"] = {
        "hook": hook,
        "direct": direct,
        "fraction_of_direct": round(hook["delivered_per_s"] / max(direct["delivered_per_s"], 1), 3),
    }
    figures["latency"] = {"hook": live, "direct": direct_live}
    figures["goal_met"] = goals(hook, live, direct)
    figures["total_seconds"] = round(time.perf_counter() - began, 1)
    emit(figures)


# ---------------------------------------------------------------------- the target process


async def _serve_target() -> None:
    """A local app verifying each webhook's signature against the exact bytes it received.

    ``GET /_stats``: ``{"count", "ids", "phases", "mismatches", "unknown"}`` (``phases``:
    distinct ids per phase, the ``PHASE`` of ``evt_PHASE_N``), with ``?times=1`` also
    ``"times": {webhook_id: [perf_counter of each arrival]}``; ``POST /_reset`` clears them.
    """
    from _common import _run_app
    from aiohttp import web

    times: dict[str, list[float]] = {}
    phases: dict[str, int] = {}
    counts = {"count": 0, "mismatches": 0, "unknown": 0}

    async def handle(request: web.Request) -> web.Response:
        now = time.perf_counter()
        body = await request.read()
        counts["count"] += 1
        given = request.headers.get("Stripe-Signature", "")
        stamp, _, mac = given.partition(",v1=")
        expected = hmac.new(SECRET, stamp[2:].encode() + b"." + body, hashlib.sha256).hexdigest()
        if not (stamp.startswith("t=") and hmac.compare_digest(mac, expected)):
            counts["mismatches"] += 1
            return web.Response(status=400, text="signature mismatch")
        if request.headers.get("Content-Type") != "application/json; charset=utf-8":
            counts["unknown"] += 1
        try:
            event_id = json.loads(body)["id"]
        except (ValueError, KeyError, TypeError):
            counts["unknown"] += 1
            return web.Response(status=400, text="no id")
        seen = times.setdefault(event_id, [])
        if not seen:
            phase = event_id.split("_")[1]
            phases[phase] = phases.get(phase, 0) + 1
        seen.append(now)
        return web.Response(text="ok")

    async def stats(request: web.Request) -> web.Response:
        data: dict[str, Any] = {**counts, "ids": len(times), "phases": phases}
        if request.query.get("times"):
            data["times"] = times
        return web.json_response(data)

    async def reset(request: web.Request) -> web.Response:
        times.clear()
        phases.clear()
        counts.update(count=0, mismatches=0, unknown=0)
        return web.json_response({})

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_get("/_stats", stats)
    app.router.add_post("/_reset", reset)
    app.router.add_route("*", "/{tail:.*}", handle)
    await _run_app(app)


if __name__ == "__main__":
    if sys.argv[1:] == ["target"]:
        asyncio.run(_serve_target())
    else:
        asyncio.run(main())
