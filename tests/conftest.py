"""Shared fixtures: the fakes on loopback, settings pointing at them, and a running service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from usdt_trio.app import Service, run_service
from usdt_trio.config import Settings
from usdt_trio.testing.chain import SimChain
from usdt_trio.testing.fake_etherscan import FakeEtherscan
from usdt_trio.testing.fake_telegram import FakeTelegram
from usdt_trio.testing.http_server import serve_http

TOKEN = "987654321:SECRET-bot-token-never-logged"
API_KEY = "SECRETAPIKEY0123456789NEVERLOGGED"
USER = 1001


@dataclass
class Fakes:
    chain: SimChain
    etherscan: FakeEtherscan
    telegram: FakeTelegram
    etherscan_url: str
    telegram_url: str


@pytest.fixture
async def fakes(nursery: trio.Nursery) -> Fakes:
    chain = SimChain()
    etherscan = FakeEtherscan(chain, api_keys=[API_KEY])
    telegram = FakeTelegram(TOKEN)
    etherscan_url = await nursery.start(serve_http, etherscan.handle)
    telegram_url = await nursery.start(serve_http, telegram.handle)
    return Fakes(chain, etherscan, telegram, f"{etherscan_url}/v2/api", telegram_url)


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
