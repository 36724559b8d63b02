"""Notification latency: time from a block reaching its confirmations to the message arriving at (fake) Telegram.

Runs the real service against the in-process fakes over loopback HTTP, with the free-plan Etherscan limit (3/s).
Usage: python scripts/measure_latency.py [--interval 2] [--samples 10] [--watched 1000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import trio

from usdt_trio.app import run_service
from usdt_trio.config import Settings
from usdt_trio.store.db import Watch
from usdt_trio.testing.chain import SimChain
from usdt_trio.testing.fake_etherscan import FakeEtherscan
from usdt_trio.testing.fake_telegram import FakeTelegram
from usdt_trio.testing.http_server import serve_http

TOKEN = "1:measure"
KEY = "measure-key"
USER = 77
WALLET = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
SENDER = "0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb"


async def measure(interval: float, samples: int, watched: int) -> None:
    chain = SimChain(block_time=12, start_time=int(time.time()))
    etherscan = FakeEtherscan(chain, api_keys=[KEY])
    telegram = FakeTelegram(TOKEN)
    rng = random.Random(3)
    with tempfile.TemporaryDirectory() as tmp:
        async with trio.open_nursery() as nursery:
            eth_url = await nursery.start(serve_http, etherscan.handle)
            tg_url = await nursery.start(serve_http, telegram.handle)
            settings = Settings(_env_file=None, TELEGRAM_BOT_TOKEN=TOKEN, ETHERSCAN_API_KEY=KEY,
                                ETHERSCAN_BASE_URL=f"{eth_url}/v2/api", TELEGRAM_API_URL=tg_url,
                                DB_PATH=Path(tmp) / "db.sqlite3", CHECK_INTERVAL_SECONDS=interval, CONFIRMATIONS=0)
            service = await nursery.start(partial(run_service, settings, handle_signals=False))
            telegram.user_sends(USER, f"/add {WALLET}")
            with trio.fail_after(10):
                await telegram.wait_for_messages(USER, 1)
            for i in range(watched - 1):
                await service.store.upsert_chat(100_000 + i, None, None)
                await service.store.add_watch(Watch(100_000 + i, 1, f"0x{rng.getrandbits(160):040x}", None,
                                                    chain.head), 10)
            latencies, calls = [], []
            for n in range(samples):
                await trio.sleep(rng.uniform(0, interval))  # land anywhere in the scanner's period
                chain.add_noise(rng)
                chain.transfer("USDT", SENDER, WALLET, 1_000_000 * (n + 1))
                chain.mine()
                mined = trio.current_time()
                with trio.fail_after(interval + 30):
                    await telegram.wait_for_messages(USER, n + 2)
                latencies.append(trio.current_time() - mined)
                calls.append(service.scanner.last_report.value.api_calls)
            nursery.cancel_scope.cancel()
    print(f"watched addresses: {watched}, CHECK_INTERVAL_SECONDS={interval}, CONFIRMATIONS=0, samples={samples}")
    print(f"latency block→Telegram: min {min(latencies):.2f}s  median {statistics.median(latencies):.2f}s  "
          f"max {max(latencies):.2f}s  (bound: interval + processing)")
    print(f"Etherscan calls per cycle: {sorted(set(calls))}; rate-limit rejections by the fake: {etherscan.rate_limited}")
    print(f"Telegram 429s: {telegram.rejected_429}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--watched", type=int, default=1000)
    args = parser.parse_args()
    trio.run(measure, args.interval, args.samples, args.watched)


if __name__ == "__main__":
    main()
