"""Migration step 4: keep usdt_monitor_bot's transaction history (spam verdicts included) after a switch.

Its rows have no log index, so they cannot become transfers of ours; they are copied into ``legacy_history``, where
the spam screen reads the genuine ones as known counterparties (a lookalike of someone the user paid last month is
caught from the first cycle) and /spam counts the ones the old bot held back.
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
        "CREATE TABLE legacy_history (address TEXT NOT NULL, counterparty TEXT NOT NULL, outgoing INTEGER NOT NULL, "
        "tx_hash TEXT NOT NULL, amount TEXT NOT NULL, token_symbol TEXT, block_number INTEGER, time INTEGER NOT NULL, "
        "risk_score INTEGER)")
    conn.execute("CREATE INDEX legacy_history_by_address ON legacy_history(address)")
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
    conn.executemany("INSERT INTO legacy_history VALUES (?,?,?,?,?,?,?,?,?)", rows)
    log.info("imported usdt_monitor_bot transaction history: %d rows", len(rows))
