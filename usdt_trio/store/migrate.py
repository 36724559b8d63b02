"""Schema migrations: numbered .sql files plus Python steps, applied in order and tracked in PRAGMA user_version."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable
from importlib import resources

from .legacy import import_usdt_monitor_bot
from .legacy_history import import_spam_history

__all__ = ["migrate", "SCHEMA_VERSION"]

log = logging.getLogger(__name__)

PYTHON_STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {2: import_usdt_monitor_bot, 4: import_spam_history}


def _sql_steps() -> dict[int, str]:
    steps = {}
    for entry in resources.files(__package__).joinpath("migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_\w+\.sql", entry.name)
        if match:
            steps[int(match.group(1))] = entry.read_text(encoding="utf-8")
    return steps


def _all_steps() -> dict[int, Callable[[sqlite3.Connection, int], None]]:
    steps: dict[int, Callable[[sqlite3.Connection, int], None]] = {n: _python_step(f) for n, f in PYTHON_STEPS.items()}
    for number, script in _sql_steps().items():
        if number in steps:
            raise RuntimeError(f"migration {number} is defined twice")
        steps[number] = _sql_step(script)
    return steps


def _sql_step(script: str) -> Callable[[sqlite3.Connection, int], None]:
    def run(conn: sqlite3.Connection, number: int) -> None:
        # executescript commits any open transaction first, so the transaction lives inside the script
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\n;PRAGMA user_version={number};\nCOMMIT;")
    return run


def _python_step(fn: Callable[[sqlite3.Connection], None]) -> Callable[[sqlite3.Connection, int], None]:
    def run(conn: sqlite3.Connection, number: int) -> None:
        conn.execute("BEGIN IMMEDIATE")
        fn(conn)
        conn.execute(f"PRAGMA user_version={number}")
        conn.execute("COMMIT")
    return run


SCHEMA_VERSION = max(_all_steps())


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database up to SCHEMA_VERSION, one transaction per step; returns the final version."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise RuntimeError(f"database schema {version} is newer than this program ({SCHEMA_VERSION})")
    for number, step in sorted(_all_steps().items()):
        if number <= version:
            continue
        try:
            step(conn, number)
        except Exception:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        log.info("database migrated to schema %d", number)
    return max(version, SCHEMA_VERSION)
