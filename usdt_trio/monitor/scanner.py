"""The periodic scanner: head → confirmed range → transfers → match → outbox + checkpoint (one transaction).

Each cycle serves the newest confirmed blocks first (at most ``live_span`` of them); older unread blocks become a
catch-up gap read in budgeted chunks after the live part. Each range is read with whichever strategy needs fewer
calls (see strategy.py). The hash of every checkpoint block is remembered; when it changes, a reorganisation is
settled: re-included transfers keep their one announcement, removed ones get a correction.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from functools import partial
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import trio
import trio_util

from ..budget import DailyBudget
from ..chain.address_scan import BlockLogs, address_transfers
from ..chain.etherscan import BlockHeader, EtherscanClient
from ..chain.models import Transfer
from ..chain.tokens import MIN_SECONDS_PER_BLOCK, Token, token_for
from ..errors import ApiUnavailable, ChainApiError, DailyLimitReached, InvalidApiKey
from ..store.db import Gap, Store
from ..store.reorgs import ReorgOutcome
from .matching import MatchResult, match_transfers
from .screening import Screener
from .spam import SpamSettings
from .strategy import ADDRESSES, LOGS, CallEstimator

__all__ = ["Scanner", "CycleReport", "LIVE_SPAN"]

log = logging.getLogger(__name__)
LIVE_SPAN = 64               # newest blocks read in the live part of a cycle; older ones become a catch-up gap
DAILY_LIMIT_PAUSE = 900.0    # seconds to wait after "Max daily rate limit reached"
KEY_REJECTED_PAUSE = 60.0    # seconds to wait after "Invalid API Key" (the operator must fix the configuration)
CATCH_UP_SHARE = 0.5         # share of a cycle's calls (rate × interval) catch-up may use
CONTRACT_LOOKUPS_PER_CYCLE = 5   # senders checked with getcontractcreation per cycle: one call
BUDGET_KEY = "etherscan.calls_today"


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
    strategy: str | None = None
    backlog: int = 0                       # blocks waiting in catch-up gaps after this cycle
    catch_up: str | None = None            # what the catch-up part did, in words
    reorg: ReorgOutcome = field(default_factory=ReorgOutcome)
    suppressed: int = 0                    # suspicious transfers recorded silently (live part)

    @property
    def lag(self) -> int:
        """Blocks between the chain head and the live checkpoint after this cycle."""
        return self.head - (self.to_block if self.to_block is not None else self.head)


class Scanner:
    """Reads confirmed blocks of one chain within the API's per-second and daily limits."""

    def __init__(self, store: Store, client: EtherscanClient, tokens: Sequence[Token], *, confirmations: int,
                 max_age_days: int, on_enqueued: Callable[[], None] = lambda: None,
                 budget: DailyBudget | None = None, rate: float = 3.0, interval: float = 12.0,
                 live_span: int = LIVE_SPAN, spam: SpamSettings | None = None,
                 contract_cache_size: int = 1000) -> None:
        self.store = store
        self.client = client
        self.tokens = tuple(tokens)
        self.contracts = frozenset(t.contract for t in self.tokens)
        self.chain_id = client.chain_id
        self.confirmations = confirmations
        self.max_age_seconds = max_age_days * 86400
        self.on_enqueued = on_enqueued
        self.budget = budget
        self.rate = rate
        self.interval = interval
        self.live_span = live_span
        self.estimator = CallEstimator(self.contracts)
        self.screener = Screener(spam)
        # sender → creation block (None: not a contract), bounded LRU
        self._creations: OrderedDict[str, int | None] = OrderedDict()
        self.contract_cache_size = contract_cache_size
        self.strategy: str | None = None   # force LOGS or ADDRESSES (benchmarks, tests); None = cheapest
        self.last_report: trio_util.AsyncValue[CycleReport | None] = trio_util.AsyncValue(None)
        self.cycles = trio_util.AsyncValue(0)   # completed cycles, successful or not
        self.failed_cycles = 0
        self.backlog = trio_util.AsyncValue(0)  # blocks waiting for catch-up (exposed for health and logs)
        self._live_calls = 0.0                  # moving average of a live cycle's calls, for the daily budget
        self._slowed = False

    # ---- the loop ---------------------------------------------------------------------------------------
    async def run(self, interval: float, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Scan every ``interval`` seconds (drift-free); API faults are logged and the range is retried next cycle."""
        self.interval = interval
        await self._restore_budget()
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
            await self._save_budget()
            await trio.sleep(max(pause, self._budget_delay(interval)))

    def _budget_delay(self, interval: float) -> float:
        """Extra seconds before the next cycle so that today's quota lasts until it resets."""
        if self.budget is None:
            return 0.0
        wanted = self.budget.interval_for(self._live_calls, interval)
        slowed = wanted > interval * 1.01
        if slowed != self._slowed:
            self._slowed = slowed
            if slowed:
                log.warning("Etherscan budget: %d of %d calls used today; at %.1f calls per cycle the rest of the "
                            "day allows one cycle every %.1f s instead of %.1f s, so cycles are slowed until the "
                            "quota resets at 00:00 UTC", self.budget.used, self.budget.quota, self._live_calls,
                            wanted, interval)
            else:
                log.info("Etherscan budget: back to one cycle every %.1f s", interval)
        return wanted - interval if slowed else 0.0

    async def _restore_budget(self) -> None:
        if self.budget is None:
            return
        saved = await self.store.get_value(BUDGET_KEY)
        if saved and saved.count(":") == 1 and all(part.isdigit() for part in saved.split(":")):
            day, used = map(int, saved.split(":"))
            self.budget.restore(day, used)

    async def _save_budget(self) -> None:
        if self.budget is not None:
            with trio.CancelScope(shield=True):
                await self.store.set_value(BUDGET_KEY, f"{self.budget.day}:{self.budget.used}")

    # ---- one cycle --------------------------------------------------------------------------------------
    async def cycle(self) -> CycleReport:
        """One scan step. A read failing before the commit advances nothing (the range is read again next cycle);
        the reorganisation check after it is repeated next cycle when it fails."""
        calls_before = self.client.calls
        head = await self.client.block_number()
        safe = head - self.confirmations
        checkpoint = await self.store.get_checkpoint(self.chain_id)
        if checkpoint is None:
            header = await self.client.block_header(safe)
            await self.store.commit_scan(self.chain_id, None, safe, lambda watched: (),
                                         block_hash=(safe, header.hash))
            log.info("chain %d: starting at block %d (head %d)", self.chain_id, safe, head)
            return self._report(CycleReport(head, None, safe, api_calls=self.client.calls - calls_before))
        if safe <= checkpoint:   # no new block: is the checkpoint still on the chain?
            header = await self.client.block_header(checkpoint)
            fork = await self._find_fork(checkpoint, header)
            outcome = ReorgOutcome() if fork is None else await self._settle_reorg(fork, checkpoint, header)
            report = CycleReport(head, None, checkpoint, api_calls=self.client.calls - calls_before, reorg=outcome)
            return self._report(await self._with_catch_up(report, header))

        start, end, new_gap = checkpoint + 1, safe, None
        if end - start + 1 > self.live_span:
            new_gap = (start, end - self.live_span)
            start = end - self.live_span + 1
        strategy, transfers = await self._read(start, end)
        screen = partial(self.screener.screen, created=await self._sender_contracts(transfers))
        result = self._matcher(transfers)
        seen_hash = next((t.block_hash for t in transfers if t.block_number == end and t.block_hash), None)
        enqueued = await self.store.commit_scan(self.chain_id, checkpoint, end, result.plan,
                                                block_hash=(end, seen_hash) if seen_hash else None,
                                                new_gap=new_gap, fetched=transfers, screen=screen)
        suppressed = self.store.last_suppressed
        if enqueued or self.store.last_reorg.reinstated:
            self.on_enqueued()
        if suppressed:
            log.info("chain %d: %d suspicious transfers recorded without notification (see /spam)", self.chain_id,
                     suppressed)
        if new_gap:
            log.warning("chain %d: %d blocks behind; reading the newest %d now and blocks %d-%d in the background",
                        self.chain_id, end - checkpoint, self.live_span, *new_gap)
        live_calls = self.client.calls - calls_before
        # the reorganisation check comes after the commit, off the path of the notifications
        header = await self.client.block_header(end)
        fork = await self._find_fork(checkpoint, header)
        if fork is None and seen_hash not in (None, header.hash):
            fork = checkpoint   # block `end` was replaced while it was being read
        if fork is None:
            await self.store.remember_block(self.chain_id, end, header.hash)
            outcome = self.store.last_reorg
        else:
            outcome = await self._settle_reorg(fork, end, header)
        self._live_calls = live_calls if not self._live_calls else 0.8 * self._live_calls + 0.2 * live_calls
        report = CycleReport(head, start, end, len(transfers), enqueued, result.too_old,
                             self.client.calls - calls_before, strategy, reorg=outcome, suppressed=suppressed)
        report = await self._with_catch_up(report, header)
        if report.too_old:
            log.info("chain %d: skipped %d transfers older than the age limit", self.chain_id, report.too_old)
        log.log(logging.INFO if enqueued or report.backlog else logging.DEBUG,
                "chain %d: scanned %d-%d by %s (%d transfers, %d notifications, %d calls, lag %d blocks, "
                "backlog %d blocks)", self.chain_id, start, end, strategy, len(transfers), enqueued,
                report.api_calls, report.lag, report.backlog)
        return self._report(report)

    async def _sender_contracts(self, transfers: Sequence[Transfer]) -> dict[str, int | None]:
        """Creation blocks of the senders of small incoming transfers to watched addresses (the brand-new-contract
        filter), from a bounded cache, else one getcontractcreation call for at most 5 new senders per cycle.

        Only transfers under one token are looked into: poisoners send dust, and real payments must cost nothing."""
        small = [t for t in transfers
                 if (token := token_for(t.chain_id, t.contract)) is not None and t.value < 10 ** token.decimals]
        if not small:
            return {}
        watched = await self.store.watched_among(self.chain_id, {t.recipient for t in small})
        senders = list(dict.fromkeys(t.sender for t in small if t.recipient in watched))
        wanted = [a for a in senders if a not in self._creations][:CONTRACT_LOOKUPS_PER_CYCLE]
        if wanted:
            try:
                found = await self.client.contract_creations(wanted)
            except ChainApiError as exc:
                log.debug("contract creation lookup failed (%s); scoring without it", exc)
                found = None
            if found is not None:
                for address in wanted:
                    self._creations[address] = found.get(address)
                while len(self._creations) > self.contract_cache_size:
                    self._creations.popitem(last=False)
        for address in senders:
            if address in self._creations:
                self._creations.move_to_end(address)
        return {a: self._creations[a] for a in senders if self._creations.get(a) is not None}

    async def _settle_reorg(self, fork: int, checkpoint: int, header: BlockHeader) -> ReorgOutcome:
        """Read (fork, checkpoint] again, completely, and reconcile what was stored for it in one commit."""
        transfers = await self.fetch_logs(fork + 1, checkpoint)
        if any(t.block_number == checkpoint and t.block_hash not in (None, header.hash) for t in transfers):
            raise ApiUnavailable(f"block {checkpoint} changed while it was read (reorganisation in progress)")
        result = self._matcher(transfers)
        enqueued = await self.store.commit_scan(self.chain_id, checkpoint, checkpoint, result.plan,
                                                block_hash=(checkpoint, header.hash), fetched=transfers,
                                                replaced=(fork + 1, checkpoint), screen=self.screener.screen)
        outcome = self.store.last_reorg
        log.warning("chain %d: reorganisation replaced blocks %d-%d: %d announced transfers found again, "
                    "%d gone (%d corrections queued, %d unsent notifications withdrawn), %d new notifications",
                    self.chain_id, fork + 1, checkpoint, outcome.relocated, outcome.removed, outcome.corrections,
                    outcome.cancelled, enqueued)
        if enqueued or outcome.corrections or outcome.reinstated:
            self.on_enqueued()
        return outcome

    async def _find_fork(self, checkpoint: int, header: BlockHeader) -> int | None:
        """None when the remembered checkpoint block is still on the chain, else the last block that is."""
        remembered = await self.store.block_hashes(self.chain_id, checkpoint)
        if not remembered or remembered[0][0] != checkpoint:
            return None   # nothing to compare with (first cycle after an upgrade)
        if header.number == checkpoint:
            current = header.hash
        elif header.number == checkpoint + 1:
            current = header.parent_hash
        else:
            current = (await self.client.block_header(checkpoint)).hash
        if current == remembered[0][1]:
            return None
        for number, block_hash in remembered[1:]:
            if (await self.client.block_header(number)).hash == block_hash:
                return number
        log.error("chain %d: reorganisation deeper than the %d remembered blocks; rereading from block %d",
                  self.chain_id, len(remembered), remembered[-1][0])
        return remembered[-1][0] - 1

    # ---- reading ----------------------------------------------------------------------------------------
    async def _read(self, start: int, end: int) -> tuple[str, list[Transfer]]:
        """Every transfer in [start, end] that matters, by the cheaper strategy."""
        strategy, addresses = await self._choose(end - start + 1, end)
        if strategy == LOGS:
            return LOGS, await self.fetch_logs(start, end)
        return ADDRESSES, await self.fetch_by_address(addresses, start, end)

    async def _choose(self, blocks: int, before: int, *, after: str = "") -> tuple[str, list[str]]:
        """The strategy for ``blocks`` blocks, and for ADDRESSES the watched addresses (above ``after``) to read."""
        if self.strategy == LOGS:
            return LOGS, []
        # listing 100,000 addresses costs more than the choice is worth: stop as soon as logs are sure to win
        limit = None if self.strategy == ADDRESSES else self.estimator.max_addresses(blocks)
        addresses = await self.store.watched_addresses(self.chain_id, before, limit, after)
        if addresses is None:
            return LOGS, []
        return self.strategy or self.estimator.choose(blocks, len(addresses)), addresses

    async def fetch_logs(self, start: int, end: int) -> list[Transfer]:
        """Log-scan: every Transfer log of every token in [start, end] (calls do not depend on the watched set)."""
        results: dict[str, list[Transfer]] = {}

        async def one(token: Token) -> None:
            results[token.contract] = await self.client.transfer_logs(token.contract, start, end)

        await self._together(one, self.tokens)
        for contract, found in results.items():
            self.estimator.observe_logs(contract, end - start + 1, len(found))
        return sorted((t for found in results.values() for t in found), key=lambda t: (t.block_number, t.log_index))

    async def fetch_by_address(self, addresses: Sequence[str], start: int, end: int) -> list[Transfer]:
        """Per-address: tokentx of each address in [start, end], merged in (block, log index) order."""
        found: dict[tuple[int, str, int], Transfer] = {}
        block_logs: BlockLogs = {}
        calls = self.client.calls

        async def one(address: str) -> None:
            for t in await address_transfers(self.client, address, start, end, self.contracts, block_logs):
                found[t.key] = t

        await self._together(one, addresses)
        self.estimator.observe_addresses(len(addresses), self.client.calls - calls)
        return sorted(found.values(), key=lambda t: (t.block_number, t.log_index))

    @staticmethod
    async def _together(fn, items) -> None:
        """Run fn(item) for every item concurrently (the client's limiter bounds requests); first API error wins."""
        try:
            async with trio.open_nursery() as nursery:
                for item in items:
                    nursery.start_soon(fn, item)
        except ExceptionGroup as group:
            api_errors, others = group.split(ChainApiError)
            if others is not None or api_errors is None:
                raise
            first = api_errors.exceptions[0]
            while isinstance(first, ExceptionGroup):
                first = first.exceptions[0]
            raise first from None

    def _matcher(self, transfers: Sequence[Transfer]) -> _Matcher:
        return _Matcher(transfers, int(time.time()) - self.max_age_seconds)

    # ---- catch-up ---------------------------------------------------------------------------------------
    async def _with_catch_up(self, report: CycleReport, header: BlockHeader | None) -> CycleReport:
        """Read one budgeted chunk of the oldest gap, if any; the report gains what it did."""
        calls_before = self.client.calls
        gaps = await self.store.gaps(self.chain_id)
        done = None
        enqueued = too_old = 0
        if gaps:
            done, enqueued, too_old = await self._catch_up_step(gaps[0], header)
            gaps = await self.store.gaps(self.chain_id)
        backlog = sum(g.blocks for g in gaps)
        self.backlog.value = backlog
        if enqueued:
            self.on_enqueued()
        return CycleReport(report.head, report.from_block, report.to_block, report.transfers,
                           report.enqueued + enqueued, report.too_old + too_old,
                           report.api_calls + self.client.calls - calls_before, report.strategy, backlog, done,
                           report.reorg)

    def _catch_up_allowance(self) -> int:
        calls = int(self.rate * self.interval * CATCH_UP_SHARE) - round(self._live_calls)
        if self.budget is not None:
            calls = min(calls, self.budget.spare(self._live_calls, self.interval))
        return calls

    async def _catch_up_step(self, gap: Gap, header: BlockHeader | None) -> tuple[str, int, int]:
        """Skip what is surely too old, else read one chunk; returns (what was done, enqueued, too old)."""
        if header is not None:
            # a block is surely older than the age limit when even the fastest block pace puts it there
            min_time = int(time.time()) - self.max_age_seconds
            too_old_to = header.number - (header.timestamp - min_time) // MIN_SECONDS_PER_BLOCK - 1
            if too_old_to >= gap.from_block:
                skipped_to = min(too_old_to, gap.to_block)
                await self.store.commit_gap(gap, lambda watched: (), skipped_to=skipped_to)
                log.info("chain %d: catch-up skips blocks %d-%d unread: older than %d days", self.chain_id,
                         gap.from_block, skipped_to, self.max_age_seconds // 86400)
                return f"skipped {gap.from_block}-{skipped_to} (too old)", 0, 0
        allowance = self._catch_up_allowance()
        if allowance < 1:
            log.info("chain %d: catch-up waits: no API calls to spare this cycle (daily budget)", self.chain_id)
            return "waiting for budget", 0, 0
        strategy, addresses = await self._choose(gap.blocks, gap.to_block, after=gap.address_cursor)
        if strategy == ADDRESSES:
            batch = addresses[:self.estimator.addresses_for(allowance)]
            transfers = await self.fetch_by_address(batch, gap.from_block, gap.to_block)
            last = len(batch) == len(addresses)
            result = self._matcher(transfers)
            enqueued = await self.store.commit_gap(gap, result.plan, done_to=gap.to_block if last else None,
                                                   address_cursor=None if last else batch[-1],
                                                   screen=self.screener.screen)
            what = f"{gap.from_block}-{gap.to_block} for {len(batch)} of {len(addresses)} addresses"
        else:
            blocks = min(gap.blocks, self.estimator.blocks_for(allowance))
            to_block = gap.from_block + blocks - 1
            transfers = await self.fetch_logs(gap.from_block, to_block)
            result = self._matcher(transfers)
            enqueued = await self.store.commit_gap(gap, result.plan, done_to=to_block, screen=self.screener.screen)
            what = f"{gap.from_block}-{to_block} by logs"
        log.info("chain %d: caught up %s (%d transfers, %d notifications)", self.chain_id, what, len(transfers),
                 enqueued)
        return what, enqueued, result.too_old

    def _report(self, report: CycleReport) -> CycleReport:
        self.last_report.value = report
        return report


class _Matcher:
    """The plan callback for a commit: matches inside the transaction, remembers how many were too old."""

    def __init__(self, transfers: Sequence[Transfer], min_time: int) -> None:
        self.transfers = transfers
        self.min_time = min_time
        self.too_old = 0

    def plan(self, watched):
        result: MatchResult = match_transfers(self.transfers, watched, self.min_time)
        self.too_old = result.too_old
        return result.deliveries
