"""The service: one httpx client and one Store outside, one nursery inside owning every long-running task."""

from __future__ import annotations

import logging
import signal
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import httpx
import trio

from . import __version__
from .budget import DailyBudget
from .chain.address_scan import past_transfers
from .chain.etherscan import EtherscanClient
from .chain.tokens import ETHEREUM, TOKENS_BY_CHAIN
from .config import Settings
from .errors import ConfigError
from .monitor.scanner import Scanner
from .pacing import Pacer
from .store.db import Store, open_store
from .telegram.commands import Commands
from .telegram.limits import ChatLimiter
from .telegram.poller import Poller
from .telegram.sender import Sender
from .telegram.throttle import Throttle
from .telegram.transport import make_bot

__all__ = ["run_service", "Service", "make_http_client", "POLL_TIMEOUT"]

log = logging.getLogger(__name__)
POLL_TIMEOUT = 50


@dataclass
class Service:
    """Handles on the running parts (for tests and the demo)."""

    store: Store
    scanner: Scanner
    sender: Sender
    poller: Poller
    etherscan: EtherscanClient


def make_http_client(poll_timeout: int = POLL_TIMEOUT) -> httpx.AsyncClient:
    """The process's one HTTP client; its read timeout exceeds the long-poll timeout."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=10.0, read=poll_timeout + 15.0, write=15.0, pool=15.0),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        headers={"user-agent": f"usdt-trio/{__version__}"},
    )


@asynccontextmanager
async def _open_database(path: Path) -> AsyncIterator[Store]:
    """open_store, except that a database that cannot be opened or migrated is a DB_PATH configuration error."""
    async with AsyncExitStack() as stack:
        try:
            store = await stack.enter_async_context(open_store(path))
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            raise ConfigError(f"DB_PATH: {path} cannot be used: {exc}") from None
        yield store


async def _stop_on_signal(signals: AsyncIterator[int], cancel_scope: trio.CancelScope) -> None:
    async for signum in signals:
        log.info("%s received, shutting down", signal.Signals(signum).name)
        cancel_scope.cancel()
        return


async def run_service(settings: Settings, *, handle_signals: bool = True, poll_timeout: int = POLL_TIMEOUT,
                      task_status: trio.TaskStatus[Service] = trio.TASK_STATUS_IGNORED) -> None:
    """Run until cancelled (or until SIGTERM/SIGINT when ``handle_signals``); every resource is closed on exit."""
    if settings.BLOCKSCOUT_ENABLED:
        log.warning("BLOCKSCOUT_ENABLED is set, but fallback providers are not implemented yet; using Etherscan only")
    # the receiver is installed before anything opens, so a SIGTERM during start-up still means a clean exit 0
    receiver = trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) if handle_signals else nullcontext()
    with receiver as signals:
        async with make_http_client(poll_timeout) as http, _open_database(settings.DB_PATH) as store:
            await _serve(settings, http, store, signals, poll_timeout, task_status)
    log.info("usdt-trio stopped")


async def _serve(settings: Settings, http: httpx.AsyncClient, store: Store, signals: AsyncIterator[int] | None,
                 poll_timeout: int, task_status: trio.TaskStatus[Service]) -> None:
    """Wire the parts together and run them in the one nursery."""
    etherscan = EtherscanClient(http, base_url=settings.ETHERSCAN_BASE_URL, api_key=settings.api_key,
                                chain_id=ETHEREUM, limiter=trio.CapacityLimiter(settings.ETHERSCAN_MAX_CONCURRENCY),
                                pacer=Pacer(settings.ETHERSCAN_RATE_LIMIT),
                                budget=DailyBudget(settings.ETHERSCAN_DAILY_QUOTA))
    bot = make_bot(http, settings.TELEGRAM_API_URL, settings.bot_token)
    limiter = ChatLimiter()
    sender = Sender(store, bot, limiter)
    scanner = Scanner(store, etherscan, TOKENS_BY_CHAIN[ETHEREUM], confirmations=settings.CONFIRMATIONS,
                      max_age_days=settings.MAX_TRANSACTION_AGE_DAYS, on_enqueued=sender.notify,
                      budget=etherscan.budget, rate=settings.ETHERSCAN_RATE_LIMIT,
                      interval=settings.CHECK_INTERVAL_SECONDS, spam=settings.spam_settings(),
                      contract_cache_size=settings.CONTRACT_CREATION_CACHE_SIZE)
    async def learn_history(address: str, head: int) -> None:
        stored = await store.record_past_transfers(address, await past_transfers(etherscan, address, head))
        log.info("/add: %d past transfers of the new address feed the spam screen", stored)

    commands = Commands(store, etherscan.block_number, max_wallets=settings.MAX_WALLETS_PER_USER,
                        learn_history=learn_history)
    throttle = Throttle(settings.RATE_LIMIT_MAX_CALLS, settings.RATE_LIMIT_WINDOW_SECONDS)
    poller = Poller(bot, store, commands, throttle, limiter, poll_timeout=poll_timeout)
    async with trio.open_nursery() as nursery:
        if signals is not None:
            nursery.start_soon(_stop_on_signal, signals, nursery.cancel_scope)
        await nursery.start(sender.run)
        await nursery.start(scanner.run, settings.CHECK_INTERVAL_SECONDS)
        await nursery.start(poller.run)
        log.info("usdt-trio %s running: scanning every %ss, %d confirmations, database %s", __version__,
                 settings.CHECK_INTERVAL_SECONDS, settings.CONFIRMATIONS, settings.DB_PATH)
        task_status.started(Service(store, scanner, sender, poller, etherscan))
