"""Scanning cost at scale: Etherscan calls, CPU and memory per cycle, and block-to-enqueue latency.

Simulated mainnet traffic (≈ 40 USDT + 15 USDC transfers per 12 s block, plus one payment to a watched address per
block) is read by the real Scanner over loopback HTTP from the fake Etherscan, with 10, 1,000 and 100,000 watched
addresses, once per strategy:

* log-scan   — getLogs per token over the new blocks, matched in memory against the watched set;
* per-address — account/tokentx per watched address (not run at 100,000: it needs one call per address, so its
  calls per cycle are computed, not measured).

Part 1 runs each (size, strategy) in its own process so that peak RSS is that configuration's alone (it includes
the in-process fake server and simulated chain, so it overstates the service). CPU per block for matching is
match_transfers over one block's transfers against the compact WatchedSet. Part 2 runs the real periodic loop at
CHECK_INTERVAL_SECONDS=12 with a block every 12 s, CONFIRMATIONS=2 and the free plan's 3 calls/s, and measures the
time from a block reaching its confirmations to its notification being enqueued.

Usage: python scripts/bench_scan.py [--sizes 10,1000,100000] [--cycles 8] [--latency-blocks 6] [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import trio

from usdt_trio.budget import DailyBudget
from usdt_trio.chain.etherscan import EtherscanClient
from usdt_trio.chain.tokens import TOKENS_BY_CHAIN
from usdt_trio.monitor.matching import match_transfers
from usdt_trio.monitor.scanner import Scanner
from usdt_trio.monitor.strategy import ADDRESSES, LOGS
from usdt_trio.pacing import Pacer
from usdt_trio.store.db import open_store
from usdt_trio.store.watched import WatchedSet
from usdt_trio.testing.chain import SimChain
from usdt_trio.testing.fake_etherscan import FakeEtherscan
from usdt_trio.testing.http_server import serve_http

KEY = "bench-key"
SENDER = "0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb"
FREE_RATE, FREE_DAILY, INTERVAL = 3, 100_000, 12.0


def addresses(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [f"0x{rng.getrandbits(160):040x}" for _ in range(count)]


async def prepared_db(path: Path, watched: list[str], start_block: int) -> None:
    """A database with one chat per watched address, written in bulk (as a big deployment would have)."""
    async with open_store(path):
        pass
    conn = sqlite3.connect(str(path))
    with conn:
        conn.executemany("INSERT INTO chats(chat_id, active, created_at) VALUES (?,1,0)",
                         [(10_000 + i,) for i in range(len(watched))])
        conn.executemany("INSERT INTO watches(chat_id, chain_id, address, start_block, added_at) VALUES (?,1,?,?,0)",
                         [(10_000 + i, a, start_block) for i, a in enumerate(watched)])
    conn.close()


def mainnet_block(chain: SimChain, rng: random.Random, watched: list[str]) -> int:
    chain.add_noise(rng, usdt=40, usdc=15)
    chain.transfer("USDT", SENDER, rng.choice(watched), 1_000_000)
    return chain.mine()


@asynccontextmanager
async def scanner_on_fakes(etherscan: FakeEtherscan, watched: list[str], *, pacer_rate: int,
                           budget: DailyBudget | None = None, **options) -> AsyncIterator[Scanner]:
    """The real Scanner over loopback HTTP against ``etherscan``, with a fresh database watching ``watched``."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "db.sqlite3"
        await prepared_db(db, watched, etherscan.chain.head)
        async with trio.open_nursery() as nursery:
            url = await nursery.start(serve_http, etherscan.handle)
            async with httpx.AsyncClient() as http, open_store(db) as store:
                client = EtherscanClient(http, base_url=f"{url}/v2/api", api_key=KEY, chain_id=1,
                                         limiter=trio.CapacityLimiter(3), pacer=Pacer(pacer_rate), budget=budget)
                yield Scanner(store, client, TOKENS_BY_CHAIN[1], max_age_days=7, budget=budget, **options)
            nursery.cancel_scope.cancel()


# ---- part 1: one configuration in a child process -------------------------------------------------------

async def one_configuration(size: int, strategy: str, cycles: int) -> dict:
    chain = SimChain(block_time=12, start_time=int(time.time()) - 12 * 1000)
    etherscan = FakeEtherscan(chain, api_keys=[KEY], rate_limit=100_000)
    watched = addresses(size)
    rng = random.Random(2)
    async with scanner_on_fakes(etherscan, watched, pacer_rate=100_000, confirmations=0) as scanner:
        scanner.strategy = strategy
        await scanner.cycle()
        calls, cpu, wall, enqueued = [], [], [], 0
        for _ in range(cycles):
            mainnet_block(chain, rng, watched)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            report = await scanner.cycle()
            cpu.append(time.process_time() - cpu0)
            wall.append(time.perf_counter() - wall0)
            calls.append(report.api_calls)
            enqueued += report.enqueued
        block = await scanner.fetch_logs(chain.head, chain.head)   # one block's transfers, as parsed
    compact = WatchedSet()
    tracemalloc.start()
    for i, address in enumerate(watched):
        compact.add(address, 10_000 + i, 0)
    set_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    repeats = 200
    cpu0 = time.process_time()
    for _ in range(repeats):
        match_transfers(block, compact, 0)
    match_ms = (time.process_time() - cpu0) / repeats * 1000
    return {"size": size, "strategy": strategy, "calls": calls, "cycle_cpu_ms": statistics.median(cpu) * 1000,
            "cycle_wall_ms": statistics.median(wall) * 1000, "enqueued": enqueued, "cycles": cycles,
            "match_ms_per_block": match_ms, "transfers_per_block": len(block),
            "watched_set_mb": set_bytes / 1e6, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(size: int, strategy: str, cycles: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(size), strategy, str(cycles)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- part 2: latency with the real loop ------------------------------------------------------------------

async def latency(size: int, blocks: int, block_time: float) -> dict:
    chain = SimChain(block_time=12, start_time=int(time.time()))
    etherscan = FakeEtherscan(chain, api_keys=[KEY], rate_limit=FREE_RATE)
    watched = addresses(size)
    rng = random.Random(3)
    confirmations = 2
    confirmed_at: dict[int, float] = {}   # payment block → when it reached its confirmations
    delays: list[float] = []
    measured = trio.Event()
    async with scanner_on_fakes(etherscan, watched, pacer_rate=FREE_RATE, budget=DailyBudget(FREE_DAILY),
                                confirmations=confirmations, rate=FREE_RATE, interval=block_time) as scanner, \
            trio.open_nursery() as nursery:

        async def watch_reports() -> None:
            async for report in scanner.last_report.eventual_values():
                if report is None or report.to_block is None:
                    continue
                for block in [b for b in confirmed_at if b <= report.to_block]:
                    delays.append(trio.current_time() - confirmed_at.pop(block))
                if len(delays) >= blocks:
                    measured.set()

        await nursery.start(scanner.run, block_time)
        nursery.start_soon(watch_reports)
        await trio.sleep(rng.uniform(0, block_time))   # blocks and cycles out of phase
        for _ in range(blocks + confirmations):
            head = mainnet_block(chain, rng, watched)
            if head - confirmations > chain.start_block:
                confirmed_at[head - confirmations] = trio.current_time()
            await trio.sleep(block_time * rng.uniform(0.75, 1.25))   # cycles and blocks drift apart
        with trio.move_on_after(block_time * 2):
            await measured.wait()
        nursery.cancel_scope.cancel()
    return {"size": size, "delays": delays, "rate_limited": etherscan.rate_limited}


# ---- report ----------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,1000,100000")
    parser.add_argument("--cycles", type=int, default=8)
    parser.add_argument("--latency-blocks", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="3 s blocks and cycles for the latency part")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        size, strategy, cycles = args.child
        print(json.dumps(trio.run(one_configuration, int(size), strategy, int(cycles))))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"Simulated mainnet: 40 USDT + 15 USDC transfers per block, one block per cycle, {args.cycles} cycles.")
    print(f"{'watched':>8} {'strategy':>9} {'calls/cycle':>12} {'cycle CPU':>10} {'match CPU/block':>16} "
          f"{'watched set':>12} {'peak RSS':>9}")
    results = {}
    for size in sizes:
        for strategy in (LOGS, ADDRESSES):
            if strategy == ADDRESSES and size > 1000:
                print(f"{size:>8} {strategy:>9} {'~' + format(size + 2, ','):>12} {'(computed: one tokentx per address; not run)':>40}")
                continue
            r = run_child(size, strategy, args.cycles)
            results[(size, strategy)] = r
            calls = f"{statistics.mean(r['calls']):.1f} ({min(r['calls'])}-{max(r['calls'])})"
            print(f"{size:>8} {strategy:>9} {calls:>12} {r['cycle_cpu_ms']:>8.1f}ms {r['match_ms_per_block']:>14.3f}ms "
                  f"{r['watched_set_mb']:>10.1f}MB {r['peak_rss_mb']:>7.0f}MB")
    print("(cycle CPU and peak RSS include the in-process fake Etherscan and simulated chain)")

    per_cycle_budget = FREE_RATE * INTERVAL
    daily_per_cycle = FREE_DAILY / (86_400 / INTERVAL)
    logs_calls = max((max(r["calls"]) for (s, st), r in results.items() if st == LOGS), default=4)
    per_address = [(s, r) for (s, st), r in results.items() if st == ADDRESSES and s >= 10]
    cpa = max(((statistics.mean(r["calls"]) - 2) / s for s, r in per_address), default=1.0)
    print()
    print("Largest watched set one free key (3 calls/s, 100,000/day) sustains at a 12 s cycle:")
    print(f"  log-scan: {logs_calls} calls per cycle whatever the size → {logs_calls * 7200:,} a day; not limited by "
          f"the key (memory ≈ {results.get((max(sizes), LOGS), {}).get('watched_set_mb', 0) / max(sizes) * 1e6:.0f} "
          f"bytes per watched address)")
    rate_bound = int((per_cycle_budget - 2) / cpa)
    daily_bound = int((daily_per_cycle - 2) / cpa)
    print(f"  per-address: 2 + {cpa:.2f} calls per address per cycle → rate bound {rate_bound}, daily bound "
          f"{daily_bound} → {min(rate_bound, daily_bound)} addresses")
    target = results.get((100_000, LOGS))
    if target:
        print()
        print(f"Targets at 100,000 watched, log-scan: calls/cycle ≤ 4: {max(target['calls'])} "
              f"{'PASS' if max(target['calls']) <= 4 else 'MISS'}; matching ≤ 20 ms CPU per block: "
              f"{target['match_ms_per_block']:.2f} ms {'PASS' if target['match_ms_per_block'] <= 20 else 'MISS'}; "
              f"peak RSS ≤ 200 MB: {target['peak_rss_mb']:.0f} MB {'PASS' if target['peak_rss_mb'] <= 200 else 'MISS'}")

    block_time = 3.0 if args.quick else INTERVAL
    print()
    print(f"Latency (real loop, a block every {block_time:g} s, CHECK_INTERVAL_SECONDS={block_time:g}, CONFIRMATIONS=2, "
          f"free-plan 3 calls/s): from a block reaching its confirmations to its notification enqueued")
    for size in (min(sizes), max(sizes)):
        r = trio.run(latency, size, args.latency_blocks, block_time)
        d = r["delays"]
        if not d:
            print(f"  {size:>7} watched: no samples")
            continue
        verdict = "PASS" if max(d) <= block_time + 1 else "MISS"
        print(f"  {size:>7} watched: {len(d)} samples, min {min(d):.2f} s, median {statistics.median(d):.2f} s, "
              f"max {max(d):.2f} s ≈ {max(d) / block_time:.2f} blocks; ≤ interval + 1 s: {verdict}; "
              f"rate-limit rejections {r['rate_limited']}")


if __name__ == "__main__":
    main()
