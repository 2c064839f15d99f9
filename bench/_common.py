"""Shared bench helpers: events, percentiles, child processes, and the baseline servers.

Run as a script, this module is one of the baseline servers the benches start in a process of
their own (so a baseline gets a core to itself, like the relay does):

    python bench/_common.py ws-ceiling COUNT SEED   bare websockets: send COUNT event messages
    python bench/_common.py bare-relay              aiohttp: POST -> in-memory forward to a ws
    python bench/_common.py target                  aiohttp target recording receipt times

Each prints ``port N`` on stdout once it listens on 127.0.0.1, then serves until SIGTERM.
Timestamps are ``time.perf_counter()``: CLOCK_MONOTONIC on Linux, one clock for every process
on the machine, so a receipt time taken in a child compares with a send time taken here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hookcli.events import Event, EventId  # noqa: E402

HOST = "127.0.0.1"
#: Every wait on a child or a condition ends by this deadline (seconds).
STARTUP_SECONDS = 30.0
STOP_SECONDS = 10.0
PHASE_SECONDS = 60.0
CUSTOMERS = 100


def emit(figures: dict[str, Any]) -> None:
    """The bench's one line of output."""
    sys.stdout.write(json.dumps(figures, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def ms(seconds: float) -> float:
    """Seconds as milliseconds, rounded for the JSON line."""
    return round(seconds * 1000, 3)


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of ``values`` (q in [0, 1]); NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """p50/p90/p99/max in ms and the count."""
    return {
        "n": len(seconds),
        "p50_ms": ms(quantile(seconds, 0.50)),
        "p90_ms": ms(quantile(seconds, 0.90)),
        "p99_ms": ms(quantile(seconds, 0.99)),
        "max_ms": ms(max(seconds)) if seconds else None,
    }


def customer(index: int) -> str:
    """One of ``CUSTOMERS`` customer ids; a pattern on one matches about 1% of events."""
    return f"c-{index:02d}"


def make_detail(rng: random.Random, n: int) -> dict[str, Any]:
    """An order's detail, the shape and size of a real EventBridge business event."""
    return {
        "orderId": f"o-{n:08d}",
        "customer": customer(rng.randrange(CUSTOMERS)),
        "status": rng.choice(["placed", "paid", "shipped"]),
        "total": round(rng.uniform(5, 500), 2),
        "currency": "EUR",
        "items": [
            {"sku": f"SKU-{rng.randrange(10_000):05d}", "qty": rng.randrange(1, 5)}
            for _ in range(2)
        ],
        "channel": "web",
        "warehouse": "wh-dublin-01",
    }


def make_events(count: int, seed: int = 1) -> list[Event]:
    """``count`` realistic EventBridge events of about 470 bytes of compact JSON each."""
    rng = random.Random(seed)
    moment = datetime(2025, 1, 1, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    events = []
    for n in range(count):
        events.append(
            Event(
                id=EventId(str(uuid.UUID(int=rng.getrandbits(128), version=4))),
                source="shop.orders",
                detail_type="OrderPlaced",
                detail=make_detail(rng, n),
                account="123456789012",
                region="eu-west-1",
                time=moment,
                resources=("arn:aws:events:eu-west-1:123456789012:rule/shop-orders",),
            )
        )
    return events


def bodies(count: int, seed: int) -> list[bytes]:
    """``count`` webhook bodies: order details as compact JSON."""
    rng = random.Random(seed)
    return [json.dumps(make_detail(rng, n), separators=(",", ":")).encode() for n in range(count)]


def fill_store(data_dir: Path, events: Sequence[Event], name: str = "hook") -> int:
    """Commit ``events`` into the relay's store file before the relay starts; returns the head."""
    from hookcli.relay.store import Store

    with Store(data_dir / f"{name}.db") as store:
        for start in range(0, len(events), 2000):
            store.append(events[start : start + 2000])
        head: int = store.head()
    return head


def python() -> str:
    """The interpreter running the bench (the project's venv)."""
    return sys.executable


def child_env() -> dict[str, str]:
    """Environment for children: no HOOK_* settings of the user's, the repo importable.

    Not PYTHONUNBUFFERED: ``hook listen`` must write its stdout as it does for users (the
    relay's banner and the baseline servers flush their one line themselves).
    """
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("HOOK_") and k != "PYTHONUNBUFFERED"
    }
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Child:
    """A child process whose stdout lines are read by a task; stopped with SIGTERM then kill."""

    def __init__(self, proc: asyncio.subprocess.Process, label: str) -> None:
        self.proc = proc
        self.label = label
        self.lines: asyncio.Queue[str] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, args: Sequence[str], label: str, cwd: Path | None = None) -> Child:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(),
            cwd=str(cwd or ROOT),
            limit=8 * 1024 * 1024,
        )
        return cls(proc, label)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines.put_nowait(line.decode("utf-8", "replace"))

    async def wait_line(self, prefix: str, seconds: float = STARTUP_SECONDS) -> str:
        """The first stdout line containing ``prefix`` (earlier lines are dropped)."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    line = await self.lines.get()
                    if prefix in line:
                        return line
        except TimeoutError:
            raise RuntimeError(f"{self.label}: no {prefix!r} line within {seconds} s") from None

    async def stop(self) -> str:
        """SIGTERM, wait, kill if needed; returns the tail of stderr for diagnostics."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), STOP_SECONDS)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        err = b""
        if self.proc.stderr is not None:
            with contextlib.suppress(Exception):
                err = await asyncio.wait_for(self.proc.stderr.read(), 2)
        return err.decode("utf-8", "replace")[-2000:]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (Linux /proc/stat; not idle/iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU use of this process, of some children, and of everything else on the machine.

    ``other_cpu_pct`` is what processes outside the bench used meanwhile (other work on a
    shared machine): when it is high, the figures are pessimistic.
    """

    def __init__(self, **pids: int) -> None:
        self.pids = pids
        self.began = time.perf_counter()
        self.own = time.process_time()
        self.machine = machine_busy_seconds()
        self.theirs = {name: cpu_seconds(pid) for name, pid in pids.items()}

    def percent(self) -> dict[str, int]:
        """Percent of one core, per process, since the meter was made."""
        wall = time.perf_counter() - self.began
        used = {"bench": time.process_time() - self.own}
        for name, pid in self.pids.items():
            used[name] = cpu_seconds(pid) - self.theirs[name]
        used["other"] = max(0.0, machine_busy_seconds() - self.machine - sum(used.values()))
        return {f"{name}_cpu_pct": round(100 * value / wall) for name, value in used.items()}


def per_event(cpu: dict[str, int], rate: float) -> dict[str, int]:
    """CPU microseconds per event for each process of a ``CpuMeter.percent()`` reading.

    Unlike a rate, this hardly moves when other work shares the machine: the figure to
    compare across runs, and the one a fix should lower.
    """
    return {
        key.replace("_cpu_pct", "_cpu_us_per_event"): round(value * 10_000 / rate)
        for key, value in cpu.items()
        if key != "other_cpu_pct" and rate > 0
    }


@dataclass(frozen=True)
class Running:
    """A started child server: its URL (or port) and pid."""

    url: str
    pid: int

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def count_results(child: Child) -> tuple[int, int]:
    """Delivered and failed result lines the listener has printed so far."""
    delivered = failed = 0
    while not child.lines.empty():
        line = child.lines.get_nowait()
        if '"type":"result"' in line:
            if '"status":"delivered"' in line:
                delivered += 1
            else:
                failed += 1
    return delivered, failed


def relay_auth() -> dict[str, str]:
    """The local token's header: since issue 8 the relay's stream and API need it (loopback too)."""
    from hookcli.config import ensure_local_token

    return {"Authorization": f"Bearer {ensure_local_token()}"}


@contextlib.asynccontextmanager
async def relay_process(data_dir: Path, *extra: str) -> AsyncIterator[Running]:
    """``hook relay serve --ingest-only`` as users run it, in its own process."""
    child = await Child.start(
        [
            python(),
            "-m",
            "hookcli",
            "relay",
            "serve",
            "--ingest-only",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--max-events",
            "1000000",
            *extra,
        ],
        "relay",
    )
    try:
        try:
            line = await child.wait_line("listening on")
        except RuntimeError:
            raise RuntimeError("relay did not start: " + await child.stop()) from None
        yield Running(line.rsplit(" ", 1)[-1].strip(), child.proc.pid)
    finally:
        await child.stop()


@contextlib.asynccontextmanager
async def server_process(kind: str, *args: str) -> AsyncIterator[Running]:
    """One of this module's baseline servers in its own process."""
    child = await Child.start([python(), str(Path(__file__)), kind, *args], kind)
    try:
        try:
            line = await child.wait_line("port ")
        except RuntimeError:
            raise RuntimeError(f"{kind} did not start: " + await child.stop()) from None
        yield Running(f"http://{HOST}:{int(line.split()[1])}", child.proc.pid)
    finally:
        await child.stop()


class RawHttp:
    """A load generator's HTTP/1.1 client: POSTs on one kept-alive connection, nothing else.

    aiohttp's client spends ~90-120 us of CPU per request, which made the bench process, not
    the server, the limit of a throughput run on 2 cores; this one spends a fraction of that.
    It understands exactly what aiohttp servers answer: a status line, headers, Content-Length.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, url: str) -> RawHttp:
        host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` as JSON; the status and the response body."""
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        marker = head.lower().find(b"content-length:")
        if marker < 0:
            raise RuntimeError(f"no Content-Length in {head!r}")
        length = int(head[marker + 15 : head.index(b"\r\n", marker)])
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class Pool:
    """Kept-alive connections to one server, each carrying one request at a time."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self.size = size
        self.idle: asyncio.Queue[RawHttp] = asyncio.Queue()

    async def __aenter__(self) -> Pool:
        for _ in range(self.size):
            self.idle.put_nowait(await RawHttp.open(self.url))
        return self

    async def __aexit__(self, *exc: object) -> None:
        while not self.idle.empty():
            await self.idle.get_nowait().close()

    async def post(self, path: str, body: bytes) -> dict[str, Any]:
        """POST and return the 202's JSON (anything else is an error)."""
        http = await self.idle.get()
        try:
            status, answer = await http.post(path, body)
        finally:
            self.idle.put_nowait(http)
        if status != 202:
            raise RuntimeError(f"ingest answered {status}: {answer[:200]!r}")
        data: dict[str, Any] = json.loads(answer)
        return data


async def paced_posts(
    pool: Pool, path: str, bodies: list[bytes], rate: float
) -> tuple[list[tuple[str, float, float]], float]:
    """POST each body at its slot on an absolute schedule (open loop: a slow answer does not
    delay the next send). Returns (id, before POST, 202 received) per event and the worst lag."""
    sent: list[tuple[str, float, float]] = []
    lag = 0.0

    async def post(body: bytes) -> None:
        before = time.perf_counter()
        data = await pool.post(path, body)
        sent.append((data["id"], before, time.perf_counter()))

    tasks = []
    start = time.perf_counter() + 0.05
    async with asyncio.timeout(PHASE_SECONDS):
        for n, body in enumerate(bodies):
            slot = start + n / rate
            delay = slot - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lag = max(lag, time.perf_counter() - slot)
            tasks.append(asyncio.create_task(post(body)))
        await asyncio.gather(*tasks)
    return sent, lag


def result_item(seq: int, event_id: str) -> str:
    """One answer inside a ``results`` message."""
    return (
        f'{{"seq":{seq},"id":"{event_id}","status":"delivered","attempt":1,'
        '"latency_ms":0.1,"code":200}'
    )


def result_message(seq: int, event_id: str) -> str:
    """A listen-mode answer, as docs/protocol.md spells it."""
    return (
        f'{{"type":"result","seq":{seq},"id":"{event_id}","status":"delivered",'
        '"attempt":1,"latency_ms":0.1,"code":200}'
    )


async def subscribe(
    ws: Any, name: str, pattern: dict[str, Any], start: Any, window: int = 1000
) -> dict[str, Any]:
    """hello -> welcome -> subscribe -> subscribed on a raw websockets connection."""
    await ws.send(json.dumps({"type": "hello", "protocol": 1, "client": "bench/1"}))
    welcome = json.loads(await asyncio.wait_for(ws.recv(), STARTUP_SECONDS))
    if welcome.get("type") != "welcome":
        raise RuntimeError(f"expected welcome, got {welcome}")
    await ws.send(
        json.dumps(
            {
                "type": "subscribe",
                "name": name,
                "pattern": pattern,
                "from": start,
                "mode": "listen",
                "window": window,
            }
        )
    )
    subscribed: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), STARTUP_SECONDS))
    if subscribed.get("type") != "subscribed":
        raise RuntimeError(f"expected subscribed, got {subscribed}")
    return subscribed


# ---------------------------------------------------------------------- baseline servers


async def _serve_ws_ceiling(count: int, seed: int) -> None:
    """Bare websockets: on connect, send the relay's event messages for the same events.

    The client's first message picks the mode: ``send`` (receive only: the ceiling) or
    ``answer`` (the client answers each with a result, which this side reads, as the relay does).
    """
    from websockets.asyncio.server import serve

    from hookcli.protocol import encode_event

    payloads = [
        encode_event(n + 1, e.to_json(), None) for n, e in enumerate(make_events(count, seed))
    ]

    async def handler(ws: Any) -> None:
        mode = await ws.recv()
        answers = 0

        async def read() -> None:
            nonlocal answers
            async for _ in ws:
                answers += 1
                if answers == count:
                    return

        reader = asyncio.create_task(read()) if mode == "answer" else None
        for payload in payloads:
            await ws.send(payload)
        if reader is not None:
            await asyncio.wait_for(reader, 60)
        await ws.wait_closed()

    async with serve(handler, HOST, 0, compression=None, max_size=4 * 1024 * 1024) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        await _announce_and_wait(port)


async def _serve_bare_relay() -> None:
    """The relay's job with nothing durable: POST -> 202, forward to the matching websockets.

    ``GET /ws?customer=c-17`` subscribes to one customer's events (no query: all events).
    """
    from aiohttp import web

    subscribers: dict[str | None, list[web.WebSocketResponse]] = {}
    seq = 0

    async def ingest(request: web.Request) -> web.Response:
        nonlocal seq
        body = await request.read()
        detail = json.loads(body)
        event_id = str(uuid.uuid4())
        seq += 1
        message = (
            f'{{"type":"event","seq":{seq},"event":{{"id":"{event_id}","detail":{body.decode()}}}}}'
        )
        for key in (detail.get("customer"), None):
            for ws in subscribers.get(key, ()):
                await ws.send_str(message)
        return web.json_response({"id": event_id, "seq": seq}, status=202)

    async def stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        key = request.query.get("customer")
        subscribers.setdefault(key, []).append(ws)
        try:
            async for _ in ws:
                pass
        finally:
            subscribers[key].remove(ws)
        return ws

    app = web.Application()
    app.router.add_post("/ingest", ingest)
    app.router.add_get("/ws", stream)
    await _run_app(app)


async def _serve_target() -> None:
    """A local app: 200 to every request, recording when each event id arrived.

    ``GET /_stats`` returns ``{"count": N}``, with ``?times=1`` also ``"times": {event_id:
    perf_counter}``; ``POST /_reset`` clears them.
    """
    from aiohttp import web

    times: dict[str, float] = {}
    count = 0

    async def handle(request: web.Request) -> web.Response:
        nonlocal count
        now = time.perf_counter()
        await request.read()
        count += 1
        event_id = request.headers.get("X-Hook-Event-Id")
        if event_id is not None:
            times.setdefault(event_id, now)
        return web.Response(text="ok")

    async def stats(request: web.Request) -> web.Response:
        if request.query.get("times"):
            return web.json_response({"count": count, "times": times})
        return web.json_response({"count": count})

    async def reset(request: web.Request) -> web.Response:
        nonlocal count
        times.clear()
        count = 0
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/_stats", stats)
    app.router.add_post("/_reset", reset)
    app.router.add_route("*", "/{tail:.*}", handle)
    await _run_app(app)


async def _run_app(app: Any) -> None:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await _announce_and_wait(port)
    finally:
        await runner.cleanup()


async def _announce_and_wait(port: int) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    sys.stdout.write(f"port {port}\n")
    sys.stdout.flush()
    await stop.wait()


def _main(argv: list[str]) -> None:
    kind = argv[0]
    if kind == "ws-ceiling":
        asyncio.run(_serve_ws_ceiling(int(argv[1]), int(argv[2])))
    elif kind == "bare-relay":
        asyncio.run(_serve_bare_relay())
    elif kind == "target":
        asyncio.run(_serve_target())
    else:
        raise SystemExit(f"unknown server {kind!r}")


if __name__ == "__main__":
    _main(sys.argv[1:])
