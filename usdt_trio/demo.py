"""`usdt-trio demo`: the real service against a simulated chain, fake Etherscan and fake Telegram, on loopback."""

from __future__ import annotations

import html
import logging
import re
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import TextIO

import trio

from .app import run_service
from .chain.addresses import to_checksum
from .config import Settings
from .testing.chain import SimChain
from .testing.fake_etherscan import FakeEtherscan
from .testing.fake_telegram import FakeTelegram
from .testing.http_server import serve_http

__all__ = ["run_demo"]

DEMO_TOKEN = "123456789:DEMO-token-not-a-real-one"
DEMO_KEY = "demo-key"
USER = 424242
SAVINGS = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
TRADING = "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"
EXCHANGE = "0x28c6c06298d514db089934071355e5743bf21d60"
FRIEND = "0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb"
STEP_TIMEOUT = 15.0


class Conversation:
    """Drives the simulated user and prints what they would see."""

    def __init__(self, telegram: FakeTelegram, chain: SimChain, out: TextIO) -> None:
        self.telegram = telegram
        self.chain = chain
        self.out = out
        self.seen = 0
        self.started = time.monotonic()

    def say(self, prefix: str, text: str) -> None:
        lines = text.splitlines() or [""]
        print(f"{prefix} {lines[0]}", file=self.out)
        for line in lines[1:]:
            print(f"{' ' * len(prefix)} {line}", file=self.out)
        self.out.flush()

    async def bot_replies(self, count: int = 1) -> None:
        with trio.fail_after(STEP_TIMEOUT):
            messages = await self.telegram.wait_for_messages(USER, self.seen + count)
        for message in messages[self.seen:self.seen + count]:
            links = re.findall(r'href="([^"]+)"', message.html)
            self.say("🤖 bot:", message.text + "".join(f"\n  ↳ {html.unescape(url)}" for url in links))
            print(file=self.out)
        self.seen += count

    async def user(self, text: str, replies: int = 1) -> None:
        self.say("🧑 you:", text)
        self.telegram.user_sends(USER, text, first_name="Alice")
        await self.bot_replies(replies)

    async def chain_event(self, description: str, transfers: list[tuple[str, str, str, int]],
                          same_tx: bool = False) -> str:
        """Queue transfers for the next block; returns the transaction hash (of the last transfer)."""
        tx = self.chain.new_tx_hash() if same_tx else None
        for token, sender, recipient, value in transfers:
            tx = tx if same_tx else self.chain.new_tx_hash()
            self.chain.transfer(token, sender, recipient, value, tx_hash=tx)
        self.say("⛓  chain:", description)
        print(file=self.out)
        return tx or ""

    async def reorg(self, tx_hash: str, description: str) -> None:
        """Replace every block since the one holding ``tx_hash`` (the transaction is not mined again)."""
        block = next(t.block_number for t in self.chain.transfers(0, self.chain.head) if t.tx_hash == tx_hash)
        self.chain.reorg(self.chain.head - block + 1, drop=[tx_hash])
        self.say("⛓  chain:", description)
        print(file=self.out)


async def run_demo(out: TextIO = sys.stdout) -> int:
    """Play the scripted conversation; returns the exit code (0)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    chain = SimChain(block_time=1, start_time=int(time.time()))
    etherscan = FakeEtherscan(chain, api_keys=[DEMO_KEY])
    telegram = FakeTelegram(DEMO_TOKEN)
    talk = Conversation(telegram, chain, out)
    print("usdt-trio demo: the real service, talking HTTP to a simulated Ethereum (fake Etherscan API)\n"
          "and a fake Telegram on 127.0.0.1. A block is mined every second; notifications wait for 1 confirmation.\n",
          file=out)
    with tempfile.TemporaryDirectory(prefix="usdt-trio-demo-") as tmp:
        async with trio.open_nursery() as nursery:
            etherscan_url = await nursery.start(serve_http, etherscan.handle)
            telegram_url = await nursery.start(serve_http, telegram.handle)
            await nursery.start(chain.run_miner, 1.0)
            settings = Settings(
                _env_file=None, TELEGRAM_BOT_TOKEN=DEMO_TOKEN, ETHERSCAN_API_KEY=DEMO_KEY,
                ETHERSCAN_BASE_URL=f"{etherscan_url}/v2/api", TELEGRAM_API_URL=telegram_url,
                DB_PATH=Path(tmp) / "demo.sqlite3", CHECK_INTERVAL_SECONDS=1.0, CONFIRMATIONS=1,
                ETHERSCAN_DAILY_QUOTA=10**9)  # a 1 s cycle would spend a real key's day by noon
            service = await nursery.start(partial(run_service, settings, handle_signals=False))

            await talk.user("/start")
            await talk.user(f"/add {to_checksum(SAVINGS)} Savings")
            await talk.user(f"/add {to_checksum(TRADING)} Trading")
            await talk.user("/add 0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")  # one letter's case flipped

            await talk.chain_event("an exchange pays 1,250.50 USDT to Savings",
                                   [("USDT", EXCHANGE, SAVINGS, 1_250_500_000)])
            await talk.bot_replies()
            await talk.chain_event("Trading sends 300 USDC to a friend and 0.000001 USDT to Savings, in one transaction",
                                   [("USDC", TRADING, FRIEND, 300_000_000), ("USDT", TRADING, SAVINGS, 1)],
                                   same_tx=True)
            await talk.bot_replies(2)
            await talk.user("/list")
            await talk.user("/remove Trading")
            await talk.chain_event("a friend pays Trading 42 USDT (no longer watched)", [("USDT", FRIEND, TRADING, 42_000_000)])
            await talk.chain_event("a friend pays Savings 7 USDC", [("USDC", FRIEND, SAVINGS, 7_000_000)])
            await talk.bot_replies()
            tx = await talk.chain_event("someone pays Savings 500 USDT", [("USDT", EXCHANGE, SAVINGS, 500_000_000)])
            await talk.bot_replies()
            await talk.reorg(tx, "a chain reorganisation, deeper than the 1 confirmation waited for, replaces the last "
                                 "blocks; that 500 USDT payment is not in the new ones")
            await talk.bot_replies()
            poisoner = EXCHANGE[:7] + "0badc0ffee0badc0ffee0badc0ffee0bad"[:31] + EXCHANGE[-4:]
            await talk.chain_event("a poisoner sends 0.001 USDT to Savings from a lookalike of the exchange that paid it, "
                                   "and makes a 0 USDT transferFrom out of Savings to the same lookalike",
                                   [("USDT", poisoner, SAVINGS, 1_000), ("USDT", SAVINGS, poisoner, 0)])
            block = chain.head + 1
            with trio.fail_after(STEP_TIMEOUT):
                await service.scanner.last_report.wait_value(
                    lambda r: r is not None and r.to_block is not None and r.to_block >= block)
            print("   (no message: neither is a payment)\n", file=out)
            await talk.user("/spam")

            calls = etherscan.calls
            report = service.scanner.last_report.value
            print(f"Done in {time.monotonic() - talk.started:.1f}s: {len(telegram.sent)} messages sent, "
                  f"{sum(calls.values())} Etherscan calls (the last cycle made {report.api_calls}; with one watched "
                  f"address it read by '{report.strategy or 'idle'}', and a log-scan costs the same for 100,000).",
                  file=out)
            nursery.cancel_scope.cancel()
    return 0
