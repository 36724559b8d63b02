"""What the spam screen needs from the database, read in bulk inside the scan's transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection

from .legacy_history import LEGACY_SPAM_THRESHOLD

__all__ = ["HistoryReader"]

_CHUNK = 500   # SQLite's variable limit is far above; keeps statements small


def _chunks(items: Collection, size: int = _CHUNK):
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i:i + size]


class HistoryReader:
    """Bulk reads on the connection of the running transaction (so they see its own writes)."""

    def __init__(self, conn: sqlite3.Connection, chain_id: int) -> None:
        self.conn = conn
        self.chain_id = chain_id

    def contacts(self, addresses: Collection[str]) -> dict[str, list[tuple[str, bool, int]]]:
        """address → (counterparty, outgoing, time) of every stored genuine transfer it took part in."""
        found: dict[str, list[tuple[str, bool, int]]] = {a: [] for a in addresses}
        for chunk in _chunks(addresses):
            marks = ",".join("?" * len(chunk))
            for sender, recipient, block_time in self.conn.execute(
                    "SELECT t.sender, t.recipient, t.block_time FROM transfers t "
                    f"WHERE t.chain_id=? AND (t.sender IN ({marks}) OR t.recipient IN ({marks})) AND t.removed=0 "
                    "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.chain_id=t.chain_id AND o.tx_hash=t.tx_hash "
                    "AND o.log_index=t.log_index AND o.spam_score IS NOT NULL) ORDER BY t.block_number, t.log_index",
                    (self.chain_id, *chunk, *chunk)):
                if sender in found:
                    found[sender].append((recipient, True, block_time))
                if recipient in found:
                    found[recipient].append((sender, False, block_time))
            for address, counterparty, outgoing, time in self.conn.execute(
                    f"SELECT address, counterparty, outgoing, time FROM past_transfers WHERE address IN ({marks}) "
                    "AND (risk_score IS NULL OR risk_score < ?)", (*chunk, LEGACY_SPAM_THRESHOLD)):
                found[address].append((counterparty, bool(outgoing), time))   # usdt_monitor_bot's genuine history
        return found

    def own_addresses(self, chat_ids: Collection[int]) -> dict[int, set[str]]:
        """chat → every address it watches on this chain."""
        found: dict[int, set[str]] = {c: set() for c in chat_ids}
        for chunk in _chunks(chat_ids):
            for chat_id, address in self.conn.execute(
                    f"SELECT chat_id, address FROM watches WHERE chain_id=? AND chat_id IN ({','.join('?' * len(chunk))})",
                    (self.chain_id, *chunk)):
                found[chat_id].add(address)
        return found

    def spam_modes(self, chat_ids: Collection[int]) -> dict[int, str]:
        """chat → 'silent' or 'warn'."""
        found: dict[int, str] = {}
        for chunk in _chunks(chat_ids):
            found.update(self.conn.execute(
                f"SELECT chat_id, spam_mode FROM chats WHERE chat_id IN ({','.join('?' * len(chunk))})", chunk))
        return found
