"""``hook demo``: a self-contained tour on the embedded default, with no AWS account.

It starts the embedded relay (moto's emulated EventBridge + SQS on loopback), a small order-service
app on loopback, and a listener; puts an order flow on the emulated bus, so events travel the real
path (PutEvents -> rule -> SQS -> relay -> listener -> app); the app rejects one event; the demo
"fixes" the app and replays the failed event through the same delivery path.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from hookcli.config import Connection
from hookcli.delivery import RetryPolicy
from hookcli.listen import ListenSettings, TargetSpec, listen
from hookcli.protocol import Start
from hookcli.replay import ReplaySettings, replay
from hookcli.updates import Delivered, Notice, Ready, Update

Emit = Callable[[Update], None]
LISTENER = "demo"
TIMEOUT = 60.0

ORDERS = [
    ("OrderCreated", {"orderId": "o-1001", "customer": "c-17", "total": 42.5, "currency": "EUR"}),
    ("OrderPaid", {"orderId": "o-1001", "payment": "card", "total": 42.5, "currency": "EUR"}),
    ("OrderCreated", {"orderId": "o-1002", "customer": "c-08", "total": 9800, "currency": "JPY"}),
    ("OrderShipped", {"orderId": "o-1001", "carrier": "DHL", "parcels": 1}),
    ("OrderPaid", {"orderId": "o-1002", "payment": "card", "total": 9800, "currency": "JPY"}),
]


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What happened: events sent, delivered first time, failed, and recovered by replay."""

    sent: int
    delivered: int
    failed: int
    replayed: int

    @property
    def ok(self) -> bool:
        """Every event ended delivered (the failed one through the replay)."""
        return self.delivered + self.replayed == self.sent


class SampleApp:
    """The order service under development: it cannot take JPY payments until "fixed"."""

    def __init__(self) -> None:
        self.fixed = False
        self.received = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.received += 1
        event = await request.json()
        detail = event.get("detail", {})
        if event.get("detail-type") == "OrderPaid" and detail.get("currency") == "JPY":
            if self.fixed:
                return web.json_response({"ok": True, "handled": "OrderPaid", "rate": 0.0062})
            return web.Response(status=500, text="KeyError: 'JPY' (no exchange rate for JPY)\n")
        return web.json_response({"ok": True, "handled": event.get("detail-type")})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/events", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/events"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def demo(emit: Emit, data_dir: Path | None = None) -> DemoSummary:
    """Run the tour; every line of output goes through ``emit``."""
    with tempfile.TemporaryDirectory(prefix="hook-demo-") as scratch:
        async with asyncio.timeout(TIMEOUT):
            return await _tour(emit, data_dir or Path(scratch))


async def _tour(emit: Emit, data_dir: Path) -> DemoSummary:
    from hookcli.relay.service import RelaySettings, start_relay
    from hookcli.send import Bus, entry_from, send

    emit(Notice("Starting an embedded relay with an emulated EventBridge bus (no AWS account)…"))
    running = await start_relay(RelaySettings(port=0, data_dir=data_dir, name="demo"))
    app = SampleApp()
    await app.start()
    emit(Notice(f"Sample order service listening on {app.url} (it has a bug with JPY payments)."))
    connection = Connection(relay=running.url, token=running.local_token, configured=True)
    results: list[Delivered] = []
    ready = asyncio.Event()
    progressed = asyncio.Event()

    def track(update: Update) -> None:
        if isinstance(update, Ready):
            ready.set()
        if isinstance(update, Delivered):
            results.append(update)
            progressed.set()
        emit(update)

    settings = ListenSettings(
        connection=connection,
        name=LISTENER,
        pattern={"source": ["shop.orders"]},
        target=TargetSpec(url=app.url),
        start=Start("now"),
        policy=RetryPolicy(retries=2, timeout=5.0, base_delay=0.2, max_delay=1.0),
    )
    listener = asyncio.create_task(listen(settings, track))
    try:
        await _first(ready, listener)
        entries = [
            entry_from({"source": "shop.orders", "detail-type": kind, "detail": detail}, "demo")
            for kind, detail in ORDERS
        ]
        bus = Bus(
            bus=running.info.bus,
            region=running.info.region,
            endpoint_url=running.info.endpoint_url,
        )
        emit(Notice(f"Putting {len(entries)} order events on the emulated bus (hook send)…"))
        await asyncio.to_thread(send, bus, entries)
        while len(results) < len(entries):
            progressed.clear()
            await _first(progressed, listener)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    failed = [r for r in results if not r.outcome.delivered]
    delivered = len(results) - len(failed)
    replayed = 0
    if failed:
        app.fixed = True
        emit(Notice("Fixed the app (it now knows JPY). Replaying the failed event (hook replay)…"))
        summary = await replay(
            ReplaySettings(
                connection=connection,
                target=TargetSpec(url=app.url),
                identity=LISTENER,
                ids=tuple(r.event.id for r in failed),
                policy=RetryPolicy(retries=1, timeout=5.0, base_delay=0.2),
            ),
            emit,
        )
        replayed = summary.delivered
    await app.stop()
    await running.stop()
    result = DemoSummary(len(entries), delivered, len(failed), replayed)
    emit(Notice(_summary_text(result)))
    return result


async def _first(event: asyncio.Event, listener: asyncio.Task[None]) -> None:
    """Wait for ``event``, but surface the listener's error at once if it dies first."""
    waiter = asyncio.create_task(event.wait())
    done, _ = await asyncio.wait({waiter, listener}, return_when=asyncio.FIRST_COMPLETED)
    if listener in done:
        waiter.cancel()
        listener.result()  # raises the listener's error
        raise RuntimeError("the demo listener stopped early")


def _summary_text(summary: DemoSummary) -> str:
    lines = [
        f"Done: {summary.sent} events sent, {summary.delivered} delivered, "
        f"{summary.failed} failed and {summary.replayed} recovered by replay.",
        "Next, with your own app:",
        "  hook relay serve                      # terminal 1: the relay (emulated bus)",
        "  hook listen --target localhost:3000   # terminal 2: events -> your app",
        "  hook send --source shop.orders --detail-type OrderCreated --detail "
        + "'"
        + json.dumps({"orderId": "o-1"})
        + "'",
        "  hook events          # what arrived and who got it",
        "  hook replay --failed # deliver failures again once fixed",
    ]
    return "\n".join(lines)
