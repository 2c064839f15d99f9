"""The embedded local relay's cloud: moto's server on loopback as an emulated EventBridge + SQS.

The only module that imports moto (an optional extra: ``pip install 'hookcli[local]'``). Local
mode runs the same provisioning and polling code as real AWS, pointed at ``endpoint_url`` with
static dummy credentials that are passed explicitly, so no AWS config or env var is read.

moto keeps its state per process: every emulator started in one process shares the same
accounts, buses and queues (moto's backends are module-level), and loses them on exit. It also
shares the process environment: an AWS_PROFILE naming a missing profile breaks moto's own
error responses. And moto's SQS costs O(queue depth) per message sent or received: one event
goes from PutEvents to commit in ~9 ms, but a burst of 1,000 queued events drains at ~40/s.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from hookcli.config import is_loopback
from hookcli.errors import MissingExtraError, SourceError
from hookcli.sources.eventbridge import AwsSettings

#: moto's default account (what STS GetCallerIdentity answers for unknown access keys).
ACCOUNT = "123456789012"
REGION = "us-east-1"
#: Static dummy keys for the emulator; moto accepts any.
CREDENTIALS = ("hook-local", "hook-local-secret")


@dataclass(frozen=True, slots=True)
class Emulator:
    """A running moto server on 127.0.0.1; ``stop()`` (or ``with``) shuts it down."""

    endpoint_url: str
    region: str = REGION
    account: str = ACCOUNT
    _server: Any = field(default=None, repr=False, compare=False)
    _stopped: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def settings(self, *, bus: str = "default", relay_name: str = "hook") -> AwsSettings:
        """AwsSettings for a bus on this emulator, with its static dummy credentials."""
        return AwsSettings(
            bus=bus,
            region=self.region,
            endpoint_url=self.endpoint_url,
            credentials=CREDENTIALS,
            relay_name=relay_name,
        )

    def stop(self) -> None:
        """Shut the server down and wait for its thread; safe to call twice."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._server.stop()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_emulator() -> Emulator:
    """Start moto's server on 127.0.0.1 with an OS-chosen port; returns once it accepts."""
    try:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server
    except ImportError as exc:
        raise MissingExtraError(
            "the embedded local relay needs moto",
            hint="pip install 'hookcli[local]' (from a clone: pip install -e '.[local]')",
        ) from exc
    # werkzeug logs every request at INFO on stderr through its own handler; the emulator is
    # an implementation detail of local mode, so keep only its warnings and errors.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # What moto's ThreadedMotoServer does, with the app wrapped so web pages are refused.
    app = refuse_browsers(DomainDispatcherApplication(create_backend_app))
    try:
        server = make_server("127.0.0.1", 0, app, True, request_handler=MotoRequestHandler)
    except OSError as exc:
        raise SourceError(f"cannot start the local emulator on 127.0.0.1: {exc}") from exc
    thread = threading.Thread(target=server.serve_forever, name="hook-emulator", daemon=True)
    thread.start()
    return Emulator(
        endpoint_url=f"http://127.0.0.1:{server.port}", _server=_Running(server, thread)
    )


@dataclass(frozen=True, slots=True)
class _Running:
    """The werkzeug server and the thread serving it."""

    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


#: WSGI environ keys of headers only a web browser sends (Fetch Metadata and CORS).
BROWSER_HEADERS = ("HTTP_ORIGIN", "HTTP_SEC_FETCH_SITE", "HTTP_SEC_FETCH_MODE")


def refuse_browsers(app: Any) -> Any:
    """Wrap a WSGI app so requests from web pages, or under a foreign Host, get 403.

    The emulator listens on loopback, where any page in the developer's browser can reach it
    with requests it may send without asking (CORS "simple" ones: a form POST, a no-cors
    fetch): SQS's query protocol takes form-encoded POSTs, and a POST to moto's
    ``/moto-api/reset`` wipes the emulated bus and queue. boto3 sends none of these headers
    and addresses the emulator as 127.0.0.1, so a foreign Host (DNS rebinding) is refused too.
    """

    def guarded(environ: dict[str, Any], start_response: Any) -> Any:
        host = str(environ.get("HTTP_HOST", ""))
        name = host[: host.rfind(":")] if host.rfind(":") > host.rfind("]") else host
        if any(key in environ for key in BROWSER_HEADERS) or (host and not is_loopback(name)):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"the local emulator answers only hook, on loopback\n"]
        return app(environ, start_response)

    return guarded
