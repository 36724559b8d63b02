"""The three fakes served together on loopback: what tests, the demo's siblings and the benchmarks start from."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import trio

from .chain import SimChain
from .fake_etherscan import FakeEtherscan
from .fake_telegram import FakeTelegram
from .http_server import serve_http

__all__ = ["Fakes", "serve_fakes"]


@dataclass
class Fakes:
    chain: SimChain
    etherscan: FakeEtherscan
    telegram: FakeTelegram
    etherscan_url: str   # ends in /v2/api, as ETHERSCAN_BASE_URL does
    telegram_url: str


async def serve_fakes(nursery: trio.Nursery, *, api_keys: Iterable[str], token: str, rate_limit: int = 3,
                      chain: SimChain | None = None) -> Fakes:
    """A simulated chain, fake Etherscan (``rate_limit`` calls/s) and fake Telegram, served by tasks in ``nursery``."""
    chain = chain if chain is not None else SimChain(start_time=int(time.time()))
    etherscan = FakeEtherscan(chain, api_keys=list(api_keys), rate_limit=rate_limit)
    telegram = FakeTelegram(token)
    etherscan_url = await nursery.start(serve_http, etherscan.handle)
    telegram_url = await nursery.start(serve_http, telegram.handle)
    return Fakes(chain, etherscan, telegram, f"{etherscan_url}/v2/api", telegram_url)
