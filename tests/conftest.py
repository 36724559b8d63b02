"""Shared fixtures: the fakes on loopback, settings pointing at them, and a running service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from usdt_trio.app import Service, run_service
from usdt_trio.config import Settings
from usdt_trio.testing.chain import SimChain
from usdt_trio.chain import etherscan as etherscan_module
from usdt_trio.chain.etherscan import EtherscanClient
from usdt_trio.chain.tokens import TOKENS_BY_CHAIN
from usdt_trio.monitor.scanner import Scanner
from usdt_trio.monitor.strategy import LOGS
from usdt_trio.pacing import Pacer
from usdt_trio.store.db import Watch, open_store
from usdt_trio.testing.fake_telegram import FakeTelegram
from usdt_trio.testing.harness import Fakes, serve_fakes

TOKEN = "987654321:SECRET-bot-token-never-logged"
API_KEY = "SECRETAPIKEY0123456789NEVERLOGGED"
USER = 1001
WALLET = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
STRANGER = "0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb"


@pytest.fixture
async def fakes(nursery: trio.Nursery) -> Fakes:
    return await serve_fakes(nursery, api_keys=[API_KEY], token=TOKEN, chain=SimChain())


@pytest.fixture
def settings_for(tmp_path: Path):
    """settings_for(fakes, **overrides) → Settings pointing at the fakes, fast cycles, a temporary database."""

    def build(fakes: Fakes, **overrides: Any) -> Settings:
        values: dict[str, Any] = dict(
            TELEGRAM_BOT_TOKEN=TOKEN, ETHERSCAN_API_KEY=API_KEY, ETHERSCAN_BASE_URL=fakes.etherscan_url,
            TELEGRAM_API_URL=fakes.telegram_url, DB_PATH=tmp_path / "usdt-trio.sqlite3",
            CHECK_INTERVAL_SECONDS=0.2, CONFIRMATIONS=0, ETHERSCAN_DAILY_QUOTA=10**9)  # fast cycles, no quota
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return build


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Service]:
    """Run the real service until the block exits (then cancel it, as SIGTERM would)."""
    async with trio.open_nursery() as nursery:
        service = await nursery.start(lambda task_status: run_service(settings, handle_signals=False,
                                                                      task_status=task_status))
        yield service
        nursery.cancel_scope.cancel()


async def converse(telegram: FakeTelegram, text: str, user: int = USER, replies: int = 1) -> list[str]:
    """Send ``text`` as ``user`` and return the plain text of the bot's next ``replies`` messages."""
    before = len(telegram.messages_to(user))
    telegram.user_sends(user, text)
    with trio.fail_after(10):
        messages = await telegram.wait_for_messages(user, before + replies)
    return [m.text for m in messages[before:before + replies]]


POLL_INTERVAL = 0.02


async def poll_until(predicate, timeout: float = 10.0) -> None:
    """Poll an (async) predicate with a deadline, for state only reachable through the database."""
    with trio.fail_after(timeout):
        while not await predicate():
            await trio.sleep(POLL_INTERVAL)


async def scanned_past(service: Service, block: int) -> None:
    """Wait until the scanner's checkpoint has passed ``block``."""
    with trio.fail_after(10):
        await service.scanner.last_report.wait_value(
            lambda report: report is not None and report.to_block is not None and report.to_block >= block)


@pytest.fixture
def scanner_for(fakes, tmp_path, monkeypatch):
    """scanner_for(confirmations=0, strategy=LOGS, **scanner_options) → async context manager: (scanner, store)."""
    monkeypatch.setattr(etherscan_module, "FIRST_RETRY_DELAY", 0.001)
    fakes.etherscan.rate_limit = 10_000

    @asynccontextmanager
    async def build(confirmations: int = 0, strategy: str | None = LOGS, db: str = "db.sqlite3", **options):
        async with httpx.AsyncClient() as http, open_store(tmp_path / db) as store:
            client = EtherscanClient(http, base_url=fakes.etherscan_url, api_key=API_KEY, chain_id=1,
                                     limiter=trio.CapacityLimiter(3), pacer=Pacer(1000), budget=options.pop("budget", None))
            options.setdefault("max_age_days", 7)
            scanner = Scanner(store, client, TOKENS_BY_CHAIN[1], confirmations=confirmations,
                              budget=client.budget, **options)
            scanner.strategy = strategy
            yield scanner, store
    return build


async def watch(store, chat_id: int, address: str, start_block: int) -> None:
    await store.upsert_chat(chat_id, None, None)
    await store.add_watch(Watch(chat_id, 1, address, None, start_block), 10**6)
