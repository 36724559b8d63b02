"""Migration step 2: import a usdt_monitor_bot database found in the same file (users, wallets, checkpoints)."""

from __future__ import annotations

import logging
import re
import sqlite3
import time

from ..chain.tokens import ETHEREUM

__all__ = ["import_usdt_monitor_bot"]

log = logging.getLogger(__name__)
ADDRESS = re.compile(r"0x[0-9a-f]{40}")


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def import_usdt_monitor_bot(conn: sqlite3.Connection) -> None:
    """Copy the old bot's users and wallets so switching loses nothing.

    Each wallet starts after the block the old bot last checked for it, and the chain checkpoint starts at the
    lowest such block, so transfers the old bot had not reported yet are reported once, and nothing older is.
    Wallets the old bot never checked start at the checkpoint (no history flood). Old tables are left untouched.
    """
    tables = _tables(conn)
    if not {"users", "wallets"} <= tables:
        return
    now = int(time.time())
    checked: dict[str, int] = {}
    if "tracked_addresses" in tables:
        for address, block in conn.execute("SELECT address, last_checked_block FROM tracked_addresses"):
            if isinstance(address, str) and isinstance(block, int) and block > 0:
                checked[address.lower()] = block
    wallet_rows = conn.execute("SELECT user_id, address FROM wallets ORDER BY wallet_id").fetchall()
    # only wallets still watched count: the old bot never deletes tracked_addresses rows of removed wallets,
    # and such a stale row would send the new scanner back months of blocks
    wallet_blocks = [checked[a] for a in {str(address).lower() for _, address in wallet_rows} if a in checked and ADDRESS.fullmatch(a)]
    checkpoint = min(wallet_blocks) if wallet_blocks else None
    users = 0
    for user_id, username, first_name in conn.execute("SELECT user_id, username, first_name FROM users").fetchall():
        conn.execute("INSERT OR IGNORE INTO chats(chat_id, username, first_name, active, created_at) VALUES (?,?,?,1,?)",
                     (user_id, username, first_name, now))
        users += 1
    wallets = 0
    for user_id, address in wallet_rows:
        address = str(address).lower()
        if not ADDRESS.fullmatch(address):
            log.warning("legacy import: skipping malformed wallet address for chat %s", user_id)
            continue
        conn.execute("INSERT OR IGNORE INTO chats(chat_id, active, created_at) VALUES (?,1,?)", (user_id, now))
        start = checked.get(address, checkpoint if checkpoint is not None else 0)
        conn.execute("INSERT OR IGNORE INTO watches(chat_id, chain_id, address, label, start_block, added_at) "
                     "VALUES (?,?,?,NULL,?,?)", (user_id, ETHEREUM, address, start, now))
        wallets += 1
    if checkpoint is not None:
        conn.execute("INSERT OR IGNORE INTO checkpoints(chain_id, block, updated_at) VALUES (?,?,?)",
                     (ETHEREUM, checkpoint, now))
    log.info("imported usdt_monitor_bot database: %d users, %d wallets, checkpoint %s", users, wallets, checkpoint)
