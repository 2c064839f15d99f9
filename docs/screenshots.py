"""Draw the README's screenshots of ``hook ui`` (docs/ui-*.svg) from a real relay.

Run: ``python docs/screenshots.py`` (writes docs/ui-events.svg, ui-details.svg, ui-issues.svg,
ui-help.svg). Everything runs on loopback: an ingest-only relay on a free port with its own
state directory, a small local app that rejects one kind of webhook, and a real listener
delivering to it; then the view is driven headless with Textual's pilot and saved as SVG.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
SIZE = (100, 30)


async def _app_server() -> tuple[str, object]:
    """A local app on 127.0.0.1: 500 for GitHub pushes (a bug to fix), 200 for the rest."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        if request.headers.get("X-GitHub-Event") == "push":
            return web.Response(status=500, text="KeyError: 'head_commit'\n  at handlers/push.py")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return f"http://127.0.0.1:{runner.addresses[0][1]}", runner


WEBHOOKS = [
    ("shop", {"X-Shop-Topic": "orders/create"}, {"order": 1001, "total": 42.5, "items": 2}),
    ("github", {"X-GitHub-Event": "push"}, {"ref": "refs/heads/main", "commits": []}),
    ("shop", {"X-Shop-Topic": "orders/paid"}, {"order": 1001, "paid": True}),
    ("github", {"X-GitHub-Event": "push"}, {"ref": "refs/heads/dev", "commits": []}),
    ("shop", {"X-Shop-Topic": "orders/create"}, {"order": 1002, "total": 9.99, "items": 1}),
    ("github", {"X-GitHub-Event": "issues"}, {"action": "opened", "number": 7}),
]


async def main() -> None:
    import aiohttp

    from hookcli.config import Connection
    from hookcli.delivery import RetryPolicy
    from hookcli.listen import ListenSettings, TargetSpec, listen
    from hookcli.protocol import Start
    from hookcli.relay.service import RelaySettings, start_relay
    from hookcli.ui.app import ui_app
    from hookcli.ui.feed import RelayQuery

    work = Path(tempfile.mkdtemp(prefix="hook-shots-"))
    relay = await start_relay(RelaySettings(port=0, data_dir=work / "relay", source=False))
    url, runner = await _app_server()
    connection = Connection(relay=relay.url, token=relay.local_token, configured=True)
    try:
        async with aiohttp.ClientSession() as session:
            for channel, headers, body in WEBHOOKS:
                async with session.post(
                    f"{relay.url}/v1/ingest/{channel}",
                    data=json.dumps(body).encode(),
                    headers={"Content-Type": "application/json", **headers},
                ) as response:
                    assert response.status == 202, await response.text()
        settings = ListenSettings(
            connection=connection,
            name="dev@laptop:3000",
            pattern={},
            target=TargetSpec(url=f"{url}/webhooks"),
            start=Start("seq", seq=0),
            policy=RetryPolicy(retries=1, timeout=2, base_delay=0.05),
        )
        results: list[object] = []
        task = asyncio.ensure_future(listen(settings, results.append))
        while sum(1 for r in results if getattr(r, "kind", "") == "result") < len(WEBHOOKS):
            await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

        app = ui_app(connection, RelayQuery(), me="dev@laptop")
        async with app.run_test(size=SIZE) as pilot:
            while len(app.rows) < len(WEBHOOKS) or "live" not in app.state_text:
                await pilot.pause(0.05)
            await pilot.pause(0.3)  # the top line is redrawn at most every 0.2 s
            app.save_screenshot("ui-events.svg", path=str(DOCS))
            failed = next(r for r in app.rows.order if r.status == "failed")
            app.events_table.move_cursor(row=app.rows.order.index(failed))
            await pilot.press("enter")
            while getattr(app.screen, "record", None) is None:
                await pilot.pause(0.05)
            await pilot.pause(0.1)
            app.save_screenshot("ui-details.svg", path=str(DOCS))
            await pilot.press("escape", "i")
            pane = app.query_one("#issues-pane")
            while not getattr(pane, "groups", None):
                await pilot.pause(0.05)
            await pilot.pause(0.2)
            app.save_screenshot("ui-issues.svg", path=str(DOCS))
            await pilot.press("question_mark")
            await pilot.pause(0.2)
            app.save_screenshot("ui-help.svg", path=str(DOCS))
            await pilot.press("escape", "q")
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]
        await relay.stop()


if __name__ == "__main__":
    # The relay's local token goes to a scratch state directory, never the user's.
    os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="hook-shots-state-")
    sys.path.insert(0, str(DOCS.parent))
    asyncio.run(main())
    print(json.dumps({"written": sorted(p.name for p in DOCS.glob("ui-*.svg"))}))
