"""Lifecycle: SIGTERM-to-exit time of `usdt-trio run`, and open descriptors over many faulty scan cycles.

(a) Shutdown: ``--runs`` times (default 20), start ``python -m usdt_trio run`` as a child process (the interpreter
    running this script, so the same virtualenv) against a fresh FakeEtherscan + FakeTelegram served by this
    process over loopback HTTP, with a temporary database, CHECK_INTERVAL_SECONDS=0.2 and CONFIRMATIONS=0. Once the
    service is really running — its getUpdates long poll is pending at the fake Telegram, the scanner has called
    eth_blockNumber, and a /start sent by a simulated user has been answered — wait a random 0-0.3 s (so the signal
    lands at different points of the scan cycle), send SIGTERM, and measure the time until the process has exited
    (trio's Process.wait). Each exit code must be 0. Targets: median <= 0.5 s, max <= 2 s.

(b) Descriptors: the real service in this process (``run_service``, CHECK_INTERVAL_SECONDS=0.01) against the fakes.
    Warm-up (not counted): /add a wallet and deliver one notification while the long poll is pending, so every
    kind of keep-alive connection exists once. Then a transfer to the wallet is mined every cycle and a fault is
    injected into every scan cycle: FakeEtherscan faults (connection reset, HTML 500/502/503/504, invalid JSON,
    "busy", null result, query timeout, load shedding, invalid key, daily limit; every 25th cycle a rate-limit
    answer). One cycle in five repeats its fault RETRIES (4) times, so the request fails for good; the faults the
    client does not retry (invalid key, daily limit, null result, query timeout on a one-block range) fail their
    cycle anyway, so about half the cycles fail. Every 10th cycle also gets a Telegram fault (sendMessage reset
    before or after processing, 502, 429 with retry_after; getUpdates reset).
    ``os.listdir('/proc/self/fd')`` is counted after 10 and after ``--cycles`` (default 1,000) faulty cycles
    (``service.scanner.cycles``); before each count the injection stops and the service runs clean for 6 s (longer
    than httpx's 5 s keep-alive expiry), so the count does not depend on which connection a fault dropped a moment
    earlier. Unsettled totals are also printed every 100 cycles. The fakes' server sides live in this process too,
    so the breakdown names each TCP socket's fake and end. Target: the two counts are equal.
    So that 1,000 faulty cycles take a minute or two, module constants are patched as tests/test_resources.py does:
    the Etherscan client's FIRST_RETRY_DELAY (0.5 s -> 1 ms) and the scanner's pauses after a rejected key or a
    used-up daily quota (60 s / 900 s -> 0). A rate-limit answer still pauses the Etherscan pacer for 1 s, which is
    why it is injected only every 25th cycle. Both parts set ETHERSCAN_DAILY_QUOTA very high, so the scanner's daily
    budget (which slows cycles depending on the time of day) stays out of the figures.

Usage:
    .venv/bin/python scripts/bench_lifecycle.py                    # 20 runs, 1,000 cycles
    .venv/bin/python scripts/bench_lifecycle.py --runs 3 --cycles 100   # quick run
    .venv/bin/python scripts/bench_lifecycle.py --runs 0           # descriptors only (--cycles 0: shutdown only)
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio
import trio_util

from usdt_trio.app import Service, run_service
from usdt_trio.chain import etherscan as etherscan_module
from usdt_trio.config import Settings
from usdt_trio.logs import setup_logging
from usdt_trio.monitor import scanner as scanner_module
from usdt_trio.testing.harness import Fakes, serve_fakes

TOKEN = "1:bench-lifecycle"
KEY = "bench-lifecycle-key"
USER = 4242
WALLET = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
STRANGER = "0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb"
READY_TIMEOUT = 30.0
EXIT_TIMEOUT = 10.0
UNLIMITED_QUOTA = 10**9    # ETHERSCAN_DAILY_QUOTA: the daily budget must not slow fast cycles (time-of-day dependent)
TARGET_MEDIAN = 0.5
TARGET_MAX = 2.0

# one of these per cycle (in one cycle of five for every retry); the pacer-pausing ones only every 25th cycle
ETHERSCAN_FAULTS = ["reset", "html_500", "html_502", "html_503", "html_504", "invalid_json", "busy", "null_result",
                    "query_timeout", "load_shedding", "invalid_key", "daily_limit"]
RATE_LIMIT_FAULTS = ["rate_limit", "rpc_text", "max_rate"]
RATE_LIMIT_EVERY = 25
REPEAT_EVERY = 5        # coprime with len(ETHERSCAN_FAULTS), so every fault is sometimes repeated
TELEGRAM_FAULT_EVERY = 10
TELEGRAM_FAULT_NAMES = ["sendMessage reset", "sendMessage reset after processing", "sendMessage 502",
                        "sendMessage 429", "getUpdates reset"]
SETTLE = 6.0    # seconds of clean cycles before a count: longer than httpx's 5 s keep-alive expiry


async def fakes_on_loopback(nursery: trio.Nursery) -> Fakes:
    """A fresh chain, Etherscan (fast plan) and Telegram, served on loopback by tasks in ``nursery``."""
    return await serve_fakes(nursery, api_keys=[KEY], token=TOKEN, rate_limit=100_000)


# ---------------------------------------------------------------- (a) SIGTERM to exit

@dataclass
class ShutdownRun:
    ready_seconds: float     # process start → running (long poll pending, first scan, /start answered)
    exit_seconds: float      # SIGTERM → process gone
    code: int
    stderr: str


def child_env(fakes: Fakes, db_path: Path) -> dict[str, str]:
    """This environment without any of the service's variables, plus the ones pointing at the fakes."""
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, ETHERSCAN_API_KEY=KEY, ETHERSCAN_BASE_URL=fakes.etherscan_url,
               TELEGRAM_API_URL=fakes.telegram_url, DB_PATH=str(db_path), CHECK_INTERVAL_SECONDS="0.2",
               CONFIRMATIONS="0", ETHERSCAN_RATE_LIMIT="100", ETHERSCAN_DAILY_QUOTA=str(UNLIMITED_QUOTA))
    return env


async def wait_running(fakes: Fakes, process: trio.Process) -> None:
    """Until the child long-polls, has scanned, and answered /start (poll with a deadline: the child is remote)."""
    telegram = fakes.telegram
    with trio.fail_after(READY_TIMEOUT):
        while not (telegram.pending_polls > 0 and fakes.etherscan.calls["proxy.eth_blockNumber"] > 0):
            if process.returncode is not None:
                raise RuntimeError(f"the service exited early with code {process.returncode}")
            await trio.sleep(0.005)
        telegram.user_sends(USER, "/start")
        await telegram.wait_for_messages(USER, 1)
        await telegram.wait_until(lambda: telegram.pending_polls > 0)


async def one_shutdown(workdir: Path, rng: random.Random) -> ShutdownRun:
    workdir.mkdir()
    stderr_path = workdir / "stderr.log"
    async with trio.open_nursery() as nursery:
        fakes = await fakes_on_loopback(nursery)
        with open(stderr_path, "wb") as stderr:
            spawned = trio.current_time()
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "usdt_trio", "run"], env=child_env(fakes, workdir / "db.sqlite3"),
                cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            await wait_running(fakes, process)
            ready = trio.current_time() - spawned
            await trio.sleep(rng.uniform(0.0, 0.3))  # vary where in the scan cycle the signal lands
            process.send_signal(signal.SIGTERM)
            signalled = trio.current_time()
            with trio.fail_after(EXIT_TIMEOUT):
                code = await process.wait()
            elapsed = trio.current_time() - signalled
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        nursery.cancel_scope.cancel()
    return ShutdownRun(ready, elapsed, code, stderr_path.read_text(errors="replace"))


async def bench_shutdown(runs: int) -> list[ShutdownRun]:
    rng = random.Random(5)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-lifecycle-") as tmp:
        for i in range(runs):
            run = await one_shutdown(Path(tmp) / f"run{i:02d}", rng)
            results.append(run)
            print(f"run {i + 1:2d}/{runs}: running after {run.ready_seconds:.2f}s, "
                  f"SIGTERM -> exit {run.code} in {run.exit_seconds:.3f}s", flush=True)
    return results


def report_shutdown(results: list[ShutdownRun]) -> None:
    times = [r.exit_seconds for r in results]
    median, worst = statistics.median(times), max(times)
    bad = [r for r in results if r.code != 0]
    clean = sum("SIGTERM received" in r.stderr and "usdt-trio stopped" in r.stderr and "Traceback" not in r.stderr
                for r in results)
    print()
    print(f"SIGTERM -> exit over {len(results)} runs: median {median:.3f}s, min {min(times):.3f}s, max {worst:.3f}s")
    print(f"start-up to running: median {statistics.median(r.ready_seconds for r in results):.2f}s")
    print(f"exit codes: {dict(collections.Counter(r.code for r in results))}; "
          f"clean shutdown logged (\"SIGTERM received\" ... \"usdt-trio stopped\", no traceback): {clean}/{len(results)}")
    for r in bad[:3]:
        print(f"--- stderr of a run that exited {r.code}:\n{r.stderr[-2000:]}")
    print(f"{verdict(median <= TARGET_MEDIAN)}  median <= {TARGET_MEDIAN} s ({median:.3f}s)")
    print(f"{verdict(worst <= TARGET_MAX)}  max <= {TARGET_MAX} s ({worst:.3f}s)")
    print(f"{verdict(not bad)}  every exit code 0 ({len(results) - len(bad)}/{len(results)})")


# ---------------------------------------------------------------- (b) descriptors over faulty cycles

def tcp_ports() -> dict[str, tuple[int, int]]:
    """Socket inode -> (local port, remote port) for this network namespace's TCP sockets."""
    ports: dict[str, tuple[int, int]] = {}
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    ports[fields[9]] = (int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports


def open_fds(servers: dict[int, str]) -> collections.Counter[str]:
    """This process's open descriptors by kind; TCP sockets by which fake (``servers``: port -> name) and which end.

    The total is ``len(os.listdir('/proc/self/fd'))`` minus the listing's own descriptor.
    """
    ports = tcp_ports()
    kinds: collections.Counter[str] = collections.Counter()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed between listdir and readlink (the listing's own descriptor, for one)
            continue
        if target.startswith("socket:["):
            local, remote = ports.get(target[8:-1], (0, 0))
            if local in servers:
                kind = f"{servers[local]} {'listener' if remote == 0 else 'server side'}"
            elif remote in servers:
                kind = f"{servers[remote]} client side"
            else:
                kind = "other socket"
        elif target.startswith(("pipe:", "anon_inode:")):
            kind = target.split(":", 1)[0]
        else:
            kind = "file"
        kinds[kind] += 1
    return kinds


def port_of(url: str) -> int:
    return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


async def next_cycle(service: Service) -> None:
    seen = service.scanner.cycles.value
    await service.scanner.cycles.wait_value(lambda n: n > seen)


class FaultInjector:
    """While ``active``, injects faults before every scan cycle; ``faulty`` counts the cycles that ran meanwhile.

    Every cycle an Etherscan fault (once the last one was used up); every 10th cycle a Telegram fault, provided
    two messages got through since the last one (else the sender's per-chat backoff would only keep growing).
    """

    def __init__(self, fakes: Fakes, service: Service) -> None:
        self.fakes = fakes
        self.service = service
        self.active = True
        self.faulty = trio_util.AsyncValue(0)
        self.counts: collections.Counter[str] = collections.Counter()
        self._sent_mark = -2          # len(telegram.sent) when the last Telegram fault was queued
        self._polls_mark = 0          # getUpdates calls when the last getUpdates fault was queued
        self._poker = 900_000         # private chats that "unblock the bot" to end a pending long poll

    async def run(self) -> None:
        while True:
            active = self.active
            if active:
                self._inject(self.faulty.value)
            await next_cycle(self.service)
            if active:
                self.faulty.value += 1

    def _inject(self, cycle: int) -> None:
        etherscan, telegram = self.fakes.etherscan, self.fakes.telegram
        if etherscan.fault_remaining() == 0:
            if cycle % RATE_LIMIT_EVERY == RATE_LIMIT_EVERY - 1:
                fault = RATE_LIMIT_FAULTS[(cycle // RATE_LIMIT_EVERY) % len(RATE_LIMIT_FAULTS)]
            else:
                fault = ETHERSCAN_FAULTS[cycle % len(ETHERSCAN_FAULTS)]
            repeat = etherscan_module.RETRIES if cycle % REPEAT_EVERY == 0 else 1   # every retry fails too
            etherscan.inject(fault, count=repeat)
            self.counts[f"etherscan {fault}"] += repeat
        if cycle % TELEGRAM_FAULT_EVERY == 0 and len(telegram.sent) >= self._sent_mark + 2 and self._polls_used():
            self._sent_mark = len(telegram.sent)
            kind = sum(n for name, n in self.counts.items() if name.startswith("telegram")) % len(TELEGRAM_FAULT_NAMES)
            if kind == 0:
                telegram.reset_next("sendMessage")
            elif kind == 1:
                telegram.reset_next("sendMessage", after_processing=True)
            elif kind == 2:
                telegram.fail_next("sendMessage", 502, "Bad Gateway")
            elif kind == 3:
                telegram.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", {"retry_after": 1})
            else:
                self._polls_mark = telegram.calls["getupdates"]
                telegram.reset_next("getUpdates")
                self._poker += 1
                telegram.unblock_bot(self._poker)   # an update (no reply) ends the pending poll; the next is reset
            self.counts[f"telegram {TELEGRAM_FAULT_NAMES[kind]}"] += 1

    def _polls_used(self) -> bool:
        """The last getUpdates fault was used and the poller has polled again since."""
        return self.fakes.telegram.calls["getupdates"] >= self._polls_mark + 2

    def _quiet(self) -> bool:
        telegram = self.fakes.telegram
        return (self.fakes.etherscan.fault_remaining() == 0 and len(telegram.sent) >= self._sent_mark + 2
                and self._polls_used())

    async def settle(self) -> None:
        """Stop injecting; wait until every queued fault was used, then for SETTLE seconds without a failed cycle.

        httpx closes a keep-alive connection idle for 5 s, so after the quiet period the pool holds what the clean
        service needs — a count taken now does not depend on which connection a fault dropped a moment ago.
        """
        self.active = False
        scanner = self.service.scanner
        while not self._quiet():
            await next_cycle(self.service)
        quiet_since, failed = trio.current_time(), scanner.failed_cycles
        while trio.current_time() - quiet_since < SETTLE:
            await next_cycle(self.service)
            if scanner.failed_cycles != failed or not self._quiet():
                quiet_since, failed = trio.current_time(), scanner.failed_cycles

    def resume(self) -> None:
        self.active = True


async def warm_up(fakes: Fakes) -> None:
    """/add the wallet, then one notification while the long poll is pending: every kind of connection is open."""
    telegram = fakes.telegram
    telegram.user_sends(USER, f"/add {WALLET}")
    await telegram.wait_for_messages(USER, 1)
    fakes.chain.transfer("USDT", STRANGER, WALLET, 1_000_000)
    fakes.chain.mine()
    await telegram.wait_for_messages(USER, 2)


async def traffic(fakes: Fakes, service: Service) -> None:
    """A transfer to the watched address in every block, a block every cycle."""
    rng = random.Random(7)
    while True:
        fakes.chain.transfer("USDT", STRANGER, WALLET, rng.randrange(1, 10**9))
        fakes.chain.mine()
        await next_cycle(service)


@dataclass
class FdResult:
    baseline: collections.Counter[str]
    baseline_cycles: int
    after: collections.Counter[str]
    samples: list[int]       # unsettled totals every 100 faulty cycles
    cycles: int
    failed_cycles: int
    seconds: float
    faults: collections.Counter[str]
    messages: int


async def bench_descriptors(cycles: int) -> FdResult:
    etherscan_module.FIRST_RETRY_DELAY = 0.001
    scanner_module.KEY_REJECTED_PAUSE = 0.0
    scanner_module.DAILY_LIMIT_PAUSE = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-fds-") as tmp:
        async with trio.open_nursery() as nursery:
            fakes = await fakes_on_loopback(nursery)
            settings = Settings(_env_file=None, TELEGRAM_BOT_TOKEN=TOKEN, ETHERSCAN_API_KEY=KEY,
                                ETHERSCAN_BASE_URL=fakes.etherscan_url, TELEGRAM_API_URL=fakes.telegram_url,
                                DB_PATH=Path(tmp) / "db.sqlite3", CHECK_INTERVAL_SECONDS=0.01, CONFIRMATIONS=0,
                                ETHERSCAN_RATE_LIMIT=1000, ETHERSCAN_DAILY_QUOTA=UNLIMITED_QUOTA)
            service: Service = await nursery.start(partial(run_service, settings, handle_signals=False))
            with trio.fail_after(READY_TIMEOUT):
                await warm_up(fakes)
            servers = {port_of(fakes.etherscan_url): "etherscan", port_of(fakes.telegram_url): "telegram"}
            injector = FaultInjector(fakes, service)
            started, failed_before = trio.current_time(), service.scanner.failed_cycles
            nursery.start_soon(traffic, fakes, service)
            nursery.start_soon(injector.run)

            async def counted_after(n: int) -> tuple[collections.Counter[str], int]:
                await injector.faulty.wait_value(lambda done: done >= n)
                await injector.settle()
                counted = open_fds(servers)
                print(f"after {injector.faulty.value} faulty cycles ({trio.current_time() - started:.0f}s, settled): "
                      f"{sum(counted.values())} descriptors", flush=True)
                cycles_done = injector.faulty.value
                injector.resume()
                return counted, cycles_done

            samples = []
            with trio.fail_after(max(180.0, cycles * 0.5)):
                baseline, baseline_cycles = await counted_after(10)
                for mark in range(100, cycles, 100):
                    await injector.faulty.wait_value(lambda done: done >= mark)
                    samples.append(sum(open_fds(servers).values()))
                    print(f"  {mark} faulty cycles ({trio.current_time() - started:.0f}s): {samples[-1]} descriptors "
                          f"(unsettled), {service.scanner.failed_cycles - failed_before} failed cycles", flush=True)
                after, _ = await counted_after(cycles)
            result = FdResult(baseline, baseline_cycles, after, samples, injector.faulty.value,
                              service.scanner.failed_cycles - failed_before, trio.current_time() - started,
                              injector.counts, len(fakes.telegram.sent))
            nursery.cancel_scope.cancel()
    return result


def report_descriptors(r: FdResult) -> None:
    def show(kinds: collections.Counter[str]) -> str:
        return f"{sum(kinds.values())} = " + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
    etherscan_faults = sum(n for k, n in r.faults.items() if k.startswith("etherscan"))
    telegram_faults = sum(n for k, n in r.faults.items() if k.startswith("telegram"))
    print()
    print(f"{r.cycles} faulty cycles in {r.seconds:.1f}s (two settle periods included); {r.failed_cycles} cycles "
          f"failed; {r.messages} messages reached the fake Telegram")
    print(f"faults injected: {etherscan_faults} Etherscan, {telegram_faults} Telegram: "
          + ", ".join(f"{k} {n}" for k, n in sorted(r.faults.items())))
    print(f"open descriptors after {r.baseline_cycles} faulty cycles (settled): {show(r.baseline)}")
    print(f"open descriptors after {r.cycles} faulty cycles (settled): {show(r.after)}")
    base, after = sum(r.baseline.values()), sum(r.after.values())
    if r.samples:
        print(f"unsettled totals every 100 cycles (faults in flight): min {min(r.samples)}, max {max(r.samples)}")
    print(f"{verdict(after == base)}  descriptors equal after {r.baseline_cycles} and {r.cycles} faulty cycles "
          f"({base} -> {after})")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="SIGTERM runs (default 20; 0 skips part a)")
    parser.add_argument("--cycles", type=int, default=1000, help="faulty scan cycles (default 1000; 0 skips part b)")
    parser.add_argument("--verbose", action="store_true", help="log the in-process service at INFO")
    args = parser.parse_args()
    if args.runs < 0 or args.cycles < 0 or 0 < args.cycles < 10:
        parser.error("--runs must be >= 0 and --cycles 0 or >= 10")
    setup_logging(False)
    # the in-process service logs every injected fault; keep the benchmark's output to its figures
    logging.getLogger().setLevel(logging.INFO if args.verbose else logging.CRITICAL)
    if args.runs:
        print(f"(a) SIGTERM -> exit, {args.runs} runs of `{Path(sys.executable).name} -m usdt_trio run`", flush=True)
        report_shutdown(trio.run(bench_shutdown, args.runs))
    if args.cycles:
        if args.runs:
            print()
        print(f"(b) open descriptors over {args.cycles} scan cycles with faults injected", flush=True)
        report_descriptors(trio.run(bench_descriptors, args.cycles))


if __name__ == "__main__":
    main()
