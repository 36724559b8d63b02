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
from .history import HistoryReader
from .legacy_history import LEGACY_SPAM_THRESHOLD
from .migrate import migrate
from .reorgs import ReorgOutcome, reconcile
from .watched import WatchedSet, WatchRef

__all__ = ["Store", "open_store", "Watch", "WatchRef", "WatchedSet", "Delivery", "OutboxItem", "AddResult", "Gap",
           "SpamReport", "SuspiciousTransfer",
           "ReorgOutcome", "HASH_WINDOW"]

HASH_WINDOW = 256   # blocks below the checkpoint whose hashes are remembered (Ethereum reorgs are 1-2 deep)

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
class Gap:
    """Blocks left behind after downtime, read later in chunks.

    In per-address mode a gap is walked address by address: every address <= ``address_cursor`` is done for the
    whole remaining range.
    """

    chain_id: int
    from_block: int
    to_block: int
    address_cursor: str = ""

    @property
    def blocks(self) -> int:
        return self.to_block - self.from_block + 1


@dataclass(frozen=True, slots=True)
class Delivery:
    """A notification to enqueue: chat, transfer identity, direction, and the two addresses as the chat sees them."""

    chat_id: int
    transfer: Transfer
    kind: str          # in | out | internal
    watched: str
    counterparty: str
    spam_score: int | None = None      # set by the spam screen when the transfer is suspicious
    spam_reasons: tuple[str, ...] = ()
    spam_mode: str = "silent"          # the chat's choice: silent (only /spam) or warn (one-line warning)


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
    spam_score: int | None = None          # set: send a one-line poisoning warning, not a payment notification
    spam_reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SuspiciousTransfer:
    kind: str
    watched: str
    counterparty: str
    score: int
    reasons: tuple[str, ...]
    contract: str
    value: int
    block_number: int
    block_time: int
    tx_hash: str
    watched_label: str | None


@dataclass(frozen=True)
class SpamReport:
    count: int
    totals: dict[str, int]        # contract → total value held back
    min_score: int
    max_score: int
    latest: list[SuspiciousTransfer]
    mode: str
    imported: int = 0             # held back by usdt_monitor_bot before the switch


Screen = Callable[[Sequence[Delivery], HistoryReader], Sequence[Delivery]]


def _now() -> int:
    return int(time.time())


class Store:
    """Async facade over one sqlite3 connection (WAL, explicit transactions)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._limiter = trio.CapacityLimiter(1)
        self._watched: dict[int, WatchedSet] = {}   # loaded on first use; changed only after a commit

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

        def run() -> bool:
            new = self._tx(work)
            self._set_active(chat_id, True)
            return new
        return await self._run(run)

    async def set_chat_active(self, chat_id: int, active: bool) -> None:
        def run() -> None:
            self._tx(lambda c: c.execute("UPDATE chats SET active=? WHERE chat_id=?", (int(active), chat_id)))
            self._set_active(chat_id, active)
        await self._run(run)

    def _set_active(self, chat_id: int, active: bool) -> None:
        for watched in self._watched.values():
            watched.set_active(chat_id, active)

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

        def run() -> AddResult:
            result = self._tx(work)
            if result is AddResult.ADDED and watch.chain_id in self._watched:
                self._watched[watch.chain_id].add(watch.address, watch.chat_id, watch.start_block)
            return result
        return await self._run(run)

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

        def run() -> Watch | None:
            removed = self._tx(work)
            if removed is not None and removed.chain_id in self._watched:
                self._watched[removed.chain_id].remove(removed.address, removed.chat_id)
            return removed
        return await self._run(run)

    # ---- scanning ----------------------------------------------------------------------------------------
    async def get_checkpoint(self, chain_id: int) -> int | None:
        row = await self._run(lambda: self._conn.execute(
            "SELECT block FROM checkpoints WHERE chain_id=?", (chain_id,)).fetchone())
        return None if row is None else row[0]

    def _watched_for(self, chain_id: int) -> WatchedSet:
        watched = self._watched.get(chain_id)
        if watched is None:
            watched = WatchedSet()
            for address, chat_id, start_block, active in self._conn.execute(
                    "SELECT w.address, w.chat_id, w.start_block, c.active FROM watches w "
                    "JOIN chats c ON c.chat_id=w.chat_id WHERE w.chain_id=?", (chain_id,)):
                watched.add(address, chat_id, start_block)
                if not active:
                    watched.set_active(chat_id, False)
            self._watched[chain_id] = watched
        return watched

    async def watched_set(self, chain_id: int) -> dict[str, list[WatchRef]]:
        """Every address watched on the chain by an active chat → who watches it since which block (a copy)."""
        return await self._run(lambda: dict(self._watched_for(chain_id)))

    async def watched_among(self, chain_id: int, addresses: Iterable[str]) -> set[str]:
        """Those of ``addresses`` an active chat watches."""
        candidates = list(addresses)
        def work() -> set[str]:
            watched = self._watched_for(chain_id)
            return {a for a in candidates if watched.get(a)}
        return await self._run(work)

    async def watched_addresses(self, chain_id: int, before_block: int, limit: int | None = None,
                                after: str = "") -> list[str] | None:
        """Addresses above ``after`` an active chat watches from a start block below ``before_block`` (for
        per-address scans); None when there are more than ``limit``."""
        return await self._run(lambda: self._watched_for(chain_id).addresses_before(before_block, limit, after))

    async def commit_scan(self, chain_id: int, previous: int | None, checkpoint: int,
                          plan: Callable[[WatchedSet], Sequence[Delivery]], *,
                          block_hash: tuple[int, str] | None = None, new_gap: tuple[int, int] | None = None,
                          fetched: Sequence[Transfer] = (), replaced: tuple[int, int] | None = None,
                          screen: Screen | None = None) -> int:
        """Match, store transfers, enqueue deliveries and advance the checkpoint in ONE transaction.

        ``plan`` runs inside the transaction against the watched set as committed at that instant, so a watch
        added while the range was being fetched is matched too. The checkpoint moves from ``previous`` to
        ``checkpoint`` only if it still is ``previous``: an /add that rewound it (see add_watch) is not overwritten,
        and the range is read again next cycle (duplicates are ignored by identity). Optionally, in the same
        transaction: remember ``block_hash`` (number, hash) of the new checkpoint, record ``new_gap`` (blocks left
        for catch-up), and reconcile stored transfers with ``fetched`` (every transfer read; ``replaced`` = the
        blocks a reorganisation replaced), see store.reorgs.reconcile. Returns rows enqueued.
        """
        def work(conn: sqlite3.Connection) -> int:
            self.last_reorg = reconcile(conn, chain_id, fetched, replaced=replaced)
            enqueued = self._enqueue(conn, self._screened(conn, chain_id, plan, screen))
            now = _now()
            if previous is None:
                conn.execute("INSERT INTO checkpoints(chain_id, block, updated_at) VALUES (?,?,?) "
                             "ON CONFLICT(chain_id) DO NOTHING", (chain_id, checkpoint, now))
            elif checkpoint > previous or replaced is not None:
                conn.execute("UPDATE checkpoints SET block=?, updated_at=? WHERE chain_id=? AND block=?",
                             (checkpoint, now, chain_id, previous))
            if new_gap is not None and new_gap[0] <= new_gap[1]:
                conn.execute("INSERT OR REPLACE INTO scan_gaps(chain_id, from_block, to_block) VALUES (?,?,?)",
                             (chain_id, *new_gap))
            if replaced is not None:
                conn.execute("DELETE FROM block_hashes WHERE chain_id=? AND number>=?", (chain_id, replaced[0]))
            if block_hash is not None:
                _remember_block(conn, chain_id, *block_hash)
            return enqueued
        return await self._run(self._tx, work)

    last_reorg = ReorgOutcome()   # what the latest commit_scan reconciled

    def _screened(self, conn: sqlite3.Connection, chain_id: int, plan: Callable[[WatchedSet], Sequence[Delivery]],
                  screen: Screen | None) -> Sequence[Delivery]:
        deliveries = plan(self._watched_for(chain_id))
        return screen(deliveries, HistoryReader(conn, chain_id)) if screen is not None and deliveries else deliveries

    def _enqueue(self, conn: sqlite3.Connection, deliveries: Sequence[Delivery]) -> int:
        """Store the delivered transfers and their outbox rows (both idempotent by identity); rows added."""
        conn.executemany(
            "INSERT INTO transfers(chain_id, tx_hash, log_index, block_number, block_time, block_hash, "
            "contract, sender, recipient, value) VALUES (?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(chain_id, tx_hash, log_index) DO NOTHING",
            {d.transfer.key: (t.chain_id, t.tx_hash, t.log_index, t.block_number, t.block_time, t.block_hash,
                              t.contract, t.sender, t.recipient, str(t.value))
             for d in deliveries for t in (d.transfer,)}.values())
        quiet = [d for d in deliveries if d.spam_score is not None and d.spam_mode != "warn"]
        loud = [d for d in deliveries if d.spam_score is None or d.spam_mode == "warn"]
        added = []
        for rows, status in ((loud, "pending"), (quiet, "suppressed")):
            before = conn.total_changes
            conn.executemany(
                "INSERT INTO outbox(chat_id, chain_id, tx_hash, log_index, kind, watched, counterparty, created_at, "
                "status, spam_score, spam_reasons) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(chat_id, chain_id, tx_hash, log_index, correction) DO NOTHING",
                [(d.chat_id, *d.transfer.key, d.kind, d.watched, d.counterparty, _now(), status, d.spam_score,
                  "\n".join(d.spam_reasons) if d.spam_score is not None else None) for d in rows])
            added.append(conn.total_changes - before)
        self.last_suppressed = added[1]
        return added[0]

    last_suppressed = 0   # suspicious transfers recorded silently by the latest commit

    # ---- catch-up gaps -------------------------------------------------------------------------------------
    async def gaps(self, chain_id: int) -> list[Gap]:
        """Ranges still to read after downtime, oldest first."""
        rows = await self._run(lambda: self._conn.execute(
            "SELECT chain_id, from_block, to_block, address_cursor FROM scan_gaps WHERE chain_id=? ORDER BY from_block",
            (chain_id,)).fetchall())
        return [Gap(*row) for row in rows]

    async def commit_gap(self, gap: Gap, plan: Callable[[WatchedSet], Sequence[Delivery]], *,
                         done_to: int | None = None, address_cursor: str | None = None,
                         skipped_to: int | None = None, screen: Screen | None = None) -> int:
        """Enqueue what a chunk of ``gap`` found and record progress in ONE transaction; rows enqueued.

        Progress is either ``done_to`` (every address is done up to that block), ``address_cursor`` (addresses up
        to it are done for the whole gap) or ``skipped_to`` (blocks too old to matter, dropped unread).
        """
        def work(conn: sqlite3.Connection) -> int:
            current = conn.execute("SELECT to_block, address_cursor FROM scan_gaps WHERE chain_id=? AND from_block=?",
                                   (gap.chain_id, gap.from_block)).fetchone()
            if current is None or tuple(current) != (gap.to_block, gap.address_cursor):
                return 0   # changed meanwhile (cannot happen with one scanner): keep it for the next cycle
            enqueued = self._enqueue(conn, self._screened(conn, gap.chain_id, plan, screen))
            conn.execute("DELETE FROM scan_gaps WHERE chain_id=? AND from_block=?", (gap.chain_id, gap.from_block))
            new_from = max(x for x in (done_to, skipped_to, gap.from_block - 1) if x is not None) + 1
            cursor = "" if new_from > gap.from_block else (address_cursor or gap.address_cursor)
            if new_from <= gap.to_block:
                conn.execute("INSERT INTO scan_gaps(chain_id, from_block, to_block, address_cursor) VALUES (?,?,?,?)",
                             (gap.chain_id, new_from, gap.to_block, cursor))
            return enqueued
        return await self._run(self._tx, work)

    async def scan_status(self, chain_id: int) -> tuple[int | None, int]:
        """(live checkpoint, blocks waiting in catch-up gaps) of a chain."""
        def work() -> tuple[int | None, int]:
            row = self._conn.execute("SELECT block FROM checkpoints WHERE chain_id=?", (chain_id,)).fetchone()
            (backlog,) = self._conn.execute("SELECT COALESCE(SUM(to_block - from_block + 1), 0) FROM scan_gaps "
                                            "WHERE chain_id=?", (chain_id,)).fetchone()
            return (None if row is None else row[0]), backlog
        return await self._run(work)

    # ---- block hashes --------------------------------------------------------------------------------------
    async def remember_block(self, chain_id: int, number: int, block_hash: str) -> None:
        """Remember the hash of a checkpoint block (older ones beyond HASH_WINDOW are forgotten)."""
        await self._run(self._tx, lambda conn: _remember_block(conn, chain_id, number, block_hash))

    async def block_hashes(self, chain_id: int, up_to: int) -> list[tuple[int, str]]:
        """Remembered (number, hash) pairs at or below ``up_to``, newest first."""
        return await self._run(lambda: self._conn.execute(
            "SELECT number, hash FROM block_hashes WHERE chain_id=? AND number<=? ORDER BY number DESC",
            (chain_id, up_to)).fetchall())

    # ---- outbox ------------------------------------------------------------------------------------------
    async def pending_outbox(self, limit: int = 500, exclude_chats: Iterable[int] = (),
                             chat_id: int | None = None) -> list[OutboxItem]:
        """Oldest pending rows of active chats (or of one chat), with transfer data and labels."""
        excluded = list(exclude_chats)
        clause = f"AND o.chat_id NOT IN ({','.join('?' * len(excluded))})" if excluded else ""
        if chat_id is not None:
            clause += " AND o.chat_id=?"
            excluded.append(chat_id)

        def work() -> list[OutboxItem]:
            rows = self._conn.execute(
                "SELECT o.outbox_id, o.chat_id, o.kind, o.attempts, o.watched, o.counterparty, "
                "t.chain_id, t.tx_hash, t.log_index, t.block_number, t.block_time, t.contract, t.sender, t.recipient, "
                "t.value, t.block_hash, w1.label, w2.label, o.correction, o.spam_score, o.spam_reasons "
                "FROM outbox o JOIN chats c ON c.chat_id=o.chat_id AND c.active=1 "
                "JOIN transfers t ON t.chain_id=o.chain_id AND t.tx_hash=o.tx_hash AND t.log_index=o.log_index "
                "LEFT JOIN watches w1 ON w1.chat_id=o.chat_id AND w1.chain_id=o.chain_id AND w1.address=o.watched "
                "LEFT JOIN watches w2 ON w2.chat_id=o.chat_id AND w2.chain_id=o.chain_id AND w2.address=o.counterparty "
                f"WHERE o.status='pending' {clause} ORDER BY o.outbox_id LIMIT ?", (*excluded, limit)).fetchall()
            return [OutboxItem(
                outbox_id=r[0], chat_id=r[1], kind=r[2], attempts=r[3], watched=r[4], counterparty=r[5],
                transfer=Transfer(chain_id=r[6], tx_hash=r[7], log_index=r[8], block_number=r[9], block_time=r[10],
                                  contract=r[11], sender=r[12], recipient=r[13], value=int(r[14]), block_hash=r[15]),
                watched_label=r[16], counterparty_label=r[17], correction=bool(r[18]), spam_score=r[19],
                spam_reasons=tuple((r[20] or "").splitlines())) for r in rows]
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

    # ---- spam ---------------------------------------------------------------------------------------------
    async def record_past_transfers(self, address: str, rows: Sequence[Any]) -> int:
        """Keep what /add fetched of an address's past (rows with counterparty, outgoing, tx_hash, amount,
        token_symbol, block_number, time); once per address. Returns rows stored."""
        def work(conn: sqlite3.Connection) -> int:
            if conn.execute("SELECT 1 FROM past_transfers WHERE address=? AND source='tokentx' LIMIT 1",
                            (address,)).fetchone():
                return 0
            conn.executemany(
                "INSERT INTO past_transfers(address, counterparty, outgoing, tx_hash, amount, token_symbol, "
                "block_number, time, risk_score, source) VALUES (?,?,?,?,?,?,?,?,NULL,'tokentx')",
                [(address, r.counterparty, int(r.outgoing), r.tx_hash, r.amount, r.token_symbol, r.block_number,
                  r.time) for r in rows])
            return len(rows)
        return await self._run(self._tx, work)

    async def set_spam_mode(self, chat_id: int, mode: str) -> None:
        """'silent' (suspicious transfers only in /spam) or 'warn' (a one-line warning for each)."""
        await self._run(self._tx, lambda c: c.execute("UPDATE chats SET spam_mode=? WHERE chat_id=?", (mode, chat_id)))

    async def spam_report(self, chat_id: int, latest: int = 10) -> SpamReport:
        """What the spam screen held back for a chat: totals and the latest rows with their reasons."""
        def work() -> SpamReport:
            conn = self._conn
            mode_row = conn.execute("SELECT spam_mode FROM chats WHERE chat_id=?", (chat_id,)).fetchone()
            rows = conn.execute(
                "SELECT o.kind, o.watched, o.counterparty, o.spam_score, o.spam_reasons, t.contract, t.value, "
                "t.block_number, t.block_time, t.tx_hash, w.label FROM outbox o JOIN transfers t ON "
                "t.chain_id=o.chain_id AND t.tx_hash=o.tx_hash AND t.log_index=o.log_index LEFT JOIN watches w ON "
                "w.chat_id=o.chat_id AND w.chain_id=o.chain_id AND w.address=o.watched "
                "WHERE o.chat_id=? AND o.spam_score IS NOT NULL AND o.correction=0 "
                "ORDER BY t.block_number DESC, t.log_index DESC", (chat_id,)).fetchall()
            totals: dict[str, int] = {}
            for row in rows:
                totals[row[5]] = totals.get(row[5], 0) + int(row[6])
            recent = [SuspiciousTransfer(kind=r[0], watched=r[1], counterparty=r[2], score=r[3],
                                         reasons=tuple((r[4] or "").splitlines()), contract=r[5], value=int(r[6]),
                                         block_number=r[7], block_time=r[8], tx_hash=r[9], watched_label=r[10])
                      for r in rows[:latest]]
            scores = [r[3] for r in rows]
            (imported,) = conn.execute(
                "SELECT COUNT(*) FROM past_transfers l WHERE l.risk_score >= ? AND l.address IN "
                "(SELECT address FROM watches WHERE chat_id=?)", (LEGACY_SPAM_THRESHOLD, chat_id)).fetchone()
            return SpamReport(len(rows), totals, min(scores, default=0), max(scores, default=0), recent,
                              mode_row[0] if mode_row else "silent", imported)
        return await self._run(work)

    # ---- key/value ---------------------------------------------------------------------------------------
    async def get_value(self, key: str) -> str | None:
        row = await self._run(lambda: self._conn.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone())
        return None if row is None else row[0]

    async def set_value(self, key: str, value: str) -> None:
        await self._run(self._tx, lambda c: c.execute(
            "INSERT INTO kv(key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value)))


def _remember_block(conn: sqlite3.Connection, chain_id: int, number: int, block_hash: str) -> None:
    conn.execute("INSERT OR REPLACE INTO block_hashes(chain_id, number, hash) VALUES (?,?,?)",
                 (chain_id, number, block_hash))
    conn.execute("DELETE FROM block_hashes WHERE chain_id=? AND number<?", (chain_id, number - HASH_WINDOW))


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
