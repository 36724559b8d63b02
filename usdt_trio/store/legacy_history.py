"""Migration step 4: the ``past_transfers`` table, and usdt_monitor_bot's transaction history copied into it.

``past_transfers`` holds history the scanner did not read itself: the old bot's rows (no log index, so they cannot
become transfers of ours; /spam counts the ones it held back) and what /add fetched of a new address's past. The
spam screen reads the genuine ones as known counterparties, so a lookalike of someone the user paid last month is
caught from the first cycle.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from datetime import UTC, datetime

__all__ = ["import_spam_history", "LEGACY_SPAM_THRESHOLD"]

log = logging.getLogger(__name__)
ADDRESS = re.compile(r"0x[0-9a-f]{40}")
LEGACY_SPAM_THRESHOLD = 50   # the old bot's default: risk_score >= 50 was suppressed


def _unix(text: object) -> int:
    """The old bot stored naive local times as text; read them as UTC (0 when unreadable)."""
    try:
        parsed = datetime.fromisoformat(str(text))
    except ValueError:
        return 0
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())


def import_spam_history(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE past_transfers (address TEXT NOT NULL, counterparty TEXT NOT NULL, outgoing INTEGER NOT NULL, "
        "tx_hash TEXT NOT NULL, amount TEXT NOT NULL, token_symbol TEXT, block_number INTEGER, time INTEGER NOT NULL, "
        "risk_score INTEGER, source TEXT NOT NULL DEFAULT 'usdt_monitor_bot')")
    conn.execute("CREATE INDEX past_transfers_by_address ON past_transfers(address)")
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "transaction_history" not in tables:
        return
    rows = []
    for tx_hash, monitored, sender, recipient, value, block, stamp, symbol, risk in conn.execute(
            "SELECT tx_hash, monitored_address, from_address, to_address, value, block_number, timestamp, "
            "token_symbol, risk_score FROM transaction_history"):
        monitored, sender, recipient = (str(x).lower() for x in (monitored, sender, recipient))
        if not all(ADDRESS.fullmatch(a) for a in (monitored, sender, recipient)):
            continue
        outgoing = sender == monitored
        rows.append((monitored, recipient if outgoing else sender, int(outgoing), str(tx_hash), str(value), symbol,
                     block, _unix(stamp), risk))
    conn.executemany("INSERT INTO past_transfers(address, counterparty, outgoing, tx_hash, amount, token_symbol, "
                     "block_number, time, risk_score) VALUES (?,?,?,?,?,?,?,?,?)", rows)
    log.info("imported usdt_monitor_bot transaction history: %d rows", len(rows))
