"""The event log: user–item events stored durably in SQLite before they are acknowledged.

Durability. The database runs in WAL mode with ``synchronous=FULL``: a commit returns only after
the write-ahead log has been written *and fsync'ed*, so an acknowledged event survives a killed
process (``kill -9``) and also a power cut. (``synchronous=NORMAL`` in WAL mode would survive
``kill -9`` — the WAL write reaches the OS before the commit returns — but not a power cut, since
the WAL is then only fsync'ed at checkpoints; we take the stronger guarantee.) The HTTP handler
answers only after its events' transaction has committed.

Throughput: group commit. One writer thread owns the connection; requests put their events on a
queue and wait; the writer takes everything queued, inserts it in one transaction and pays one
fsync for the whole group, then wakes the waiters. Under concurrent load many requests share a
commit, so the rate is bounded by the fsync latency × group size, not by one fsync per event.

Every stored event is also kept in memory per user (the histories that fold-in reads), rebuilt
from the database at start-up; ids are stored as JSON so that 42 and "42" stay distinct in the
log, while lookups by user match either form (HTTP paths carry strings).
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger("tastebud")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    user      TEXT NOT NULL,
    item      TEXT NOT NULL,
    weight    REAL NOT NULL,
    timestamp REAL NOT NULL,
    received  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_user ON events(user);
"""


@dataclass(frozen=True)
class Event:
    user: Any
    item: Any
    weight: float = 1.0
    timestamp: float | None = None


def user_key(u: Any) -> str:
    """The in-memory history key: the id as text (``42`` and ``"42"`` share a history)."""
    return str(u)


class EventStore:
    """Durable, append-only event log with per-user histories in memory."""

    def __init__(self, path: str | Path, max_batch: int = 5000):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_batch = int(max_batch)
        self._q: queue.Queue = queue.Queue()
        self._hist: dict[str, list[tuple[Any, float, float]]] = {}
        self._hist_lock = threading.Lock()
        self.n_events = 0
        self.n_commits = 0
        conn = self._connect()
        try:
            for row in conn.execute("SELECT user, item, weight, timestamp FROM events ORDER BY id"):
                self._remember(json.loads(row[0]), json.loads(row[1]), row[2], row[3])
        finally:
            conn.close()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._writer, name="tastebud-event-writer", daemon=True)
        self._thread.start()
        log.info("event log %s: %d events of %d users", self.path, self.n_events, len(self._hist))

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RuntimeError(f"{self.path}: could not switch the event log to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(SCHEMA)
        return conn

    def _remember(self, user: Any, item: Any, weight: float, ts: float) -> None:
        with self._hist_lock:
            self._hist.setdefault(user_key(user), []).append((item, float(weight), float(ts)))
            self.n_events += 1

    # ------------------------------------------------------------------ writing
    def submit(self, events: list[Event]) -> Future:
        """Queue ``events``; the future resolves to their row ids once they are committed."""
        fut: Future = Future()
        if self._closed.is_set():
            fut.set_exception(RuntimeError("the event log is closed"))
            return fut
        self._q.put((events, fut))
        return fut

    def append(self, events: list[Event], timeout: float | None = 30.0) -> list[int]:
        """Store ``events`` durably (blocking) and return their row ids."""
        return self.submit(events).result(timeout)

    def _writer(self) -> None:
        conn = self._connect()
        try:
            while True:
                try:
                    first = self._q.get(timeout=0.2)
                except queue.Empty:
                    if self._closed.is_set():
                        break
                    continue
                if first is None:
                    break
                group = [first]
                n = len(first[0])
                stop = False
                while n < self.max_batch:
                    try:
                        nxt = self._q.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    group.append(nxt)
                    n += len(nxt[0])
                self._commit(conn, group)
                if stop:
                    break
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, group: list[tuple[list[Event], Future]]) -> None:
        now = time.time()
        rows = []
        for events, _ in group:
            for e in events:
                rows.append((json.dumps(e.user), json.dumps(e.item), float(e.weight),
                             float(e.timestamp if e.timestamp is not None else now), now))
        try:
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events")
            start = int(cur.fetchone()[0]) + 1
            conn.executemany("INSERT INTO events(user, item, weight, timestamp, received) VALUES (?,?,?,?,?)", rows)
            conn.execute("COMMIT")  # synchronous=FULL: the WAL is fsync'ed before this returns
        except Exception as e:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            log.error("event log commit failed: %s", e)
            for _, fut in group:
                fut.set_exception(e)
            return
        self.n_commits += 1
        rid = start
        for events, fut in group:
            ids = []
            for e in events:
                self._remember(e.user, e.item, e.weight, e.timestamp if e.timestamp is not None else now)
                ids.append(rid)
                rid += 1
            fut.set_result(ids)

    # ------------------------------------------------------------------ reading
    def history(self, user: Any) -> list[tuple[Any, float, float]]:
        """(item, weight, timestamp) of ``user``'s logged events, in the order they were stored."""
        with self._hist_lock:
            return list(self._hist.get(user_key(user), ()))

    def has_user(self, user: Any) -> bool:
        return user_key(user) in self._hist

    def iter_all(self) -> Iterable[tuple[Any, Any, float, float]]:
        """Every stored event as (user, item, weight, timestamp), oldest first (a fresh connection)."""
        return read_events(self.path)

    def close(self, timeout: float = 5.0) -> None:
        """Commit what is queued, then stop the writer."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._q.put(None)
        self._thread.join(timeout)


def read_events(path: str | Path) -> list[tuple[Any, Any, float, float]]:
    """All events of an event log file as (user, item, weight, timestamp), oldest first."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no event log")
    conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    try:
        return [(json.loads(u), json.loads(i), w, t)
                for u, i, w, t in conn.execute("SELECT user, item, weight, timestamp FROM events ORDER BY id")]
    finally:
        conn.close()
