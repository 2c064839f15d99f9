"""The relay's durable store: every event, every delivery result, every listener's cursor.

SQLite (stdlib ``sqlite3``) in WAL mode, one file. Synchronous API, called from the relay's event
loop thread, so every call is short: constant SQL (the sqlite3 statement cache keeps it prepared),
indexed lookups, one transaction per batch. sqlite3 errors are translated into ``StoreError``
with a hint saying what to do.

Tables: ``events`` (seq AUTOINCREMENT, so a seq is never reused, even after retention deleted
it; one row per event id and replay-name, the event's JSON text as received), ``deliveries``
(one row per recorded attempt, removed with their event) and ``listeners`` (cursor and
pattern per listener name). The schema version lives in ``PRAGMA user_version``;
``_MIGRATIONS`` upgrades it one step at a time.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from hookcli.errors import StoreError, UsageError
from hookcli.events import Event, RawRequest, decode_event_text, parse_event, with_request
from hookcli.failures import FailureCount, first_line
from hookcli.protocol import Status

#: ``PRAGMA application_id``: marks a file as a hook store ("hook" in ASCII).
APPLICATION_ID: Final = 0x686F6F6B

#: ``_MIGRATIONS[n]`` upgrades a store from schema version n to n + 1, in one transaction.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            source TEXT NOT NULL,
            detail_type TEXT NOT NULL,
            received REAL NOT NULL,
            event_json TEXT NOT NULL,
            request_head TEXT,
            request_body BLOB,
            CHECK ((request_head IS NULL) = (request_body IS NULL))
        )""",
        "CREATE INDEX events_received ON events (received)",
        "CREATE INDEX events_source ON events (source)",
        "CREATE INDEX events_detail_type ON events (detail_type)",
        """CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            seq INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
            listener TEXT NOT NULL,
            event_id TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('delivered', 'failed')),
            attempt INTEGER NOT NULL,
            latency_ms REAL NOT NULL,
            code INTEGER,
            error TEXT,
            at REAL NOT NULL,
            replay INTEGER NOT NULL
        )""",
        "CREATE INDEX deliveries_seq ON deliveries (seq)",
        "CREATE INDEX deliveries_listener_seq ON deliveries (listener, seq)",
        # Failures are rare: a partial index keeps `failed()` proportional to them.
        "CREATE INDEX deliveries_failed ON deliveries (seq) WHERE status = 'failed'",
        """CREATE TABLE listeners (
            name TEXT PRIMARY KEY,
            cursor INTEGER NOT NULL,
            pattern TEXT NOT NULL,
            last_seen REAL NOT NULL
        ) WITHOUT ROWID""",
    ),
    # 1 -> 2: history says what really happened to a replay (issue 9): the target each
    # delivery went to, who replayed it, and the failed delivery row it answers. NULL in rows
    # written before (their target was never recorded), and in live deliveries' replay columns.
    (
        "ALTER TABLE deliveries ADD COLUMN target TEXT",
        "ALTER TABLE deliveries ADD COLUMN replayed_by TEXT",
        "ALTER TABLE deliveries ADD COLUMN replay_of INTEGER",
    ),
    # 2 -> 3 (issue 11): an event is unique by (id, replay-name), not id alone: if an archive
    # replay keeps the original ids (AWS does not say), a replayed copy is a delivery of its
    # own, not a duplicate of the original or of another replay's copy ('' = no replay-name).
    # `repeated_keys` flags event_json texts that give a key twice, which match with every
    # value (``events.decode_event_text``); older rows were written by json.dumps, so 0.
    # SQLite cannot drop a UNIQUE constraint, so the table is rebuilt (the procedure of
    # https://www.sqlite.org/lang_altertable.html#otheralter; foreign keys are off meanwhile),
    # keeping every seq and the AUTOINCREMENT high-water mark (head).
    (
        """CREATE TABLE events_v3 (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL,
            replay_name TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL,
            detail_type TEXT NOT NULL,
            received REAL NOT NULL,
            event_json TEXT NOT NULL,
            request_head TEXT,
            request_body BLOB,
            repeated_keys INTEGER NOT NULL DEFAULT 0,
            CHECK ((request_head IS NULL) = (request_body IS NULL)),
            UNIQUE (id, replay_name)
        )""",
        """INSERT INTO events_v3 (seq, id, replay_name, source, detail_type, received,
            event_json, request_head, request_body)
            SELECT seq, id, coalesce(json_extract(event_json, '$."replay-name"'), ''), source,
            detail_type, received, event_json, request_head, request_body FROM events""",
        "DELETE FROM sqlite_sequence WHERE name = 'events_v3'",
        "INSERT INTO sqlite_sequence (name, seq)"
        " SELECT 'events_v3', seq FROM sqlite_sequence WHERE name = 'events'",
        "DROP TABLE events",
        "ALTER TABLE events_v3 RENAME TO events",
        "CREATE INDEX events_received ON events (received)",
        "CREATE INDEX events_source ON events (source)",
        "CREATE INDEX events_detail_type ON events (detail_type)",
    ),
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)

_STATUSES: Final = ("delivered", "failed", "pending")
_EVENT_COLUMNS = (
    "e.seq, e.event_json, e.request_head, e.request_body, e.received, e.id, e.repeated_keys"
)
_DELIVERY_COLUMNS = (
    "d.listener, d.seq, d.event_id, d.status, d.attempt, d.latency_ms, d.code, d.error, d.at,"
    " d.replay, d.target, d.replayed_by, d.replay_of, d.id"
)
# Insert-if-absent as a lookup on the (id, replay_name) index, then a plain INSERT, inside one
# write transaction (so nothing slips in between). Not `ON CONFLICT DO NOTHING`: SQLite
# allocates an AUTOINCREMENT seq before it sees the conflict, so every SQS redelivery would burn
# a seq. Not `INSERT ... SELECT ... WHERE NOT EXISTS (SELECT ... FROM events)` either: a SELECT
# reading the table it inserts into is first copied to a temporary table, which for a 2.6 KB
# webhook row cost more than the insert itself (~45 against ~20 us per row, issue 13).
_EVENT_EXISTS = "SELECT 1 FROM events WHERE id = ? AND replay_name = ?"
_INSERT_EVENT = (
    "INSERT INTO events (id, source, detail_type, received, event_json, request_head,"
    " request_body, replay_name, repeated_keys) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Which copy a bare id names when an archive replay stored it again under the same id: the
# original (no replay-name), else the earliest replayed copy still kept.
_FIRST_COPY = "ORDER BY e.replay_name <> '', e.seq LIMIT 1"
# A result for an event that retention already removed (or a seq/id mismatch) is dropped.
log = logging.getLogger("hook.store")

_UPSERT_CURSOR = (
    "INSERT INTO listeners (name, cursor, pattern, last_seen) VALUES (?, ?, '{}', ?)"
    " ON CONFLICT (name) DO UPDATE SET cursor = max(cursor, excluded.cursor),"
    " last_seen = excluded.last_seen"
)
_INSERT_DELIVERY = (
    "INSERT INTO deliveries (seq, listener, event_id, status, attempt, latency_ms, code, error,"
    " at, replay, target, replayed_by, replay_of)"
    " SELECT seq, ?, id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM events WHERE seq = ? AND id = ?"
)
# The latest delivery of event `e` to the listener of `d`, by record order.
_LATEST = (
    "d.id = (SELECT max(d2.id) FROM deliveries d2"
    " WHERE d2.listener = d.listener AND d2.seq = d.seq)"
)

_Row = tuple[int, str, str | None, bytes | None, float, str, int]


def _listener_scope(listener: str | None, within: str | None, column: str) -> tuple[str, list[Any]]:
    """The SQL condition (and its parameters) keeping one listener's or one prefix's rows."""
    if listener is not None:
        return f" AND {column} = ?", [listener]
    if within is not None:
        # substr, not LIKE: a name may contain % or _, which LIKE would read as wildcards.
        return f" AND substr({column}, 1, ?) = ?", [len(within), _utf8(within)]
    return "", []


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A committed event: its seq, and the JSON texts the relay sends without re-encoding.

    ``event`` is decoded from ``event_json`` on first use and cached: streaming reads mostly
    need only ``seq``, ``event_json`` and ``request_json``. Measured on 2 cores: a row read
    costs ~1.4 us, decoding the event ~9 us more (~20 us more for a 1 KiB webhook request).
    """

    seq: int
    event_json: str
    request_json: str | None
    received: float
    #: The id as stored (``stored_text`` of the event's id): what a result's id must match.
    event_id: str = ""
    #: Whether ``event_json`` gives a key twice in some object (see ``document``).
    repeated_keys: bool = False
    _event: Event | None = field(default=None, repr=False, compare=False)

    @property
    def event(self) -> Event:
        """The event, with ``.request`` (the raw webhook request) when it has one."""
        event = self._event
        if event is None:
            event = parse_event(self.event_json)
            if self.request_json is not None:
                event = with_request(event, RawRequest.from_dict(json.loads(self.request_json)))
            object.__setattr__(self, "_event", event)
        return event

    def document(self) -> Mapping[str, Any]:
        """``event_json`` as data to match patterns against, as the relay's fan-out does.

        A repeated key keeps every value (``events.decode_event_text``); the stored flag picks
        the plain, fast ``json.loads`` for every other event.
        """
        event = self._event
        if event is not None:
            return event.document
        return decode_event_text(self.event_json, self.repeated_keys)[0]  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt at delivering an event to a listener's target, as the listener reported it."""

    listener: str
    seq: int
    event_id: str
    status: Status
    attempt: int
    latency_ms: float
    code: int | None
    error: str | None
    at: float
    replay: bool
    #: Where it went (``http://localhost:3000/``, ``exec jq .detail``); None when not reported.
    target: str | None = None
    #: For a replay: the identity that ran ``hook replay`` (may differ from ``listener``).
    replayed_by: str | None = None
    #: For a replay: the row id of the failed delivery it answers, if any.
    replay_of: int | None = None
    #: This row's id (set when read from the store): what ``replay_of`` refers to. Not part of
    #: equality: a delivery read back equals the one recorded.
    id: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Listener:
    """A named listener: every matching event with ``seq <= cursor`` has been answered."""

    name: str
    cursor: int
    pattern: dict[str, Any]
    last_seen: float


class Store:
    """The relay's SQLite store; one object per process, used from one thread."""

    def __init__(
        self,
        path: Path,
        *,
        max_age: float | None = 7 * 86400,
        max_count: int | None = 100_000,
        checkpoint_interval: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.max_age = max_age
        self.max_count = max_count
        self._db: sqlite3.Connection | None = None
        self._checkpointer: _Checkpointer | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the store's directory {self.path.parent}: {exc.strerror}",
                hint="choose a store path in a directory you can write to",
            ) from exc
        with self._translate("opening"):
            # isolation_level=None: no implicit transactions; writes use explicit BEGIN IMMEDIATE.
            db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            try:
                _open(db, self.path)
            except BaseException:
                db.close()
                raise
            # The cause a failure is grouped by (failures.first_line), so SQL groups exactly
            # as the core does and returns one row per group, not one per error text.
            db.create_function("hook_first_line", 1, first_line, deterministic=True)
            self._db = db
        if checkpoint_interval is not None:
            # Checkpoints (the only fsyncs in WAL + NORMAL) move to a thread of their own, so
            # no commit on the event loop ever waits for the disk; see _Checkpointer.
            db.execute("PRAGMA wal_autocheckpoint = 0")
            self._checkpointer = _Checkpointer(self.path, checkpoint_interval)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the file (idempotent); committed data is already durable."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        db, self._db = self._db, None
        if db is not None:
            try:
                db.execute("PRAGMA optimize")
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                # Housekeeping only (a full disk refuses it): every commit is already in the WAL.
                log.warning("store housekeeping on close failed: %s", exc)
            finally:
                with self._translate("closing"):
                    db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ events

    def append(
        self, events: Sequence[Event], *, received: float | None = None
    ) -> list[StoredEvent]:
        """Commit events in one transaction; ids already stored (SQS redeliveries) are skipped.

        Returns only the newly stored events, in seq order.
        """
        if not events:
            return []
        moment = time.time() if received is None else received
        stored: list[StoredEvent] = []
        with self._translate("storing events"), self._write() as db:
            for event in events:
                row = _event_row(event, moment, ascii_only=False)
                try:
                    seq = _insert_new(db, row)
                except UnicodeEncodeError:
                    # A lone surrogate (valid in JSON escapes, not in UTF-8): keep it escaped.
                    row = _event_row(event, moment, ascii_only=True)
                    seq = _insert_new(db, row)
                if seq is not None:
                    stored.append(
                        StoredEvent(
                            seq,
                            row[4],
                            _request_json(row[5], row[6]),
                            moment,
                            row[0],
                            bool(row[8]),
                            event,
                        )
                    )
        return stored

    def head(self) -> int:
        """The highest seq ever assigned (0 for a new store), also after retention removed it."""
        with self._translate("reading"):
            row = self._conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'events'"
            ).fetchone()
        return int(row[0]) if row else 0

    def read(self, after: int, limit: int) -> list[StoredEvent]:
        """Up to ``limit`` events with ``seq > after``, ascending (the stream's catch-up read)."""
        if limit <= 0:
            return []
        with self._translate("reading events"):
            rows = self._conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events e WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [_stored(row) for row in rows]

    def seq_before(self, moment: float) -> int:
        """The highest seq received strictly before ``moment`` (unix time), 0 if none.

        A subscription ``from TIME`` starts after it. One index seek: the seq of the latest
        event received before ``moment``. That is the highest such seq as long as the clock
        did not step back between commits; if it did, the answer is lower, so the subscription
        starts earlier and re-sends a few events rather than skipping any.
        """
        with self._translate("reading"):
            row = self._conn.execute(
                "SELECT seq FROM events WHERE received < ? ORDER BY received DESC, seq DESC"
                " LIMIT 1",
                (moment,),
            ).fetchone()
        return 0 if row is None else int(row[0])

    def get(self, event_id: str, replay_name: str | None = None) -> StoredEvent | None:
        """The stored event with this id, or None (never stored, or removed by retention).

        An id stored more than once (an archive replay that kept it) names the original (no
        replay-name) if it is kept, else the earliest replayed copy; ``replay_name`` picks the
        copy of that replay ("" the original).
        """
        with self._translate("reading an event"):
            if replay_name is None:
                row = self._conn.execute(
                    f"SELECT {_EVENT_COLUMNS} FROM events e WHERE e.id = ? {_FIRST_COPY}",
                    (_utf8(event_id),),
                ).fetchone()
            else:
                row = self._conn.execute(
                    f"SELECT {_EVENT_COLUMNS} FROM events e WHERE e.id = ? AND e.replay_name = ?",
                    (_utf8(event_id), _utf8(replay_name)),
                ).fetchone()
        return None if row is None else _stored(row)

    def ids_with_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        """Up to ``limit`` stored ids starting with ``prefix``, in id order.

        One range scan of the ``events.id`` unique index (``prefix <= id < prefix + U+10FFFF``:
        BINARY collation compares UTF-8 bytes, and no character sorts above U+10FFFF), so
        resolving the short id a listener printed costs the same on a full store.
        """
        if not prefix or limit <= 0:
            return []
        low = _utf8(prefix)
        with self._translate("reading an event"):
            rows = self._conn.execute(
                "SELECT DISTINCT id FROM events WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
                (low, low + "\U0010ffff", limit),
            ).fetchall()
        return [row[0] for row in rows]

    def get_seq(self, seq: int) -> StoredEvent | None:
        """The stored event with this seq, or None."""
        with self._translate("reading an event"):
            row = self._conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events e WHERE e.seq = ?", (seq,)
            ).fetchone()
        return None if row is None else _stored(row)

    # ------------------------------------------------------------------ listeners

    def listener(self, name: str) -> Listener | None:
        """The listener with this name, or None if it never subscribed."""
        with self._translate("reading a listener"):
            row = self._conn.execute(
                "SELECT name, cursor, pattern, last_seen FROM listeners WHERE name = ?",
                (_utf8(name),),
            ).fetchone()
        return None if row is None else _listener(row)

    def save_listener(
        self,
        name: str,
        *,
        cursor: int,
        pattern: Mapping[str, Any],
        seen: float | None = None,
    ) -> None:
        """Create or update a listener (on subscribe); the cursor is set exactly as given."""
        moment = time.time() if seen is None else seen
        with self._translate("saving a listener"), self._write() as db:
            db.execute(
                "INSERT INTO listeners (name, cursor, pattern, last_seen) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor,"
                " pattern = excluded.pattern, last_seen = excluded.last_seen",
                (_utf8(name), cursor, _compact(dict(pattern), ascii_only=True), moment),
            )

    def set_cursor(self, name: str, cursor: int) -> None:
        """Move a listener's cursor forward (never back) and mark it seen now.

        An unknown name is created with an empty pattern, so an answered position is never lost.
        """
        with self._translate("saving a cursor"), self._write() as db:
            db.execute(_UPSERT_CURSOR, (_utf8(name), cursor, time.time()))

    def listeners(self) -> list[Listener]:
        """Every listener, by name."""
        with self._translate("reading listeners"):
            rows = self._conn.execute(
                "SELECT name, cursor, pattern, last_seen FROM listeners ORDER BY name"
            ).fetchall()
        return [_listener(row) for row in rows]

    def answered_after(self, listener: str, after: int) -> set[int]:
        """Seqs above ``after`` with a delivery recorded for ``listener``: answered past its cursor.

        A listener resuming from its cursor skips these, so nothing is delivered twice.
        """
        with self._translate("reading deliveries"):
            rows = self._conn.execute(
                "SELECT DISTINCT seq FROM deliveries WHERE listener = ? AND seq > ?",
                (_utf8(listener), after),
            ).fetchall()
        return {row[0] for row in rows}

    # ------------------------------------------------------------------ deliveries

    def record(
        self, deliveries: Sequence[Delivery], cursors: Mapping[str, int] | None = None
    ) -> None:
        """Store delivery results, and move cursors forward (as ``set_cursor``), in one transaction.

        A result whose event is no longer stored (retention) or whose seq and id disagree is
        dropped: it has nothing to attach to.
        """
        if not deliveries and not cursors:
            return
        now = time.time()
        moves = [(_utf8(name), cursor, now) for name, cursor in (cursors or {}).items()]
        rows = [
            (
                _utf8(d.listener),
                d.status,
                d.attempt,
                d.latency_ms,
                d.code,
                None if d.error is None else _utf8(d.error),
                d.at,
                int(d.replay),
                None if d.target is None else _utf8(d.target),
                None if d.replayed_by is None else _utf8(d.replayed_by),
                d.replay_of,
                d.seq,
                _utf8(d.event_id),
            )
            for d in deliveries
        ]
        with self._translate("recording deliveries"), self._write() as db:
            db.executemany(_INSERT_DELIVERY, rows)
            db.executemany(_UPSERT_CURSOR, moves)

    def deliveries(self, event_id: str) -> list[Delivery]:
        """Every attempt recorded for the event (the copy ``get`` names), oldest first."""
        with self._translate("reading deliveries"):
            rows = self._conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d WHERE d.seq ="
                f" (SELECT e.seq FROM events e WHERE e.id = ? {_FIRST_COPY}) ORDER BY d.id",
                (_utf8(event_id),),
            ).fetchall()
        return [_delivery(row) for row in rows]

    def deliveries_at(self, seq: int) -> list[Delivery]:
        """Every attempt recorded for the event at ``seq``, oldest first (record order)."""
        with self._translate("reading deliveries"):
            rows = self._conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d WHERE d.seq = ? ORDER BY d.id",
                (seq,),
            ).fetchall()
        return [_delivery(row) for row in rows]

    def delivery(self, row_id: int) -> Delivery | None:
        """The delivery row with this id (what a replay's ``replay_of`` names), or None."""
        with self._translate("reading deliveries"):
            row = self._conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d WHERE d.id = ?", (row_id,)
            ).fetchone()
        return None if row is None else _delivery(row)

    def latest_delivery(self, listener: str, seq: int) -> Delivery | None:
        """``listener``'s latest recorded delivery of the event ``seq``, or None."""
        with self._translate("reading deliveries"):
            row = self._conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d WHERE d.listener = ? AND d.seq = ?"
                " ORDER BY d.id DESC LIMIT 1",
                (_utf8(listener), seq),
            ).fetchone()
        return None if row is None else _delivery(row)

    def history(
        self,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
        source: str | None = None,
        detail_type: str | None = None,
        listener: str | None = None,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        keep: Callable[[StoredEvent], bool] | None = None,
        within: str | None = None,
    ) -> list[tuple[StoredEvent, list[Delivery]]]:
        """Stored events with their deliveries, for `hook events`.

        Newest first, or oldest first when ``after`` is given; page with ``before=<smallest seq
        of the previous page>`` (or ``after=<largest>``). ``since``/``until`` bound the received
        time (``since <= received < until``). ``status`` is that of the latest delivery to
        ``listener`` (to any listener when None); ``pending`` (needs ``listener``) means past its
        cursor with nothing recorded. With ``listener``, only events it has a delivery for (or
        pending ones) are listed, each with its deliveries only. ``keep`` filters further
        (patterns): rows are read in pages until ``limit`` are kept. ``within`` (a name prefix,
        a team member's ``scope/``) limits ``failed``/``delivered`` to those listeners' results.
        """
        if status is not None and status not in _STATUSES:
            raise UsageError(
                f"unknown status {status[:40]!r}: use {', '.join(_STATUSES)}",
                hint="status is delivered, failed, or pending (with a listener)",
            )
        if status == "pending" and listener is None:
            raise UsageError(
                "status 'pending' needs a listener",
                hint="pass the listener's name: pending means not yet answered by that listener",
            )
        if limit <= 0:
            return []
        source, detail_type, listener = (
            None if text is None else _utf8(text) for text in (source, detail_type, listener)
        )
        where: list[str] = []
        params: list[Any] = []
        if source is not None:
            where.append("e.source = ?")
            params.append(source)
        if detail_type is not None:
            where.append("e.detail_type = ?")
            params.append(detail_type)
        if since is not None:
            where.append("e.received >= ?")
            params.append(since)
        if until is not None:
            where.append("e.received < ?")
            params.append(until)
        if status == "pending":
            where.append(
                "e.seq > (SELECT cursor FROM listeners WHERE name = ?) AND NOT EXISTS"
                " (SELECT 1 FROM deliveries d WHERE d.listener = ? AND d.seq = e.seq)"
            )
            params += [listener, listener]
        elif status == "failed":
            # Failures are sparse: collect them from the partial index (`+` keeps SQLite from
            # picking the listener index, which holds every delivery of that listener).
            scope, scope_params = _listener_scope(listener, within, "+d.listener")
            where.append(
                f"e.seq IN (SELECT d.seq FROM deliveries d WHERE d.status = 'failed'{scope}"
                f" AND {_LATEST})"
            )
            params += scope_params
        elif status == "delivered":
            # Deliveries are dense: walk events in page order and stop at the limit.
            scope, scope_params = _listener_scope(listener, within, "d.listener")
            where.append(
                "EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = e.seq"
                f" AND d.status = 'delivered'{scope} AND {_LATEST})"
            )
            params += scope_params
        elif listener is not None:
            where.append(
                "EXISTS (SELECT 1 FROM deliveries d WHERE d.listener = ? AND d.seq = e.seq)"
            )
            params.append(listener)
        ascending = after is not None
        where += ["e.seq > ?", "e.seq < ?"]
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM events e WHERE {' AND '.join(where)}"
            f" ORDER BY e.seq {'ASC' if ascending else 'DESC'} LIMIT ?"
        )
        low = 0 if after is None else after
        high = (1 << 63) - 1 if before is None else before
        page = limit if keep is None else max(limit, 200)
        kept: list[StoredEvent] = []
        with self._translate("reading history"), self._snapshot() as db:
            while len(kept) < limit:
                rows = db.execute(sql, (*params, low, high, page)).fetchall()
                items = [_stored(row) for row in rows]
                kept += items if keep is None else [item for item in items if keep(item)]
                if len(rows) < page:
                    break
                if ascending:
                    low = rows[-1][0]
                else:
                    high = rows[-1][0]
            kept = kept[:limit]
            found = self._deliveries_of([item.seq for item in kept], listener)
        return [(item, found.get(item.seq, [])) for item in kept]

    def failed(
        self,
        *,
        listener: str | None = None,
        since: float | None = None,
        limit: int = 1000,
    ) -> list[StoredEvent]:
        """Events whose latest delivery to a listener (to ``listener`` if given) failed.

        Oldest first; ``since`` keeps failures recorded at or after that unix time.
        """
        if limit <= 0:
            return []
        conditions = ["d.status = 'failed'", _LATEST]
        params: list[Any] = []
        if listener is not None:
            conditions.append("+d.listener = ?")  # use the partial index of failures
            params.append(_utf8(listener))
        if since is not None:
            conditions.append("d.at >= ?")
            params.append(since)
        with self._translate("reading failed events"):
            rows = self._conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events e WHERE e.seq IN"
                f" (SELECT d.seq FROM deliveries d WHERE {' AND '.join(conditions)})"
                " ORDER BY e.seq LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_stored(row) for row in rows]

    def failure_counts(
        self,
        *,
        listener: str | None = None,
        within: str | None = None,
        source: str | None = None,
        detail_type: str | None = None,
        since: float | None = None,
    ) -> list[FailureCount]:
        """Current failures (latest delivery to a listener failed), counted per cause.

        One row per (listener, target, code, first line of the error), for
        ``failures.group_failures``. ``since`` keeps failures recorded at or after that unix
        time; ``within`` (a name prefix, a team member's ``scope/``) limits them to its listeners.
        """
        where, params = self._failure_scope(listener, within, source, detail_type, since)
        # The newest failure of a cause is its highest delivery row id (record order).
        sql = (
            "SELECT g.listener, g.target, g.code, g.error, g.n, g.first_at, g.last_at,"
            " x.event_id, x.seq FROM (SELECT d.listener, d.target, d.code,"
            " hook_first_line(d.error) AS error, count(*) AS n, min(d.at) AS first_at,"
            f" max(d.at) AS last_at, max(d.id) AS newest FROM {where}"
            " GROUP BY d.listener, d.target, d.code, 4) g JOIN deliveries x ON x.id = g.newest"
        )
        with self._translate("reading failures"):
            rows = self._conn.execute(sql, params).fetchall()
        return [FailureCount(*row) for row in rows]

    def failures_with(
        self,
        cause: FailureCount,
        *,
        after: int = 0,
        limit: int = 100,
        source: str | None = None,
        detail_type: str | None = None,
        since: float | None = None,
    ) -> list[tuple[int, str, int]]:
        """``(seq, event id, failed delivery row id)`` of the current failures with ``cause``'s
        listener, target, code and first error line, by seq, after ``after``."""
        if limit <= 0:
            return []
        where, params = self._failure_scope(cause.listener, None, source, detail_type, since)
        sql = (
            f"SELECT d.seq, d.event_id, d.id FROM {where} AND d.target IS ? AND d.code IS ?"
            " AND hook_first_line(d.error) = ? AND d.seq > ? ORDER BY d.seq LIMIT ?"
        )
        with self._translate("reading failures"):
            rows = self._conn.execute(
                sql, (*params, cause.target, cause.code, first_line(cause.error), after, limit)
            ).fetchall()
        return [(int(seq), str(event_id), int(row_id)) for seq, event_id, row_id in rows]

    @staticmethod
    def _failure_scope(
        listener: str | None,
        within: str | None,
        source: str | None,
        detail_type: str | None,
        since: float | None,
    ) -> tuple[str, list[Any]]:
        """``FROM ... WHERE ...`` (and parameters) of the latest failed delivery rows, filtered."""
        tables = "deliveries d"
        # Failures are sparse: walk the partial index of failures (`+` keeps SQLite from
        # picking the listener index, which holds every delivery of that listener).
        where = ["d.status = 'failed'", _LATEST]
        params: list[Any] = []
        scope, scope_params = _listener_scope(
            None if listener is None else _utf8(listener), within, "+d.listener"
        )
        if scope:
            where.append(scope.removeprefix(" AND "))
            params += scope_params
        if since is not None:
            where.append("d.at >= ?")
            params.append(since)
        if source is not None or detail_type is not None:
            tables += " JOIN events e ON e.seq = d.seq"
            for column, value in (("source", source), ("detail_type", detail_type)):
                if value is not None:
                    where.append(f"e.{column} = ?")
                    params.append(_utf8(value))
        return f"{tables} WHERE {' AND '.join(where)}", params

    # ------------------------------------------------------------------ retention

    def sweep(self, now: float | None = None) -> int:
        """Delete events older than ``max_age`` or beyond the newest ``max_count``.

        Their deliveries go with them (foreign key cascade). Returns the number of events
        deleted. ``head()`` is unaffected: seqs are never reused.
        """
        moment = time.time() if now is None else now
        deleted = 0
        with self._translate("removing old events"), self._write() as db:
            if self.max_age is not None:
                deleted += db.execute(
                    "DELETE FROM events WHERE received < ?", (moment - self.max_age,)
                ).rowcount
            if self.max_count is not None:
                row = db.execute(
                    "SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?",
                    (max(self.max_count, 0),),
                ).fetchone()
                if row is not None:
                    deleted += db.execute("DELETE FROM events WHERE seq <= ?", row).rowcount
        return deleted

    def stats(self) -> dict[str, int]:
        """Counts for `hook relay` status lines: events, deliveries, listeners, head, oldest_seq."""
        with self._translate("reading"):
            events, oldest = self._conn.execute(
                "SELECT count(*), coalesce(min(seq), 0) FROM events"
            ).fetchone()
            (deliveries,) = self._conn.execute("SELECT count(*) FROM deliveries").fetchone()
            (listeners,) = self._conn.execute("SELECT count(*) FROM listeners").fetchone()
        return {
            "events": events,
            "deliveries": deliveries,
            "listeners": listeners,
            "head": self.head(),
            "oldest_seq": oldest,
        }

    # ------------------------------------------------------------------ internals

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("the store is closed", hint="this is a bug in hook: please report it")
        return self._db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the write lock up front (no upgrade deadlock)."""
        db = self._conn
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction, so several queries see the same committed state."""
        db = self._conn
        db.execute("BEGIN")
        try:
            yield db
        finally:
            if db.in_transaction:
                db.execute("COMMIT")

    def _deliveries_of(self, seqs: list[int], listener: str | None) -> dict[int, list[Delivery]]:
        found: dict[int, list[Delivery]] = {}
        if not seqs:
            return found
        # json_each keeps the SQL constant (and cached) whatever the number of seqs.
        scope = "" if listener is None else " AND d.listener = ?"
        params: tuple[Any, ...] = (
            (json.dumps(seqs),)
            if listener is None
            else (
                json.dumps(seqs),
                listener,
            )
        )
        rows = self._conn.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d"
            f" WHERE d.seq IN (SELECT value FROM json_each(?)){scope} ORDER BY d.id",
            params,
        ).fetchall()
        for row in rows:
            found.setdefault(row[1], []).append(_delivery(row))
        return found

    @contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        """Turn sqlite3 errors into StoreError saying what to do."""
        try:
            yield
        except sqlite3.Error as exc:
            raise _store_error(exc, action, self.path) from exc


# ---------------------------------------------------------------------- helpers


class _Checkpointer:
    """Runs ``wal_checkpoint(PASSIVE)`` from its own connection every ``interval`` seconds.

    SQLite's automatic checkpoint runs inside whichever commit crosses 1,000 WAL pages, with an
    fsync: a multi-millisecond stall of the relay's event loop every few thousand events.
    PASSIVE never blocks writers (https://www.sqlite.org/c3ref/wal_checkpoint_v2.html).
    """

    def __init__(self, path: Path, interval: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(path, interval), name="hook-checkpoint", daemon=True
        )
        self._thread.start()

    def _run(self, path: Path, interval: float) -> None:
        db = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(interval):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # busy or I/O: the next round tries again
                    log.warning("store checkpoint failed: %s", exc)
        finally:
            db.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10.0)


def _open(db: sqlite3.Connection, path: Path) -> None:
    """Check the file is (or can become) a hook store, set it up, and migrate it."""
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if app_id != APPLICATION_ID and (app_id != 0 or version != 0 or _has_tables(db)):
        what, hint = _HINTS[26]
        raise StoreError(
            f"opening {path}: {what} (an SQLite database of something else)", hint=hint
        )
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the store was written by a newer hook (schema {version}, this hook knows"
            f" {SCHEMA_VERSION})",
            hint="upgrade hook, or use another store path",
        )
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode != "wal":
        raise StoreError(
            f"cannot use write-ahead logging for the store (journal mode stays {mode!r})",
            hint="put the store on a local disk (WAL needs shared memory; network drives lack it)",
        )
    # WAL + synchronous=NORMAL: a commit appends to the WAL with write(), and fsync happens only
    # at checkpoints. Data that write() returned is in the OS page cache, which outlives the
    # process: a crash or kill -9 of the relay loses no committed transaction. Only an OS crash
    # or power loss may roll back the latest commits, never corrupting the file
    # (https://www.sqlite.org/pragma.html#pragma_synchronous, https://www.sqlite.org/wal.html).
    # FULL would fsync on every commit: several ms each, for a guarantee hook does not promise.
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA journal_size_limit = 67108864")
    if version < SCHEMA_VERSION:
        # Foreign keys on only after: a migration that rebuilds `events` drops the old table,
        # which with them on would delete every delivery (ON DELETE CASCADE).
        _migrate(db)
    db.execute("PRAGMA foreign_keys = ON")


def _migrate(db: sqlite3.Connection) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for step in _MIGRATIONS[version:]:
            for statement in step:
                db.execute(statement)
        if db.execute("PRAGMA foreign_key_check").fetchone() is not None:
            raise sqlite3.IntegrityError("a migration broke the deliveries' link to events")
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _has_tables(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is not None


_HINTS: Final[dict[int, tuple[str, str]]] = {
    # SQLite primary result codes (https://www.sqlite.org/rescode.html).
    3: ("permission denied", "make the store file and its directory writable by this user"),
    5: (
        "the store is locked by another process",
        "is another hook relay using this store? stop it, or give this one another store path",
    ),
    6: ("the store is locked", "is another hook relay using this store? stop it"),
    8: (
        "the store is read-only",
        "make the file and its directory writable (SQLite creates -wal and -shm files next to it)",
    ),
    10: ("disk I/O error", "check the disk holding the store; free space and permissions"),
    11: (
        "the store file is corrupt",
        "move it (and its -wal and -shm files) aside; the relay then starts an empty store",
    ),
    13: ("the disk is full", "free space on the store's disk, or lower the relay's retention"),
    14: (
        "cannot open the store file",
        "check that its directory exists and is writable, or choose another store path",
    ),
    26: (
        "the file is not a hook store",
        "point the relay at another path: hook never overwrites a file it did not create",
    ),
}


def _store_error(exc: sqlite3.Error, action: str, path: Path) -> StoreError:
    code = getattr(exc, "sqlite_errorcode", None)
    what, hint = _HINTS.get(code & 0xFF if isinstance(code, int) else -1, ("", ""))
    if what:
        return StoreError(f"{action} {path}: {what} ({exc})", hint=hint)
    return StoreError(
        f"{action} {path}: {exc}",
        hint="if this persists, move the store file aside and restart the relay",
    )


def _compact(value: Any, *, ascii_only: bool = False) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=ascii_only)


def _event_row(event: Event, received: float, *, ascii_only: bool) -> tuple[Any, ...]:
    """The INSERT parameters; the request as compact JSON without its body, plus body bytes."""
    request = event.request
    head = body = None
    if request is not None:
        head = _compact(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "headers": [[k, v] for k, v in request.headers],
            },
            ascii_only=ascii_only,
        )
        body = request.body
    keys = [event.id, event.source, event.detail_type]
    # The event's text as received (``Event.to_json``), so listeners get those bytes.
    text, repeated = event.to_json(), event.repeated_keys
    if ascii_only:
        # Index columns only (filters, get by id); the event itself keeps the escape exactly.
        keys = [_utf8(k) for k in keys]
        if _utf8(text) != text:  # a lone surrogate in the text itself: write it escaped
            text, repeated = _compact(event.to_dict(), ascii_only=True), False
    replay = "" if event.replay_name is None else _utf8(event.replay_name)
    return (*keys, received, text, head, body, replay, int(repeated))


def _insert_new(db: sqlite3.Connection, row: tuple[Any, ...]) -> int | None:
    """Insert an ``_event_row`` unless its (id, replay_name) is stored; the new seq, or None."""
    if db.execute(_EVENT_EXISTS, (row[0], row[7])).fetchone() is not None:
        return None
    seq = db.execute(_INSERT_EVENT, row).lastrowid
    assert seq is not None
    return seq


def stored_text(text: str) -> str:
    """``text`` as the store keeps ids and names (lone surrogates replaced): compare with this."""
    return _utf8(text)


def _utf8(text: str) -> str:
    """``text``, with lone surrogates (legal in JSON escapes, not in UTF-8) replaced."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def _request_json(head: str | None, body: bytes | None) -> str | None:
    """``RawRequest.to_dict()`` as compact JSON: the stored head with ``body_b64`` appended."""
    if head is None or body is None:
        return None
    return f'{head[:-1]},"body_b64":"{base64.b64encode(body).decode("ascii")}"}}'


def _stored(row: _Row) -> StoredEvent:
    seq, event_json, head, body, received, event_id, repeated = row
    return StoredEvent(
        seq, event_json, _request_json(head, body), received, event_id, bool(repeated)
    )


def _delivery(row: tuple[Any, ...]) -> Delivery:
    listener, seq, event_id, status, attempt, latency, code, error, at, replay, *more = row
    target, replayed_by, replay_of, row_id = more
    return Delivery(
        listener,
        seq,
        event_id,
        status,
        attempt,
        latency,
        code,
        error,
        at,
        bool(replay),
        target,
        replayed_by,
        replay_of,
        row_id,
    )


def _listener(row: tuple[Any, ...]) -> Listener:
    name, cursor, pattern, last_seen = row
    return Listener(name, cursor, json.loads(pattern), last_seen)
