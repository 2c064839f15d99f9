"""``hook listen``: relay -> listener -> a local aiohttp target, against the target driven directly.

Four processes, as a developer runs it: the relay (``python -m hookcli relay serve
--ingest-only``), the real CLI ``python -m hookcli listen --json`` (stdout piped here and read
line by line, as a script would), the target (a small aiohttp app in ``_common.py`` recording
when each ``X-Hook-Event-Id`` arrived), and this process (the direct aiohttp client, the ingest
load, the clock). On 2 cores they share the CPU; the JSON line reports each one's CPU use.
Receipt times are ``perf_counter`` in the target's process: CLOCK_MONOTONIC, one clock for all.

- throughput: THROUGHPUT_EVENTS stored events, ``hook listen --from 0`` at ``--concurrency`` 1
  and 8, events/s between the target's first and last receipt; direct: an aiohttp client POSTing
  the same events to the same target at concurrency 1 and 8. Goal: at concurrency 8, at least
  half the direct rate.
- added latency at LATENCY_RATE events/s: ingest on an absolute schedule, from the 202 to the
  target's receipt, minus the direct client's one-way latency (start of POST to receipt) at the
  same rate. Goal: added p50 < 2 ms.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from _common import (
    PHASE_SECONDS,
    Child,
    CpuMeter,
    Pool,
    RawHttp,
    Running,
    bodies,
    count_results,
    emit,
    fill_store,
    make_detail,
    make_events,
    ms,
    paced_posts,
    per_event,
    python,
    relay_process,
    server_process,
    summary_ms,
)

THROUGHPUT_EVENTS = 4_000
CONCURRENCIES = (1, 8)
LATENCY_RATE = 100.0
LATENCY_WARMUP = 50
LATENCY_EVENTS = 800
POLL_SECONDS = 0.02
WEBHOOK_EVENTS = 4_000
WEBHOOK_SECRET = b"whsec_bench"


def webhook_body(rng: random.Random, n: int) -> bytes:
    """About 1 KiB of JSON, shaped like a payment provider's webhook (compact, as sent)."""
    order = make_detail(rng, n)
    order["items"] = [
        {"sku": f"SKU-{rng.randrange(10_000):05d}", "qty": rng.randrange(1, 5), "price": 9.5}
        for _ in range(8)
    ]
    body = {
        "id": f"evt_{rng.getrandbits(64):016x}",
        "object": "event",
        "type": "order.paid",
        "created": 1735689600 + n,
        "livemode": False,
        "data": {"object": order},
        "request": {"id": f"req_{rng.getrandbits(48):012x}", "idempotency_key": None},
    }
    text = json.dumps(body, separators=(",", ":")).encode()
    return text + b" " * max(0, 1024 - len(text))  # padding keeps it valid JSON, 1 KiB


def webhook_request(n: int, body: bytes, host: str) -> bytes:
    """A signed webhook POST as a provider sends it: several headers, a signature over the body."""
    stamp = str(1735689600 + n)
    signature = hmac.new(WEBHOOK_SECRET, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return (
        f"POST /v1/ingest/payments HTTP/1.1\r\nHost: {host}\r\n"
        "User-Agent: Payments/1.0 (+https://payments.example/docs/webhooks)\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Payments-Signature: t={stamp},v1={signature}\r\n"
        f"X-Request-Id: req-{n:08d}\r\nAccept: */*\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def post_webhooks(relay_url: str, count: int, seed: int, connections: int = 4) -> None:
    """Store ``count`` webhooks in the relay through ``POST /v1/ingest/payments``."""
    rng = random.Random(seed)
    host = relay_url.split("//", 1)[1]
    requests = [webhook_request(n, webhook_body(rng, n), host) for n in range(count)]
    following = iter(requests)

    async def sender() -> None:
        http = await RawHttp.open(relay_url)
        try:
            for request in following:
                http.writer.write(request)
                head = await http.reader.readuntil(b"\r\n\r\n")
                if head[9:12] != b"202":
                    raise RuntimeError(f"ingest answered {head[:40]!r}")
                marker = head.lower().find(b"content-length:")
                await http.reader.readexactly(int(head[marker + 15 : head.index(b"\r\n", marker)]))
        finally:
            await http.close()

    async with asyncio.timeout(PHASE_SECONDS):
        await asyncio.gather(*(sender() for _ in range(connections)))


async def target_stats(
    session: aiohttp.ClientSession, target: Running, times: bool = False
) -> dict[str, Any]:
    """The target's request count, and with ``times`` when each event id arrived."""
    url = f"{target.url}/_stats" + ("?times=1" if times else "")
    async with session.get(url) as response:
        data: dict[str, Any] = await response.json()
        return data


async def reset_target(session: aiohttp.ClientSession, target: Running) -> None:
    async with session.post(f"{target.url}/_reset") as response:
        await response.read()


async def wait_count(
    session: aiohttp.ClientSession, target: Running, count: int, seconds: float = PHASE_SECONDS
) -> dict[str, Any]:
    """Poll the target until it has ``count`` requests (or the deadline); its last stats."""
    deadline = time.perf_counter() + seconds
    while True:
        stats = await target_stats(session, target)
        if stats["count"] >= count or time.perf_counter() > deadline:
            return await target_stats(session, target, times=True)
        await asyncio.sleep(POLL_SECONDS)


async def wait_ids(
    session: aiohttp.ClientSession, target: Running, ids: list[str], seconds: float
) -> dict[str, Any]:
    """Poll the target until every id in ``ids`` arrived (or the deadline); its last stats."""
    deadline = time.perf_counter() + seconds
    while True:
        stats = await target_stats(session, target)
        if stats["count"] >= len(ids) or time.perf_counter() > deadline:
            stats = await target_stats(session, target, times=True)
            if all(i in stats["times"] for i in ids) or time.perf_counter() > deadline:
                return stats
        await asyncio.sleep(POLL_SECONDS)


# ---------------------------------------------------------------------- direct baseline


async def direct_throughput(target: Running, concurrency: int, count: int) -> dict[str, Any]:
    """An aiohttp client POSTing the events' JSON to the target: requests/s and CPU."""
    payloads = [e.to_json().encode() for e in make_events(count, seed=5)]
    return await direct_posts(
        target,
        concurrency,
        payloads,
        lambda n: {"Content-Type": "application/json", "X-Hook-Event-Id": f"d{n}"},
    )


async def direct_posts(
    target: Running,
    concurrency: int,
    payloads: list[bytes],
    headers_of: Callable[[int], dict[str, str]],
) -> dict[str, Any]:
    """aiohttp's client POSTing ``payloads`` (with ``headers_of(n)``) to the target at
    ``concurrency``: requests/s and CPU."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        following = iter(range(len(payloads)))

        async def worker() -> None:
            for n in following:
                async with session.post(target.url, data=payloads[n], headers=headers_of(n)) as r:
                    await r.read()

        await worker_warmup(session, target)
        meter = CpuMeter(target=target.pid)
        began = time.perf_counter()
        async with asyncio.timeout(PHASE_SECONDS):
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        rate = len(payloads) / (time.perf_counter() - began)
        cpu = meter.percent()
    return {"events_per_s": round(rate), **cpu, **per_event(cpu, rate)}


async def worker_warmup(session: aiohttp.ClientSession, target: Running) -> None:
    for _ in range(20):
        async with session.post(target.url, data=b"{}") as r:
            await r.read()


async def direct_latency(target: Running, count: int) -> list[float]:
    """One-way latency (start of POST -> the target's receipt) at LATENCY_RATE/s."""
    payloads = bodies(count, seed=6)
    starts: dict[str, float] = {}
    async with aiohttp.ClientSession() as session:
        await worker_warmup(session, target)
        await reset_target(session, target)
        began = time.perf_counter() + 0.05
        async with asyncio.timeout(PHASE_SECONDS):
            tasks = []
            for n, body in enumerate(payloads):
                delay = began + n / LATENCY_RATE - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(_post(session, target, f"l{n}", body, starts)))
            await asyncio.gather(*tasks)
        stats = await wait_count(session, target, count, 5)
    return [stats["times"][k] - v for k, v in starts.items() if k in stats["times"]]


async def _post(
    session: aiohttp.ClientSession,
    target: Running,
    event_id: str,
    body: bytes,
    starts: dict[str, float],
) -> None:
    headers = {"Content-Type": "application/json", "X-Hook-Event-Id": event_id}
    starts[event_id] = time.perf_counter()
    async with session.post(target.url, data=body, headers=headers) as r:
        await r.read()


# ---------------------------------------------------------------------- hook listen


async def start_listener(
    relay: Running, target: Running, name: str, concurrency: int, start: str
) -> tuple[Child, dict[str, Any]]:
    """``hook listen --json`` as a user runs it; returns once it printed its ready line."""
    child = await Child.start(
        [
            python(),
            "-m",
            "hookcli",
            "listen",
            "--relay",
            relay.url,
            "--target",
            f"127.0.0.1:{target.port}",
            "--name",
            name,
            "--concurrency",
            str(concurrency),
            "--retries",
            "0",
            "--from",
            start,
            "--json",
        ],
        f"hook listen -c {concurrency}",
    )
    try:
        ready = json.loads(await child.wait_line('"type":"ready"'))
    except RuntimeError:
        raise RuntimeError("hook listen did not get ready: " + await child.stop()) from None
    return child, ready


async def hook_throughput(
    relay: Running, target: Running, concurrency: int, count: int
) -> dict[str, Any]:
    """A new listener catching up on the ``count`` stored events; the target's receipt rate."""
    async with aiohttp.ClientSession() as session:
        await reset_target(session, target)
        child, _ = await start_listener(relay, target, f"bench-c{concurrency}", concurrency, "0")
        try:
            meter = CpuMeter(relay=relay.pid, listener=child.proc.pid, target=target.pid)
            stats = await wait_count(session, target, count)
            cpu = meter.percent()
            # The last results reach stdout just after the target answered them.
            await asyncio.sleep(0.2)
            delivered, failed = count_results(child)
        finally:
            await child.stop()
    times = sorted(stats["times"].values())
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    return {
        "events": count,
        "received": stats["count"],
        "result_lines_delivered": delivered,
        "result_lines_failed": failed,
        "events_per_s": round(rate),
        **cpu,
        **per_event(cpu, rate),
    }


async def hook_latency(relay: Running, target: Running, count: int) -> dict[str, Any]:
    """Paced ingest into a live listener: from the 202 (and from the POST) to the target."""
    async with aiohttp.ClientSession() as session, Pool(relay.url, 4) as pool:
        child, _ = await start_listener(relay, target, "bench-live", 1, "now")
        try:
            await paced_posts(pool, "/v1/ingest/orders", bodies(LATENCY_WARMUP, 7), LATENCY_RATE)
            await wait_count(session, target, LATENCY_WARMUP, 10)
            await asyncio.sleep(0.2)  # the warm-up's last result lines
            count_results(child)
            await reset_target(session, target)
            meter = CpuMeter(relay=relay.pid, listener=child.proc.pid, target=target.pid)
            sent, lag = await paced_posts(pool, "/v1/ingest/orders", bodies(count, 8), LATENCY_RATE)
            stats = await wait_ids(session, target, [i for i, _, _ in sent], 10)
            cpu = meter.percent()
            delivered, failed = count_results(child)
        finally:
            await child.stop()
    got = stats["times"]
    return {
        "sent": len(sent),
        "received": sum(1 for i, _, _ in sent if i in got),
        "missing_ids": [i for i, _, _ in sent if i not in got][:5],
        "result_lines_delivered": delivered,
        "result_lines_failed": failed,
        "worst_send_lag_ms": ms(lag),
        "from_accepted": summary_ms([got[i] - acc for i, _, acc in sent if i in got]),
        "from_before_post": summary_ms([got[i] - before for i, before, _ in sent if i in got]),
        **cpu,
    }


async def direct_webhooks(target: Running, concurrency: int, count: int) -> dict[str, Any]:
    """aiohttp's client sending the webhook requests (headers and body) to the target."""
    rng = random.Random(3)
    payloads = [webhook_body(rng, n) for n in range(count)]
    return await direct_posts(
        target,
        concurrency,
        payloads,
        lambda n: {
            "User-Agent": "Payments/1.0",
            "Content-Type": "application/json; charset=utf-8",
            "Payments-Signature": f"t={n},v1={'0' * 64}",
            "X-Request-Id": f"req-{n:08d}",
            "X-Hook-Event-Id": f"w{n}",
        },
    )


async def hook_webhooks(target: Running, concurrency: int, count: int) -> dict[str, Any]:
    """``count`` signed ~1 KiB JSON webhooks stored through ingest (a relay of their own), then
    a new listener replaying them to the target: its rate and CPU µs per webhook."""
    with tempfile.TemporaryDirectory(prefix="hook-bench-webhooks-") as tmp:
        async with relay_process(Path(tmp)) as relay:
            await post_webhooks(relay.url, count, seed=3)
            return await hook_throughput(relay, target, concurrency, count)


async def main() -> None:
    began = time.perf_counter()
    figures: dict[str, Any] = {
        "bench": "listen",
        "layout": "relay, hook listen, target: one process each; client and clock here",
    }
    with tempfile.TemporaryDirectory(prefix="hook-bench-listen-") as tmp:
        data = Path(tmp)
        fill_store(data, make_events(THROUGHPUT_EVENTS, seed=1))
        async with server_process("target") as target:
            async with relay_process(data) as relay:
                direct = {
                    c: await direct_throughput(target, c, THROUGHPUT_EVENTS) for c in CONCURRENCIES
                }
                hook = {
                    c: await hook_throughput(relay, target, c, THROUGHPUT_EVENTS)
                    for c in CONCURRENCIES
                }
                base = await direct_latency(target, LATENCY_EVENTS)
                live = await hook_latency(relay, target, LATENCY_EVENTS)
            top = CONCURRENCIES[-1]
            webhooks_direct = await direct_webhooks(target, top, WEBHOOK_EVENTS)
            webhooks = await hook_webhooks(target, top, WEBHOOK_EVENTS)
    figures["throughput"] = {
        f"concurrency_{c}": {
            "hook": hook[c],
            "direct": direct[c],
            "fraction_of_direct": round(hook[c]["events_per_s"] / direct[c]["events_per_s"], 3),
        }
        for c in CONCURRENCIES
    }
    direct_lat = summary_ms(base)
    added_p50 = round(live["from_accepted"]["p50_ms"] - direct_lat["p50_ms"], 3)
    added_p99 = round(live["from_accepted"]["p99_ms"] - direct_lat["p99_ms"], 3)
    figures["latency"] = {
        "rate": LATENCY_RATE,
        "hook": live,
        "direct_one_way": direct_lat,
        "added_p50_ms": added_p50,
        "added_p99_ms": added_p99,
    }
    per_webhook = webhooks.get("listener_cpu_us_per_event")
    figures["webhooks"] = {
        "concurrency": top,
        "body_bytes": 1024,
        "hook": webhooks,
        "direct": webhooks_direct,
        "fraction_of_direct": round(webhooks["events_per_s"] / webhooks_direct["events_per_s"], 3),
        "listener_cpu_us_per_webhook": per_webhook,
    }
    fraction = {c: figures["throughput"][f"concurrency_{c}"]["fraction_of_direct"] for c in (1, 8)}
    figures["listener_cpu_us_per_event"] = {
        f"concurrency_{c}": hook[c].get("listener_cpu_us_per_event") for c in CONCURRENCIES
    }
    figures["goals"] = {
        "throughput_c1_at_least_0.7_of_direct": fraction[1] >= 0.7,
        "throughput_c8_at_least_0.65_of_direct": fraction[8] >= 0.65,
        "added_p50_under_2ms": added_p50 < 2.0 and live["received"] == live["sent"],
        "webhook_listener_cpu_at_most_200us": per_webhook is not None
        and per_webhook <= 200
        and webhooks["received"] == webhooks["events"],
    }
    figures["seconds"] = round(time.perf_counter() - began, 1)
    emit(figures)


if __name__ == "__main__":
    asyncio.run(main())
