"""The relay: catch-up rate, live latency and fan-out, each against a baseline from the same run.

Layout: the relay runs as users run it, ``python -m hookcli relay serve --ingest-only`` in a
process of its own (its own event loop and core); the load (HTTP ingest) and the listeners (raw
``websockets`` clients speaking docs/protocol.md, answering every event) run in this process,
so send and receipt times come from one clock. Baselines run in a process of their own too
(``_common.py``): a bare ``websockets`` server for catch-up, and for latency and fan-out a bare
aiohttp "relay" that forwards each POST to the matching websockets with nothing stored.

- catch-up: a listener subscribing ``from 0`` to CATCHUP_EVENTS stored events (window 1000,
  a result per event), events/s received; ceiling: the bare server sending the same message
  strings to a client that only receives (and, for reference, one that also answers each).
  Goal: at least a third of the ceiling.
- live: ingest over ``POST /v1/ingest`` at LIVE_RATE/s on an absolute schedule, latency from the
  202 (and from just before the POST) to the listener's receipt. Goal: p50 < 2 ms, p99 < 10 ms.
- fan-out: FANOUT_LISTENERS listeners, each with a pattern matching one customer (~1% of
  events); FANOUT_EVENTS POSTed by FANOUT_SENDERS concurrent senders; ingested events/s, and
  whether each listener received exactly its events. Goal: >= 3,000 events/s.
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    CUSTOMERS,
    PHASE_SECONDS,
    CpuMeter,
    Pool,
    Running,
    bodies,
    customer,
    emit,
    fill_store,
    make_detail,
    make_events,
    ms,
    paced_posts,
    per_event,
    relay_auth,
    relay_process,
    result_item,
    result_message,
    server_process,
    subscribe,
    summary_ms,
)
from websockets.asyncio.client import connect

CATCHUP_EVENTS = 50_000
LIVE_RATE = 500.0
LIVE_WARMUP = 250
LIVE_EVENTS = 5_000
BASE_LIVE_EVENTS = 2_500
FANOUT_LISTENERS = 100
FANOUT_EVENTS = 10_000
FANOUT_SENDERS = 8
#: smee's figure from DESIGN.md ("Figures to beat"), for reference: not measured here.
SMEE_EVENTS_PER_S = 1170
MAX_MESSAGE = 4 * 1024 * 1024


def ws_url(http_url: str, path: str = "/v1/stream") -> str:
    """The websocket URL on the same host and port as ``http_url``."""
    return http_url.replace("http", "ws", 1) + path


# ---------------------------------------------------------------------- catch-up


#: Answers travel in `results` messages of up to this many, as `hook listen` sends the results
#: that finished in one loop pass together (docs/protocol.md).
ANSWER_BATCH = 32


async def receive_all(ws: Any, count: int, answer: bool) -> tuple[float, int, bool]:
    """Read ``count`` events; answer each if asked. Returns seconds, events, in-order flag."""
    received = 0
    last = 0
    ordered = True
    batch: list[str] = []
    started = time.perf_counter()
    async with asyncio.timeout(PHASE_SECONDS):
        async for text in ws:
            if not answer:
                received += 1
            else:
                message = json.loads(text)
                if message["type"] != "event":
                    continue
                seq = message["seq"]
                ordered = ordered and seq > last
                last = seq
                received += 1
                batch.append(result_item(seq, message["event"]["id"]))
                if len(batch) == ANSWER_BATCH or received == count:
                    await ws.send('{"type":"results","items":[' + ",".join(batch) + "]}")
                    batch = []
            if received == count:
                break
    return time.perf_counter() - started, received, ordered


async def ceiling(count: int) -> dict[str, Any]:
    """The bare websockets server sending the same message strings."""
    figures: dict[str, Any] = {}
    async with server_process("ws-ceiling", str(count), "1") as server:
        for mode in ("send", "answer"):
            async with connect(
                ws_url(server.url, ""), compression=None, max_size=MAX_MESSAGE
            ) as ws:
                await ws.send(mode)
                seconds, received, _ = await receive_all(ws, count, answer=mode == "answer")
            figures[mode] = {"events": received, "events_per_s": round(received / seconds)}
    return figures


async def catch_up(work: Path) -> dict[str, Any]:
    data = work / "catchup"
    events = make_events(CATCHUP_EVENTS, seed=1)
    started = time.perf_counter()
    head = fill_store(data, events)
    fill_seconds = time.perf_counter() - started
    base = await ceiling(CATCHUP_EVENTS)
    async with relay_process(data) as relay:
        async with connect(
            ws_url(relay.url),
            compression=None,
            max_size=MAX_MESSAGE,
            additional_headers=relay_auth(),
        ) as ws:
            await subscribe(ws, "catchup", {}, 0, window=1000)
            meter = CpuMeter(relay=relay.pid)
            seconds, received, ordered = await receive_all(ws, CATCHUP_EVENTS, answer=True)
            cpu = meter.percent()
    rate = received / seconds
    top = base["send"]["events_per_s"]
    return {
        "events": received,
        "stored_head": head,
        "in_order": ordered,
        "events_per_s": round(rate),
        "ceiling_events_per_s": top,
        "ceiling_answered_events_per_s": base["answer"]["events_per_s"],
        "fraction_of_ceiling": round(rate / top, 3),
        "fill_store_events_per_s": round(len(events) / fill_seconds),
        **cpu,
        **per_event(cpu, rate),
        "goal_fraction": 0.333,
        "goal_met": rate >= top / 3,
    }


# ---------------------------------------------------------------------- live latency


class Receipts:
    """When each event id arrived at a listener (perf_counter), answering as it goes."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.arrived = asyncio.Event()
        self.expect = 0

    async def listen(self, ws: Any, answer: bool) -> None:
        async for text in ws:
            now = time.perf_counter()
            message = json.loads(text)
            if message.get("type") != "event":
                continue
            event_id = message["event"]["id"]
            self.times.setdefault(event_id, now)
            if answer:
                await ws.send(result_message(message["seq"], event_id))
            if len(self.times) >= self.expect:
                self.arrived.set()


async def measure_live(
    server: Running, path: str, stream_url: str, hook: bool, count: int
) -> dict[str, Any]:
    """Warm up, then ``count`` paced events; latencies to the listener's receipt."""
    receipts = Receipts()
    async with (
        Pool(server.url, 16) as pool,
        connect(
            stream_url,
            compression=None,
            max_size=MAX_MESSAGE,
            additional_headers=relay_auth(),
        ) as ws,
    ):
        if hook:
            await subscribe(ws, "live", {}, "now", window=1000)
        reader = asyncio.create_task(receipts.listen(ws, answer=hook))
        await paced_posts(pool, path, bodies(LIVE_WARMUP, 2), LIVE_RATE)
        receipts.expect = LIVE_WARMUP + count
        meter = CpuMeter(server=server.pid)
        began = time.perf_counter()
        sent, lag = await paced_posts(pool, path, bodies(count, 3), LIVE_RATE)
        took = time.perf_counter() - began
        cpu = meter.percent()
        try:
            await asyncio.wait_for(receipts.arrived.wait(), 10)
        except TimeoutError:
            pass
        await cancel(reader)
    from_accept = [receipts.times[i] - acc for i, _, acc in sent if i in receipts.times]
    from_post = [receipts.times[i] - before for i, before, _ in sent if i in receipts.times]
    http = [acc - before for _, before, acc in sent]
    return {
        "sent": len(sent),
        "received": len(from_accept),
        "achieved_rate": round(len(sent) / took),
        "worst_send_lag_ms": ms(lag),
        "from_accepted": summary_ms(from_accept),
        "from_before_post": summary_ms(from_post),
        "ingest_http": summary_ms(http),
        # The relay writes the 202 and the event frame back to back; this process may read
        # either first, so a receipt can precede the 202 it follows (negative latency).
        "received_before_202": sum(1 for d in from_accept if d < 0),
        **cpu,
    }


async def live(work: Path) -> dict[str, Any]:
    async with server_process("bare-relay") as bare:
        base = await measure_live(
            bare, "/ingest", ws_url(bare.url, "/ws"), hook=False, count=BASE_LIVE_EVENTS
        )
    async with relay_process(work / "live") as relay:
        hook = await measure_live(
            relay, "/v1/ingest/orders", ws_url(relay.url), hook=True, count=LIVE_EVENTS
        )
    p50 = hook["from_accepted"]["p50_ms"]
    p99 = hook["from_accepted"]["p99_ms"]
    return {
        "rate": LIVE_RATE,
        "hook": hook,
        "bare_baseline": base,
        "goal_p50_ms": 2.0,
        "goal_p99_ms": 10.0,
        "goal_met": hook["received"] == hook["sent"] and p50 < 2.0 and p99 < 10.0,
    }


# ---------------------------------------------------------------------- fan-out


class Tally:
    """Events received by all fan-out listeners together; ``done`` once ``expect`` arrived."""

    def __init__(self, expect: int) -> None:
        self.expect = expect
        self.received = 0
        self.done = asyncio.Event()

    def add(self) -> None:
        self.received += 1
        if self.received >= self.expect:
            self.done.set()


class Listener:
    """One fan-out listener: what it received, in order, answering each."""

    def __init__(self, ws: Any, answer: bool) -> None:
        self.ws = ws
        self.answer = answer
        self.ids: list[str] = []

    async def run(self, tally: Tally) -> None:
        async for text in self.ws:
            message = json.loads(text)
            if message.get("type") != "event":
                continue
            event_id = message["event"]["id"]
            self.ids.append(event_id)
            if self.answer:
                await self.ws.send(result_message(message["seq"], event_id))
            tally.add()


async def cancel(*tasks: asyncio.Task[Any]) -> None:
    """Cancel reader tasks and wait for them to finish."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def measure_fanout(
    server: Running,
    path: str,
    stream_url: Callable[[str], str],
    hook: bool,
    count: int,
    senders: int,
) -> dict[str, Any]:
    """100 listeners, one customer each; ``count`` events POSTed by ``senders`` at once."""
    rng = random.Random(4)
    details = [make_detail(rng, n) for n in range(count)]
    payloads = [json.dumps(d, separators=(",", ":")).encode() for d in details]
    listeners: dict[str, Listener] = {}
    for index in range(FANOUT_LISTENERS):
        name = customer(index)
        ws = await connect(
            stream_url(name),
            compression=None,
            max_size=MAX_MESSAGE,
            additional_headers=relay_auth(),
        )
        if hook:
            await subscribe(ws, f"fan-{name}", {"detail": {"customer": [name]}}, "now")
        listeners[name] = Listener(ws, answer=hook)
    tally = Tally(count)
    readers = [asyncio.create_task(x.run(tally)) for x in listeners.values()]
    accepted: list[tuple[str, str]] = []
    following = iter(range(count))

    async with Pool(server.url, senders) as pool:

        async def send() -> None:
            for n in following:
                data = await pool.post(path, payloads[n])
                accepted.append((data["id"], details[n]["customer"]))

        meter = CpuMeter(server=server.pid)
        began = time.perf_counter()
        async with asyncio.timeout(PHASE_SECONDS):
            await asyncio.gather(*(send() for _ in range(senders)))
        ingested = time.perf_counter() - began
        try:
            await asyncio.wait_for(tally.done.wait(), 20)
        except TimeoutError:
            pass
        delivered = time.perf_counter() - began
        cpu = meter.percent()
    await cancel(*readers)
    for x in listeners.values():
        await x.ws.close()
    expected: dict[str, list[str]] = {name: [] for name in listeners}
    for event_id, name in accepted:
        expected[name].append(event_id)
    # Exact: the same ids in the same (ingest) order, no duplicates, nothing missing.
    exact = sum(1 for name, x in listeners.items() if x.ids == expected[name])
    exact_sets = sum(1 for name, x in listeners.items() if set(x.ids) == set(expected[name]))
    per_listener = Counter(len(v) for v in expected.values())
    return {
        "events": len(accepted),
        "senders": senders,
        "ingested_events_per_s": round(len(accepted) / ingested),
        "delivered_all_events_per_s": round(tally.received / delivered),
        "received": tally.received,
        "listeners_exact": exact,
        "listeners_exact_as_sets": exact_sets,
        "events_per_listener_min_max": [min(per_listener), max(per_listener)],
        **cpu,
        **per_event(cpu, len(accepted) / ingested),
    }


async def fanout(work: Path) -> dict[str, Any]:
    async with server_process("bare-relay") as bare:
        base = await measure_fanout(
            bare,
            "/ingest",
            lambda name: ws_url(bare.url, f"/ws?customer={name}"),
            hook=False,
            count=FANOUT_EVENTS,
            senders=FANOUT_SENDERS,
        )
    async with relay_process(work / "fanout") as relay:
        hook = await measure_fanout(
            relay,
            "/v1/ingest/orders",
            lambda name: ws_url(relay.url),
            hook=True,
            count=FANOUT_EVENTS,
            senders=FANOUT_SENDERS,
        )
    return {
        "listeners": FANOUT_LISTENERS,
        "customers": CUSTOMERS,
        "hook": hook,
        "bare_baseline": base,
        "smee_reference_events_per_s": SMEE_EVENTS_PER_S,
        "goal_events_per_s": 3000,
        "goal_met": hook["ingested_events_per_s"] >= 3000
        and hook["listeners_exact"] == FANOUT_LISTENERS,
    }


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hook-bench-relay-") as tmp:
        work = Path(tmp)
        began = time.perf_counter()
        figures: dict[str, Any] = {
            "bench": "relay",
            "layout": "relay and baselines each in their own process; load+listeners here",
        }
        figures["catch_up"] = await catch_up(work)
        figures["live"] = await live(work)
        figures["fan_out"] = await fanout(work)
        figures["seconds"] = round(time.perf_counter() - began, 1)
    emit(figures)


if __name__ == "__main__":
    asyncio.run(main())
