"""Settle a chain reorganisation in the database: relocate re-included transfers, correct removed ones.

Runs inside the scan's transaction. A transfer is recognised again by its content (tx hash, token, parties, value,
and its position among identical ones of that transaction), because a transaction re-included in another block
usually gets other log indexes.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from ..chain.models import Transfer

__all__ = ["ReorgOutcome", "reconcile", "REINSTATE_WINDOW"]

log = logging.getLogger(__name__)
REINSTATE_WINDOW = 256      # removed transfers this many blocks back may still come back
_TEMP = 1 << 40             # log indexes of rows moved aside while keys are rewritten

Content = tuple[str, str, str, str, str]   # tx hash, contract, sender, recipient, value (decimal string)


@dataclass(frozen=True)
class ReorgOutcome:
    """What reconcile changed."""

    relocated: int = 0     # announced transfers found again, in another block or at another log index
    removed: int = 0       # announced transfers no longer on the chain
    corrections: int = 0   # correction rows enqueued for chats that had been told
    cancelled: int = 0     # announcements withdrawn before they were sent
    reinstated: int = 0    # transfers removed earlier that came back

    def __bool__(self) -> bool:
        return any((self.relocated, self.removed, self.corrections, self.cancelled, self.reinstated))


def _content(t: Transfer) -> Content:
    return (t.tx_hash, t.contract, t.sender, t.recipient, str(t.value))


def reconcile(conn: sqlite3.Connection, chain_id: int, fetched: Sequence[Transfer], *,
              replaced: tuple[int, int] | None = None) -> ReorgOutcome:
    """Bring stored transfers in line with ``fetched`` (every transfer now on the chain in the range read).

    ``replaced`` = (first, last) block whose contents a reorganisation replaced: stored transfers there that are
    not found again are marked removed (pending announcements cancelled, sent ones corrected). Independently,
    transfers removed earlier that appear in ``fetched`` again are reinstated.
    """
    low = min((t.block_number for t in fetched), default=None)
    clauses, args = [], [chain_id]
    if replaced is not None:
        clauses.append("(removed=0 AND block_number BETWEEN ? AND ?)")
        args += list(replaced)
    if low is not None:
        clauses.append("(removed=1 AND block_number >= ?)")
        args.append(low - REINSTATE_WINDOW)
    if not clauses:
        return ReorgOutcome()
    stored = conn.execute(
        "SELECT tx_hash, log_index, block_number, contract, sender, recipient, value, removed FROM transfers "
        f"WHERE chain_id=? AND ({' OR '.join(clauses)}) AND log_index >= 0 ORDER BY block_number, log_index",
        args).fetchall()
    if not stored:
        return ReorgOutcome()
    available: dict[Content, list[Transfer]] = {}
    for t in fetched:
        available.setdefault(_content(t), []).append(t)
    moves: list[tuple[int, Transfer]] = []   # (old log index, the transfer as it is now)
    gone: list[tuple[str, int]] = []
    reinstated: list[tuple[str, int]] = []
    for tx_hash, log_index, block_number, contract, sender, recipient, value, removed in stored:
        matches = available.get((tx_hash, contract, sender, recipient, value))
        if matches:
            now = matches.pop(0)
            if removed:
                reinstated.append((tx_hash, now.log_index))
            if removed or now.log_index != log_index or now.block_number != block_number:
                moves.append((log_index, now))
        elif not removed:
            gone.append((tx_hash, log_index))
    _move(conn, chain_id, moves)
    corrections = cancelled = 0
    for tx_hash, log_index in gone:
        key = (chain_id, tx_hash, log_index)
        conn.execute("UPDATE transfers SET removed=1 WHERE chain_id=? AND tx_hash=? AND log_index=?", key)
        cancelled += conn.execute("UPDATE outbox SET status='cancelled' WHERE chain_id=? AND tx_hash=? AND log_index=? "
                                  "AND correction=0 AND status='pending'", key).rowcount
        before = conn.total_changes
        conn.execute(
            "INSERT INTO outbox(chat_id, chain_id, tx_hash, log_index, kind, correction, watched, counterparty, "
            "created_at) SELECT chat_id, chain_id, tx_hash, log_index, kind, 1, watched, counterparty, "
            "strftime('%s','now') FROM outbox WHERE chain_id=? AND tx_hash=? AND log_index=? AND correction=0 "
            "AND status='sent' ON CONFLICT(chat_id, chain_id, tx_hash, log_index, correction) DO NOTHING", key)
        corrections += conn.total_changes - before
    for tx_hash, log_index in reinstated:
        key = (chain_id, tx_hash, log_index)
        # a correction nobody saw yet is dropped; an announcement withdrawn before sending goes out after all;
        # one already corrected is announced again
        conn.execute("UPDATE outbox SET status='cancelled' WHERE chain_id=? AND tx_hash=? AND log_index=? "
                     "AND correction=1 AND status='pending'", key)
        conn.execute("UPDATE outbox SET status='pending' WHERE chain_id=? AND tx_hash=? AND log_index=? AND correction=0 "
                     "AND (status='cancelled' OR (status='sent' AND EXISTS (SELECT 1 FROM outbox c WHERE "
                     "c.chat_id=outbox.chat_id AND c.chain_id=outbox.chain_id AND c.tx_hash=outbox.tx_hash AND "
                     "c.log_index=outbox.log_index AND c.correction=1 AND c.status='sent')))", key)
    return ReorgOutcome(relocated=len(moves) - len(reinstated), removed=len(gone), corrections=corrections,
                        cancelled=cancelled, reinstated=len(reinstated))


def _move(conn: sqlite3.Connection, chain_id: int, moves: list[tuple[int, Transfer]]) -> None:
    """Rewrite identities in two phases (keys of one transaction may swap); unrelated rows in the way step aside."""
    tables = ("transfers", "outbox")
    for old, now in moves:
        conn.execute("UPDATE transfers SET log_index=?, block_number=?, block_time=?, block_hash=?, removed=0 "
                     "WHERE chain_id=? AND tx_hash=? AND log_index=?",
                     (-1 - now.log_index, now.block_number, now.block_time, now.block_hash, chain_id, now.tx_hash, old))
        conn.execute("UPDATE outbox SET log_index=? WHERE chain_id=? AND tx_hash=? AND log_index=?",
                     (-1 - now.log_index, chain_id, now.tx_hash, old))
    for _, now in moves:
        key = (chain_id, now.tx_hash, now.log_index)
        if conn.execute("SELECT 1 FROM transfers WHERE chain_id=? AND tx_hash=? AND log_index=?", key).fetchone():
            log.warning("transfer %s:%d is in the way of a re-included one; moved aside", now.tx_hash, now.log_index)
            for table in tables:
                conn.execute(f"UPDATE {table} SET log_index=? WHERE chain_id=? AND tx_hash=? AND log_index=?",
                             (-_TEMP - now.log_index, *key))
        for table in tables:
            conn.execute(f"UPDATE {table} SET log_index=? WHERE chain_id=? AND tx_hash=? AND log_index=?",
                         (now.log_index, chain_id, now.tx_hash, -1 - now.log_index))
