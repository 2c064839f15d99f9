"""Running a relay: store + source + HTTP server, started and stopped as one unit.

``start_relay`` is what ``hook relay serve`` runs, what ``hook listen`` embeds when no relay is
configured, and what the tests start in their own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from hookcli import config
from hookcli.errors import ConfigError, HookError, SourceError, StoreError
from hookcli.events import Event
from hookcli.relay import connections
from hookcli.relay.activity import ActivitySink
from hookcli.relay.connections import ConnectionLimits
from hookcli.relay.guard import GuardSettings
from hookcli.relay.server import IngestSettings, Relay, RelayInfo, tls_context
from hookcli.relay.store import Store

if TYPE_CHECKING:
    from hookcli.sources.emulator import Emulator
    from hookcli.sources.sqs import SqsSource

log = logging.getLogger("hook.relay")

DEFAULT_PORT = 8750
DAY = 86400.0
#: Shortest token that may unlock a non-loopback --host (and any token in a --tokens file).
MIN_TOKEN_LENGTH = 16
MAKE_TOKEN = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """Everything ``hook relay serve`` takes; ``bus=None`` means the embedded local mode."""

    name: str = "hook"
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path | None = None
    bus: str | None = None
    region: str | None = None
    profile: str | None = None
    #: token -> scope name ("" for a single shared token)
    tokens: Mapping[str, str] = field(default_factory=dict)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ingest: IngestSettings = field(default_factory=IngestSettings)
    max_message: int = 1024 * 1024
    max_age: float | None = 7 * DAY
    max_count: int | None = 100_000
    sweep_interval: float = 60.0
    #: False: ingest only (no EventBridge source, no moto).
    source: bool = True
    #: Connection caps and timeouts (relay/connections.py).
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)
    #: Host names and browser origins answered beyond loopback (``--allow-host/-origin``).
    guard: GuardSettings = field(default_factory=GuardSettings)

    @property
    def local(self) -> bool:
        """Embedded mode: moto's server on loopback stands in for EventBridge and SQS."""
        return self.bus is None


@dataclass(slots=True)
class RunningRelay:
    """A started relay; ``stop()`` shuts down the server, the source, and the store."""

    relay: Relay
    url: str
    info: RelayInfo
    db_path: Path
    _runner: web.AppRunner
    _tasks: list[asyncio.Task[None]]
    _source: SqsSource | None
    _emulator: Emulator | None
    _lock: int | None = None
    #: The local token when the relay runs on it (loopback, no --token/--tokens), else None.
    local_token: str | None = None

    @property
    def ws_url(self) -> str:
        """The websocket stream's URL."""
        return self.url.replace("http", "ws", 1) + "/v1/stream"

    @property
    def source(self) -> SqsSource | None:
        """The SQS poller, when the relay polls one."""
        return self._source

    async def stop(self) -> None:
        """Stop polling, close connections, flush results, close the store (idempotent)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self._runner.cleanup()
        self.relay.store.close()
        if self._emulator is not None:
            await asyncio.to_thread(self._emulator.stop)
            self._emulator = None
        if self._lock is not None:
            os.close(self._lock)  # releases the store lock
            self._lock = None


def default_data_dir() -> Path:
    """The platform's user data dir for hook (e.g. ~/.local/share/hook on Linux)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("hook", appauthor=False))


def check_bind(host: str, tokens: Mapping[str, str]) -> None:
    """Beyond loopback, only with tokens of 16+ characters: an open relay leaks every event.

    A short token is a password anyone on the network can guess, so it cannot unlock a public
    ``--host``. On loopback it stays allowed: only this machine reaches the relay (and without
    any token the relay uses the local token).
    """
    if config.is_loopback(host):
        return
    if not tokens:
        raise ConfigError(
            f"refusing to listen on {host} without a token",
            hint="set --token (or HOOK_TOKEN) or --tokens FILE, or keep --host 127.0.0.1",
        )
    if any(len(token) < MIN_TOKEN_LENGTH for token in tokens):
        raise ConfigError(
            f"refusing to listen on {host} with a token shorter than {MIN_TOKEN_LENGTH} characters",
            hint=f"make one: {MAKE_TOKEN}, or keep --host 127.0.0.1",
        )


async def start_relay(
    settings: RelaySettings, activity: ActivitySink | None = None
) -> RunningRelay:
    """Bind the port, open the store, set up the source, serve; roll back what started on failure.

    ``activity`` hears about each event received and each listener connecting or leaving
    (``relay/activity.py``); ``hook relay serve`` renders them.

    The port is bound first, so a taken port fails at once, before the emulator or AWS setup;
    connections that arrive before the server starts wait in the socket's backlog.
    """
    check_bind(settings.host, settings.tokens)
    tokens = dict(settings.tokens)
    local_token = None
    if not tokens:
        # Loopback without a token: the local token, so no web page or other user gets in.
        local_token = config.ensure_local_token()
        tokens = {local_token: ""}
    ssl_context = tls_context(settings.tls_cert, settings.tls_key)
    data_dir = settings.data_dir or default_data_dir()
    db_path = data_dir / f"{settings.name}.db"
    lock = _lock_store(db_path)
    try:
        sock = _listen(settings.host, settings.port)
    except BaseException:
        os.close(lock)
        raise
    try:
        store = Store(
            db_path, max_age=settings.max_age, max_count=settings.max_count, checkpoint_interval=0.5
        )
    except BaseException:
        sock.close()
        os.close(lock)
        raise
    emulator: Emulator | None = None
    source: SqsSource | None = None
    runner: web.AppRunner | None = None
    try:
        info = RelayInfo(name=settings.name, mode="ingest", bus="", region="")
        if settings.source:
            emulator, source, info = await _start_source(settings)
        relay = Relay(
            store,
            info,
            tokens=tokens,
            ingest=settings.ingest,
            max_message=settings.max_message,
            health=_health(source),
            guard=settings.guard,
            activity=activity,
        )
        guard = connections.ConnectionGuard(
            settings.connections, open_files=connections.raise_open_file_limit()
        )
        connections.install(relay.app, guard)
        # auto_decompress=False: ingest stores bodies as sent (Content-Encoding kept), so a
        # replay is byte-exact and signatures over compressed bytes still verify; --max-body
        # counts wire bytes.
        runner = web.AppRunner(
            relay.app,
            access_log=None,
            handle_signals=False,
            auto_decompress=False,
            keepalive_timeout=settings.connections.keepalive_timeout,
        )
        await runner.setup()
        await connections.GuardedSite(runner, sock, guard, ssl_context=ssl_context).start()
        port = int(sock.getsockname()[1])
        scheme = "https" if ssl_context else "http"
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        url = f"{scheme}://{host}:{port}"
        tasks = [
            asyncio.create_task(_sweep(store, settings.sweep_interval)),
            asyncio.create_task(connections.run(guard)),
        ]
        if source is not None:
            tasks.append(asyncio.create_task(_poll(source, relay)))
    except BaseException:
        if runner is not None:
            await runner.cleanup()
        sock.close()
        store.close()
        if emulator is not None:
            await asyncio.to_thread(emulator.stop)
        os.close(lock)
        raise
    return RunningRelay(
        relay, url, info, db_path, runner, tasks, source, emulator, lock, local_token
    )


def _lock_store(db_path: Path) -> int:
    """Hold ``<db>.lock`` for the relay's life: one relay per store (the OS drops it on exit)."""
    lock_path = db_path.with_name(db_path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StoreError(
            f"cannot create the store lock {lock_path}: {exc.strerror or exc}",
            hint="check that --data-dir is a writable directory",
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise StoreError(
            f"another relay is already using the store {db_path}",
            hint="stop that relay first, or give this one its own store with --name NAME "
            "or --data-dir DIR",
        ) from exc
    return fd


async def _start_source(
    settings: RelaySettings,
) -> tuple[Emulator | None, SqsSource, RelayInfo]:
    from hookcli.sources.eventbridge import AwsSettings, provision
    from hookcli.sources.sqs import SqsSource

    emulator: Emulator | None = None
    if settings.local:
        from hookcli.sources.emulator import start_emulator

        emulator = await asyncio.to_thread(start_emulator)
        aws = emulator.settings(relay_name=settings.name)
    else:
        assert settings.bus is not None
        aws = AwsSettings(
            bus=settings.bus,
            region=settings.region,
            profile=settings.profile,
            relay_name=settings.name,
        )
    try:
        provisioned = await asyncio.to_thread(provision, aws)
    except BaseException:
        if emulator is not None:
            await asyncio.to_thread(emulator.stop)
        raise
    source = SqsSource(aws, provisioned)
    info = RelayInfo(
        name=settings.name,
        mode="local" if settings.local else "aws",
        bus=provisioned.bus,
        region=provisioned.region,
        account=provisioned.account,
        queue_url=provisioned.queue_url,
        endpoint_url=emulator.endpoint_url if emulator else "",
    )
    return emulator, source, info


def _health(source: SqsSource | None) -> Callable[[], str | None]:
    def check() -> str | None:
        if source is None:
            return None
        from hookcli.sources.sqs import SourceState

        if source.state is SourceState.POLLING:
            return None
        reason = f"source is {source.state.name.lower()}"
        return f"{reason}: {source.last_error}" if source.last_error else reason

    return check


async def _poll(source: SqsSource, relay: Relay) -> None:
    async def commit(events: list[Event]) -> None:
        await relay.commit(events)

    try:
        await source.run(commit)
    except HookError:
        log.exception("the event source stopped")
        raise
    except Exception as exc:
        log.exception("the event source crashed")
        raise SourceError(f"the event source stopped: {exc}") from exc


async def _sweep(store: Store, interval: float) -> None:
    """Apply retention now and then; a failed sweep is logged, never fatal."""
    while True:
        try:
            removed = store.sweep(time.time())
            if removed:
                log.info("retention removed %d events", removed)
        except HookError as exc:
            log.warning("retention sweep failed: %s", exc.message)
        await asyncio.sleep(interval)


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (0 = any free port), or a ConfigError saying why not."""
    try:
        family = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host.strip("[]"), port), family=family)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="another relay may be running there; pick another --port (0 = any free one)",
        ) from exc


def load_tokens(path: Path) -> dict[str, str]:
    """Parse a ``name:token`` file (``#`` comments, blank lines ok) into token -> name.

    A name is the scope of its member's listeners (``name/listener``), so it may not contain
    ``/``: ``team`` + listener ``carol/x`` and ``team/carol`` + ``x`` would be one listener.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the tokens file {path}: {exc.strerror or exc}") from exc
    tokens: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, token = line.partition(":")
        name, token = name.strip(), token.strip()
        if not sep or not name or not token:
            raise ConfigError(f"{path} line {number}: expected name:token")
        if "/" in name:
            raise ConfigError(
                f"{path} line {number}: the name {name!r} contains '/'",
                hint="a name scopes its listeners as name/listener; "
                "use e.g. '-' or '.' instead (team-carol)",
            )
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"{path} line {number}: the token for {name!r} is shorter than "
                f"{MIN_TOKEN_LENGTH} characters",
                hint=f"make one: {MAKE_TOKEN}",
            )
        if token in tokens:
            raise ConfigError(f"{path} line {number}: that token is already given to another name")
        tokens[token] = name
    if not tokens:
        raise ConfigError(f"the tokens file {path} has no name:token lines")
    return tokens


def banner(running: RunningRelay, settings: RelaySettings) -> list[str]:
    """What ``hook relay serve`` prints once it is up (never a token)."""
    info = running.info
    lines = [f"hook relay {info.name!r} listening on {running.url}"]
    if info.mode == "local":
        lines.append(
            f"  source   emulated EventBridge bus {info.bus!r} (moto at {info.endpoint_url}), "
            f"queue {info.queue_url}"
        )
    elif info.mode == "aws":
        lines.append(f"  source   account {info.account}, region {info.region}, bus {info.bus!r}")
        lines.append(f"  queue    {info.queue_url}")
    else:
        lines.append("  source   none (ingest only)")
    lines.append(f"  ingest   POST {running.url}/v1/ingest/<channel>")
    if running.local_token is not None:
        auth = f"local token ({_home_relative(config.local_token_path())})"
    elif len(settings.tokens) == 1:
        auth = "bearer token (--token)" if "" in settings.tokens.values() else "1 team token"
    else:
        auth = f"{len(settings.tokens)} team tokens (--tokens)"
    lines.append(f"  auth     {auth}; /v1/health and /v1/ingest are open")
    lines.append(f"  store    {running.db_path}")
    return lines


def _home_relative(path: Path) -> str:
    """``~/...`` for a path under the home directory (shorter in the banner)."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)
