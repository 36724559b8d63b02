"""`usdt-trio check`: configuration, database, Telegram getMe and Etherscan eth_blockNumber, reported line by line."""

from __future__ import annotations

import sqlite3
import sys
import time
from typing import TextIO

import trio
from telegram.error import InvalidToken, TelegramError

from .app import make_http_client
from .chain.etherscan import EtherscanClient
from .chain.tokens import ETHEREUM
from .config import Settings
from .errors import ChainApiError, InvalidApiKey
from .pacing import Pacer
from .monitor.scanner import BUDGET_KEY
from .store.db import open_store
from .telegram.transport import make_bot

__all__ = ["run_checks"]

CHECK_TIMEOUT = 30.0


async def run_checks(settings: Settings, out: TextIO = sys.stdout) -> int:
    """Print one line per check; 0 when all pass, 78 when a credential or the database is wrong, 1 when unreachable."""
    worst = 0

    def report(ok: bool, text: str, failure_code: int = 0) -> None:
        nonlocal worst
        print(f"{'ok  ' if ok else 'FAIL'} {text}", file=out)
        if not ok:
            worst = max(worst, failure_code)

    report(True, "configuration: all variables valid")
    checkpoint, backlog, calls_today = None, 0, ""
    try:
        async with open_store(settings.DB_PATH) as store:
            counts = await store.outbox_counts()
            checkpoint, backlog = await store.scan_status(ETHEREUM)
            calls_today = await store.get_value(BUDGET_KEY) or ""
        report(True, f"database: {settings.DB_PATH} (pending notifications: {counts.get('pending', 0)})")
    except (sqlite3.Error, OSError, RuntimeError) as exc:
        report(False, f"database: {settings.DB_PATH} cannot be used: {exc}", 78)
    async with make_http_client() as http:
        bot = make_bot(http, settings.TELEGRAM_API_URL, settings.bot_token)
        try:
            with trio.fail_after(CHECK_TIMEOUT):
                me = await bot.get_me()
            report(True, f"telegram: bot @{me.username} at {settings.TELEGRAM_API_URL}")
        except InvalidToken:
            report(False, "telegram: TELEGRAM_BOT_TOKEN was rejected (Unauthorized)", 78)
        except (TelegramError, trio.TooSlowError) as exc:
            report(False, f"telegram: {settings.TELEGRAM_API_URL} unreachable ({_describe(exc)})", 1)
        client = EtherscanClient(http, base_url=settings.ETHERSCAN_BASE_URL, api_key=settings.api_key,
                                 chain_id=ETHEREUM, limiter=trio.CapacityLimiter(1),
                                 pacer=Pacer(settings.ETHERSCAN_RATE_LIMIT))
        try:
            with trio.fail_after(CHECK_TIMEOUT):
                head = await client.block_number()
            report(True, f"etherscan: chain {ETHEREUM} head is block {head}")
            if checkpoint is not None:
                report(True, _scan_status(head, checkpoint, backlog, calls_today, settings))
        except InvalidApiKey as exc:
            report(False, f"etherscan: ETHERSCAN_API_KEY was rejected ({exc})", 78)
        except (ChainApiError, trio.TooSlowError) as exc:
            report(False, f"etherscan: {settings.ETHERSCAN_BASE_URL} failed ({_describe(exc)})", 1)
    return worst


def _scan_status(head: int, checkpoint: int, backlog: int, calls_today: str, settings: Settings) -> str:
    """The scanner's position as last saved: blocks behind the head, catch-up backlog, API calls spent today."""
    text = f"scanner: checked up to block {checkpoint}, {max(0, head - checkpoint)} blocks behind the head"
    if backlog:
        text += f", {backlog} older blocks still to catch up"
    day, _, used = calls_today.partition(":")
    if used.isdigit() and day.isdigit() and int(day) == int(time.time()) // 86_400:
        text += f"; {int(used):,} of {settings.ETHERSCAN_DAILY_QUOTA:,} Etherscan calls used today"
    return text


def _describe(exc: Exception) -> str:
    if isinstance(exc, trio.TooSlowError):
        return f"no answer within {CHECK_TIMEOUT:.0f}s"
    text = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {text}"
