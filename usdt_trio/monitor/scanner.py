"""The periodic scanner: head → confirmed range → Transfer logs per token → match → outbox + checkpoint (one tx)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import trio
import trio_util

from ..chain.etherscan import EtherscanClient
from ..chain.models import Transfer
from ..chain.tokens import Token
from ..errors import ChainApiError, DailyLimitReached, InvalidApiKey
from ..store.db import Store
from .matching import MatchResult, match_transfers

__all__ = ["Scanner", "CycleReport"]

log = logging.getLogger(__name__)
MAX_BLOCKS_PER_CYCLE = 2000
DAILY_LIMIT_PAUSE = 900.0    # seconds to wait after "Max daily rate limit reached"
KEY_REJECTED_PAUSE = 60.0    # seconds to wait after "Invalid API Key" (the operator must fix the configuration)


@dataclass(frozen=True)
class CycleReport:
    """What one cycle did (for logs, tests and benchmarks)."""

    head: int
    from_block: int | None
    to_block: int | None
    transfers: int = 0
    enqueued: int = 0
    too_old: int = 0
    api_calls: int = 0

    @property
    def lag(self) -> int:
        """Blocks between the chain head and the checkpoint after this cycle."""
        return self.head - (self.to_block if self.to_block is not None else self.head)


class Scanner:
    """Reads confirmed blocks of one chain; the number of API calls per cycle does not depend on the watched set."""

    def __init__(self, store: Store, client: EtherscanClient, tokens: Sequence[Token], *, confirmations: int,
                 max_age_days: int, on_enqueued: Callable[[], None] = lambda: None,
                 max_blocks_per_cycle: int = MAX_BLOCKS_PER_CYCLE) -> None:
        self.store = store
        self.client = client
        self.tokens = tuple(tokens)
        self.chain_id = client.chain_id
        self.confirmations = confirmations
        self.max_age_seconds = max_age_days * 86400
        self.on_enqueued = on_enqueued
        self.max_blocks_per_cycle = max_blocks_per_cycle
        self.last_report: trio_util.AsyncValue[CycleReport | None] = trio_util.AsyncValue(None)
        self.cycles = trio_util.AsyncValue(0)   # completed cycles, successful or not
        self.failed_cycles = 0

    async def run(self, interval: float, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Scan every ``interval`` seconds (drift-free); API faults are logged and the range is retried next cycle."""
        task_status.started()
        async for _ in trio_util.periodic(interval):
            pause = 0.0
            try:
                await self.cycle()
            except ChainApiError as exc:
                self.failed_cycles += 1
                if isinstance(exc, DailyLimitReached):
                    pause = DAILY_LIMIT_PAUSE
                    log.error("Etherscan daily quota used up; scanning pauses %.0f s (nothing is skipped)", pause)
                elif isinstance(exc, InvalidApiKey):
                    pause = KEY_REJECTED_PAUSE
                    log.error("Etherscan rejected ETHERSCAN_API_KEY (%s); retrying in %.0f s", exc, pause)
                else:
                    log.warning("scan cycle failed, range kept for next cycle: %s: %s", type(exc).__name__, exc)
            self.cycles.value += 1
            await trio.sleep(pause)

    async def cycle(self) -> CycleReport:
        """One scan step. Raises ChainApiError without advancing anything when any read fails."""
        calls_before = self.client.calls
        head = await self.client.block_number()
        safe = head - self.confirmations
        checkpoint = await self.store.get_checkpoint(self.chain_id)
        if checkpoint is None:
            await self.store.commit_scan(self.chain_id, None, safe, lambda watched: ())
            log.info("chain %d: starting at block %d (head %d)", self.chain_id, safe, head)
            return self._report(CycleReport(head, None, safe, api_calls=self.client.calls - calls_before))
        if safe <= checkpoint:
            return self._report(CycleReport(head, None, checkpoint, api_calls=self.client.calls - calls_before))
        start, end = checkpoint + 1, min(safe, checkpoint + self.max_blocks_per_cycle)
        transfers = await self._fetch(start, end)
        min_time = int(time.time()) - self.max_age_seconds
        outcome: list[MatchResult] = []

        def plan(watched):  # runs inside the store's transaction
            outcome.append(match_transfers(transfers, watched, min_time))
            return outcome[0].deliveries

        enqueued = await self.store.commit_scan(self.chain_id, checkpoint, end, plan)
        report = CycleReport(head, start, end, len(transfers), enqueued, outcome[0].too_old,
                             self.client.calls - calls_before)
        if enqueued:
            self.on_enqueued()
        if report.too_old:
            log.info("chain %d: skipped %d transfers older than the age limit", self.chain_id, report.too_old)
        log.log(logging.INFO if enqueued or report.lag > self.max_blocks_per_cycle else logging.DEBUG,
                "chain %d: scanned %d-%d (%d transfers, %d notifications, %d calls, lag %d blocks)",
                self.chain_id, start, end, len(transfers), enqueued, report.api_calls, report.lag)
        return self._report(report)

    async def _fetch(self, start: int, end: int) -> list[Transfer]:
        """Transfer logs of every token in [start, end], fetched concurrently (the client's limiter bounds them)."""
        results: dict[str, list[Transfer]] = {}

        async def one(token: Token) -> None:
            results[token.contract] = await self.client.transfer_logs(token.contract, start, end)

        try:
            async with trio.open_nursery() as nursery:
                for token in self.tokens:
                    nursery.start_soon(one, token)
        except ExceptionGroup as group:
            api_errors, others = group.split(ChainApiError)
            if others is not None or api_errors is None:
                raise
            raise api_errors.exceptions[0] from None
        return [t for token in self.tokens for t in results[token.contract]]

    def _report(self, report: CycleReport) -> CycleReport:
        self.last_report.value = report
        return report
