"""The Store: owner of the one SQLite connection; every query runs in a worker thread, one at a time."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import trio

from ..chain.models import Transfer
from .migrate import migrate

__all__ = ["Store", "open_store", "Watch", "WatchRef", "Delivery", "OutboxItem", "AddResult"]

T = TypeVar("T")


class AddResult(Enum):
    ADDED = "added"
    EXISTS = "exists"
    LIMIT = "limit"


@dataclass(frozen=True, slots=True)
class Watch:
    chat_id: int
    chain_id: int
    address: str
    label: str | None
    start_block: int


@dataclass(frozen=True, slots=True)
class WatchRef:
    """What the scanner needs to know about one chat watching one address."""

    chat_id: int
    start_block: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """A notification to enqueue: chat, transfer identity, direction, and the two addresses as the chat sees them."""

    chat_id: int
    transfer: Transfer
    kind: str          # in | out | internal
    watched: str
    counterparty: str


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A pending outbox row joined with its transfer and the chat's labels."""

    outbox_id: int
    chat_id: int
    kind: str
    attempts: int
    transfer: Transfer
    watched: str
    watched_label: str | None
    counterparty: str
    counterparty_label: str | None
    correction: bool = False   # True: "the transfer announced earlier was removed by a chain reorganisation"


def _now() -> int:
    return int(time.time())


class Store:
    """Async facade over one sqlite3 connection (WAL, explicit transactions)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._limiter = trio.CapacityLimiter(1)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def _tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except Exception:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    # ---- chats -------------------------------------------------------------------------------------------
    async def upsert_chat(self, chat_id: int, username: str | None, first_name: str | None) -> bool:
        """Register or refresh a chat and mark it active; True when the chat is new."""
        def work(conn: sqlite3.Connection) -> bool:
            exists = conn.execute("SELECT 1 FROM chats WHERE chat_id=?", (chat_id,)).fetchone()
            conn.execute(
                "INSERT INTO chats(chat_id, username, first_name, active, created_at) VALUES (?,?,?,1,?) "
                "ON CONFLICT(chat_id) DO UPDATE SET username=excluded.username, first_name=excluded.first_name, active=1",
                (chat_id, username, first_name, _now()))
            return exists is None
        return await self._run(self._tx, work)

    async def set_chat_active(self, chat_id: int, active: bool) -> None:
        await self._run(self._tx, lambda c: c.execute("UPDATE chats SET active=? WHERE chat_id=?", (int(active), chat_id)))

    async def chat_active(self, chat_id: int) -> bool | None:
        row = await self._run(lambda: self._conn.execute("SELECT active FROM chats WHERE chat_id=?", (chat_id,)).fetchone())
        return None if row is None else bool(row[0])

    # ---- watches -----------------------------------------------------------------------------------------
    async def add_watch(self, watch: Watch, max_per_chat: int) -> AddResult:
        def work(conn: sqlite3.Connection) -> AddResult:
            if conn.execute("SELECT 1 FROM watches WHERE chat_id=? AND chain_id=? AND address=?",
                            (watch.chat_id, watch.chain_id, watch.address)).fetchone():
                return AddResult.EXISTS
            (count,) = conn.execute("SELECT COUNT(*) FROM watches WHERE chat_id=?", (watch.chat_id,)).fetchone()
            if count >= max_per_chat:
                return AddResult.LIMIT
            conn.execute("INSERT INTO watches(chat_id, chain_id, address, label, start_block, added_at) VALUES (?,?,?,?,?,?)",
                         (watch.chat_id, watch.chain_id, watch.address, watch.label, watch.start_block, _now()))
            # if a scan already passed the watch's start (blocks were mined while /add was in flight), rewind so
            # those blocks are read again for it; other chats' notifications are not repeated (identity is unique)
            conn.execute("UPDATE checkpoints SET block=? WHERE chain_id=? AND block>?",
                         (watch.start_block, watch.chain_id, watch.start_block))
            return AddResult.ADDED
        return await self._run(self._tx, work)

    async def list_watches(self, chat_id: int) -> list[Watch]:
        rows = await self._run(lambda: self._conn.execute(
            "SELECT chat_id, chain_id, address, label, start_block FROM watches WHERE chat_id=? ORDER BY watch_id",
            (chat_id,)).fetchall())
        return [Watch(*row) for row in rows]

    async def remove_watch(self, chat_id: int, address_or_label: str) -> Watch | None:
        """Remove by exact lowercase address, else by label (case-insensitive); returns what was removed."""
        def work(conn: sqlite3.Connection) -> Watch | None:
            row = conn.execute(
                "SELECT watch_id, chat_id, chain_id, address, label, start_block FROM watches WHERE chat_id=? AND address=?",
                (chat_id, address_or_label.lower())).fetchone() or conn.execute(
                "SELECT watch_id, chat_id, chain_id, address, label, start_block FROM watches "
                "WHERE chat_id=? AND label IS NOT NULL AND lower(label)=lower(?) ORDER BY watch_id LIMIT 1",
                (chat_id, address_or_label)).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM watches WHERE watch_id=?", (row[0],))
            return Watch(*row[1:])
        return await self._run(self._tx, work)

    # ---- scanning ----------------------------------------------------------------------------------------
    async def get_checkpoint(self, chain_id: int) -> int | None:
        row = await self._run(lambda: self._conn.execute(
            "SELECT block FROM checkpoints WHERE chain_id=?", (chain_id,)).fetchone())
        return None if row is None else row[0]

    def _watched_set(self, chain_id: int) -> dict[str, list[WatchRef]]:
        result: dict[str, list[WatchRef]] = {}
        for address, chat_id, start_block in self._conn.execute(
                "SELECT w.address, w.chat_id, w.start_block FROM watches w JOIN chats c ON c.chat_id=w.chat_id "
                "WHERE w.chain_id=? AND c.active=1", (chain_id,)):
            result.setdefault(address, []).append(WatchRef(chat_id, start_block))
        return result

    async def watched_set(self, chain_id: int) -> dict[str, list[WatchRef]]:
        """Every address watched on the chain by an active chat → who watches it since which block."""
        return await self._run(self._watched_set, chain_id)

    async def commit_scan(self, chain_id: int, previous: int | None, checkpoint: int,
                          plan: Callable[[dict[str, list[WatchRef]]], Sequence[Delivery]]) -> int:
        """Match, store transfers, enqueue deliveries and advance the checkpoint in ONE transaction.

        ``plan`` runs inside the transaction against the watched set as committed at that instant, so a watch
        added while the range was being fetched is matched too. The checkpoint moves from ``previous`` to
        ``checkpoint`` only if it still is ``previous``: an /add that rewound it (see add_watch) is not overwritten,
        and the range is read again next cycle (duplicates are ignored by identity). Returns rows enqueued.
        """
        def work(conn: sqlite3.Connection) -> int:
            now = _now()
            deliveries = plan(self._watched_set(chain_id))
            conn.executemany(
                "INSERT INTO transfers(chain_id, tx_hash, log_index, block_number, block_time, block_hash, "
                "contract, sender, recipient, value) VALUES (?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(chain_id, tx_hash, log_index) DO NOTHING",
                {d.transfer.key: (t.chain_id, t.tx_hash, t.log_index, t.block_number, t.block_time, t.block_hash,
                                  t.contract, t.sender, t.recipient, str(t.value))
                 for d in deliveries for t in (d.transfer,)}.values())
            before = conn.total_changes
            conn.executemany(
                "INSERT INTO outbox(chat_id, chain_id, tx_hash, log_index, kind, watched, counterparty, created_at) "
                "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(chat_id, chain_id, tx_hash, log_index, correction) DO NOTHING",
                [(d.chat_id, *d.transfer.key, d.kind, d.watched, d.counterparty, now) for d in deliveries])
            enqueued = conn.total_changes - before
            if previous is None:
                conn.execute("INSERT INTO checkpoints(chain_id, block, updated_at) VALUES (?,?,?) "
                             "ON CONFLICT(chain_id) DO NOTHING", (chain_id, checkpoint, now))
            elif checkpoint > previous:
                conn.execute("UPDATE checkpoints SET block=?, updated_at=? WHERE chain_id=? AND block=?",
                             (checkpoint, now, chain_id, previous))
            return enqueued
        return await self._run(self._tx, work)

    # ---- outbox ------------------------------------------------------------------------------------------
    async def pending_outbox(self, limit: int = 500, exclude_chats: Iterable[int] = ()) -> list[OutboxItem]:
        """Oldest pending rows of active chats, with transfer data and labels."""
        excluded = list(exclude_chats)
        clause = f"AND o.chat_id NOT IN ({','.join('?' * len(excluded))})" if excluded else ""

        def work() -> list[OutboxItem]:
            rows = self._conn.execute(
                "SELECT o.outbox_id, o.chat_id, o.kind, o.attempts, o.watched, o.counterparty, "
                "t.chain_id, t.tx_hash, t.log_index, t.block_number, t.block_time, t.contract, t.sender, t.recipient, "
                "t.value, t.block_hash, w1.label, w2.label, o.correction "
                "FROM outbox o JOIN chats c ON c.chat_id=o.chat_id AND c.active=1 "
                "JOIN transfers t ON t.chain_id=o.chain_id AND t.tx_hash=o.tx_hash AND t.log_index=o.log_index "
                "LEFT JOIN watches w1 ON w1.chat_id=o.chat_id AND w1.chain_id=o.chain_id AND w1.address=o.watched "
                "LEFT JOIN watches w2 ON w2.chat_id=o.chat_id AND w2.chain_id=o.chain_id AND w2.address=o.counterparty "
                f"WHERE o.status='pending' {clause} ORDER BY o.outbox_id LIMIT ?", (*excluded, limit)).fetchall()
            return [OutboxItem(
                outbox_id=r[0], chat_id=r[1], kind=r[2], attempts=r[3], watched=r[4], counterparty=r[5],
                transfer=Transfer(chain_id=r[6], tx_hash=r[7], log_index=r[8], block_number=r[9], block_time=r[10],
                                  contract=r[11], sender=r[12], recipient=r[13], value=int(r[14]), block_hash=r[15]),
                watched_label=r[16], counterparty_label=r[17], correction=bool(r[18])) for r in rows]
        return await self._run(work)

    async def mark_sent(self, outbox_ids: Sequence[int]) -> None:
        now = _now()
        await self._run(self._tx, lambda c: c.executemany(
            "UPDATE outbox SET status='sent', sent_at=?, attempts=attempts+1 WHERE outbox_id=?",
            [(now, i) for i in outbox_ids]))

    async def mark_failed(self, outbox_ids: Sequence[int], error: str) -> None:
        """Give up on rows permanently (Telegram rejected them for good)."""
        await self._run(self._tx, lambda c: c.executemany(
            "UPDATE outbox SET status='failed', last_error=?, attempts=attempts+1 WHERE outbox_id=?",
            [(error, i) for i in outbox_ids]))

    async def record_attempt(self, outbox_ids: Sequence[int], error: str) -> None:
        """Count a failed attempt that will be retried."""
        await self._run(self._tx, lambda c: c.executemany(
            "UPDATE outbox SET last_error=?, attempts=attempts+1 WHERE outbox_id=?", [(error, i) for i in outbox_ids]))

    async def outbox_counts(self) -> dict[str, int]:
        rows = await self._run(lambda: self._conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())
        return dict(rows)

    # ---- key/value ---------------------------------------------------------------------------------------
    async def get_value(self, key: str) -> str | None:
        row = await self._run(lambda: self._conn.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone())
        return None if row is None else row[0]

    async def set_value(self, key: str, value: str) -> None:
        await self._run(self._tx, lambda c: c.execute(
            "INSERT INTO kv(key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value)))


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


@asynccontextmanager
async def open_store(path: Path) -> AsyncIterator[Store]:
    """Open (creating and migrating) the database; the connection closes on exit, whatever happens."""
    conn = await trio.to_thread.run_sync(_connect, path)
    try:
        await trio.to_thread.run_sync(migrate, conn)
        yield Store(conn)
    finally:
        conn.close()
