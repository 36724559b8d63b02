"""Resource hygiene: descriptors stay flat over hundreds of faulty cycles; secrets never reach a log line."""

from __future__ import annotations

import io
import logging
import os
import random

import pytest
import trio

from conftest import API_KEY, TOKEN, USER, converse, running
from usdt_trio.chain import etherscan as etherscan_module
from usdt_trio.logs import setup_logging
from usdt_trio.monitor import scanner as scanner_module

WALLET = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
STRANGER = "0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb"
FAULTS = ["reset", "html_502", "html_503", "invalid_json", "busy", "null_result", "query_timeout", "load_shedding"]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def next_cycle(service) -> None:
    seen = service.scanner.cycles.value
    await service.scanner.cycles.wait_value(lambda n: n > seen)


async def inject_faults_forever(fakes, service, rng: random.Random) -> None:
    """Queue a fault for the fake Etherscan every cycle, and now and then a dropped Telegram connection."""
    while True:
        if fakes.etherscan.fault_remaining() == 0:
            fakes.etherscan.inject(rng.choice(FAULTS))
        if rng.random() < 0.1:
            fakes.telegram.reset_next("sendMessage")
        await next_cycle(service)


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(etherscan_module, "FIRST_RETRY_DELAY", 0.001)


@pytest.mark.usefixtures("fast_retries")
async def test_descriptors_stay_flat_over_hundreds_of_faulty_cycles(fakes, settings_for):
    fakes.etherscan.rate_limit = 100_000
    settings = settings_for(fakes, CHECK_INTERVAL_SECONDS=0.005, ETHERSCAN_RATE_LIMIT=1000)
    async with running(settings) as service, trio.open_nursery() as nursery:
        await converse(fakes.telegram, f"/add {WALLET}")

        async def traffic() -> None:
            rng = random.Random(7)
            while True:
                fakes.chain.transfer("USDT", STRANGER, WALLET, rng.randrange(1, 10**9))
                fakes.chain.mine()
                await next_cycle(service)

        nursery.start_soon(traffic)
        nursery.start_soon(inject_faults_forever, fakes, service, random.Random(11))
        with trio.fail_after(120):
            await service.scanner.cycles.wait_value(lambda n: n >= 10)
            baseline = open_fds()
            await service.scanner.cycles.wait_value(lambda n: n >= 400)
            after = open_fds()
        nursery.cancel_scope.cancel()
        assert service.scanner.failed_cycles > 10, "faults were not exercised"
        print(f"open descriptors: {baseline} after 10 cycles, {after} after {service.scanner.cycles.value} cycles")
        assert after <= baseline + 2, (baseline, after)


async def test_secrets_never_logged_with_verbose_on(fakes, settings_for, monkeypatch):
    monkeypatch.setattr(etherscan_module, "FIRST_RETRY_DELAY", 0.001)
    monkeypatch.setattr(scanner_module, "KEY_REJECTED_PAUSE", 0.0)
    stream = io.StringIO()
    settings = settings_for(fakes, VERBOSE=True)
    handler = setup_logging(True, settings.secrets(), stream=stream)
    try:
        async with running(settings) as service:
            await converse(fakes.telegram, f"/add {WALLET}")
            for fault in ["reset", "html_502", "invalid_json", "rate_limit", "invalid_key", "busy"]:
                fakes.etherscan.inject(fault)
                seen = service.scanner.cycles.value
                with trio.fail_after(15):
                    await service.scanner.cycles.wait_value(lambda n: n > seen + 1)
            fakes.telegram.reset_next("sendMessage")
            fakes.chain.transfer("USDT", STRANGER, WALLET, 1_000_000)
            fakes.chain.mine()
            with trio.fail_after(15):
                await fakes.telegram.wait_until(lambda: any("Incoming" in m.text for m in fakes.telegram.messages_to(USER)))
            logging.getLogger("test").debug("url with secrets %s %s", TOKEN, API_KEY)
    finally:
        logging.getLogger().removeHandler(handler)
    output = stream.getvalue()
    assert output.count("\n") > 10, output
    assert "rejected ETHERSCAN_API_KEY" in output and "retry" in output
    assert TOKEN not in output and API_KEY not in output
    assert TOKEN.split(":")[1] not in output
    assert "url with secrets *** ***" in output
