"""EtherscanClient against the fake Etherscan V2 over real loopback HTTP: error catalogue, retries, paging, pacing, secrets.

Tests whose subject is retrying use ``fast_clock``: a MockClock running 10x faster than wall time, so the client's
real backoff (0.5 s, 1 s, 2 s) and rate-limit penalty (1 s) are kept but cost a tenth of the wall time. The client,
its pacer and the fake all read the same trio clock, so the rules they enforce are unchanged. The pacing test itself
runs on the real clock (the pacer's 50 ms margin must be compared with real network jitter).
"""

from __future__ import annotations

import json
import logging
import math
import random
import socket
import traceback
from collections import Counter
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from usdt_trio.chain.etherscan import PAGE_SIZE, EtherscanClient, classify_error, parse_transfer_log
from usdt_trio.chain.models import Transfer
from usdt_trio.chain.tokens import TRANSFER_TOPIC
from usdt_trio.errors import (ApiRejected, ApiUnavailable, ChainApiError, DailyLimitReached, InvalidApiKey,
                              QueryTooLarge, RateLimited)
from usdt_trio.pacing import Pacer
from usdt_trio.testing.chain import SimChain
from usdt_trio.testing.fake_etherscan import FakeEtherscan
from usdt_trio.testing.http_server import Request, Response, serve_http

from conftest import API_KEY, Fakes

USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
CAROL = "0x" + "c0" * 20
SHARED_TX = "0x" + "5e" * 32
HTTP_TIMEOUT = 30.0  # generous: under fast_clock it is 3 s of wall time

# Texts copied from shared/specs/chain-apis.md (error catalogue), not imported from the fake.
SPEC_ERRORS: list[tuple[str, type[ChainApiError]]] = [
    ("Max calls per sec rate limit reached (3/sec)", RateLimited),
    ("Max rate limit reached, please use API Key for higher rate limit", RateLimited),
    ("Max daily rate limit reached. 100000 (100%) of Daily Rate Limit Limit Reached", DailyLimitReached),
    ("Invalid API Key", InvalidApiKey),
    ("Missing/Invalid API Key", InvalidApiKey),
    ("Too many invalid api key attempts, please try again later", InvalidApiKey),
    ("Missing or unsupported chainid parameter (required for v2 api), please see chainlist for the list of "
     "supported chainids", ApiRejected),
    ("Free API access is not supported for this chain. Please upgrade your api plan for full chain coverage.",
     ApiRejected),
    ("Error! Missing Or invalid Action name", ApiRejected),
    ("Error! Invalid address format", ApiRejected),
    ("Query Timeout occured. Please select a smaller result dataset", QueryTooLarge),
    ("Unexpected err, timeout occurred or server too busy. Please try again later", ApiUnavailable),
    ("Free API access is temporarily unavailable due to unusually high network activity", ApiUnavailable),
    ("You are using a deprecated V1 endpoint, switch to Etherscan API V2.", ApiRejected),
    ("Result window is too large, PageNo x Offset size must be less than or equal to 10000", QueryTooLarge),
    ("NOTOK", ApiRejected),
    ("", ApiRejected),
]


@pytest.fixture
def fast_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(rate=10)


def make_client(http: httpx.AsyncClient, url: str, *, api_key: str = API_KEY, chain_id: int = 1, rate: int = 3,
                concurrency: int = 4) -> EtherscanClient:
    return EtherscanClient(http, base_url=url, api_key=api_key, chain_id=chain_id,
                           limiter=trio.CapacityLimiter(concurrency), pacer=Pacer(rate))


def rows(transfers: list[Any]) -> list[tuple[Any, ...]]:
    """Comparable rows for SimTransfer (from the chain) and Transfer (from the client)."""
    out = []
    for t in transfers:
        if isinstance(t, Transfer):
            assert t.chain_id == 1
            out.append((t.tx_hash, t.log_index, t.block_number, t.block_hash, t.block_time, t.contract, t.sender,
                        t.recipient, t.value))
        else:
            out.append((t.tx_hash, t.log_index, t.block_number, t.block_hash, t.timestamp, t.contract, t.sender,
                        t.recipient, t.value))
    return out


def assert_same_transfers(got: list[Transfer], chain: SimChain, contract: str, lo: int, hi: int) -> None:
    expected = chain.transfers(lo, hi, contract=contract)
    keys = [t.key for t in got]
    assert len(keys) == len(set(keys)), "duplicate transfers"
    assert Counter(rows(got)) == Counter(rows(expected))


def small_history(chain: SimChain) -> tuple[int, int]:
    """A few USDT and USDC transfers over some blocks, two of them in one transaction; returns the block range."""
    lo = chain.head + 1
    chain.transfer("USDT", ALICE, BOB, 5_000_000)
    chain.transfer("USDC", BOB, CAROL, 7)
    chain.mine()
    chain.transfer("USDT", BOB, CAROL, 1, tx_hash=SHARED_TX)
    chain.transfer("USDT", BOB, CAROL, 1, tx_hash=SHARED_TX)  # identical but distinct (log index)
    chain.transfer("USDT", CAROL, ALICE, 0)
    chain.mine(3)
    chain.transfer("USDT", ALICE, ALICE, 123)
    hi = chain.mine(2)
    assert len(chain.transfers(lo, hi, contract=USDT)) == 5
    return lo, hi


def get_logs_params(fake: FakeEtherscan) -> list[dict[str, str]]:
    return [params for _, key, params in fake.log if key == "logs.getLogs"]


def call_times(fake: FakeEtherscan) -> list[float]:
    return [t for t, _, _ in fake.log]


# ---- error catalogue --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "cls"), SPEC_ERRORS, ids=[t[:30] or "empty" for t, _ in SPEC_ERRORS])
def test_classify_every_catalogue_text(text: str, cls: type[ChainApiError]) -> None:
    exc = classify_error(text)
    assert type(exc) is cls
    assert exc.retryable is (cls in (RateLimited, ApiUnavailable))


RETRIED = ["rate_limit", "max_rate", "busy", "load_shedding", "html_500", "html_502", "html_503", "html_504",
           "invalid_json", "reset"]


@pytest.mark.parametrize("fault", RETRIED)
async def test_transient_fault_is_retried(fakes: Fakes, fast_clock: trio.testing.MockClock, fault: str) -> None:
    chain, fake = fakes.chain, fakes.etherscan
    lo, hi = small_history(chain)
    fake.inject(fault, action="logs.getLogs")
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        client = make_client(http, fakes.etherscan_url)
        got = await client.transfer_logs(USDT, lo, hi)
    assert_same_transfers(got, chain, USDT, lo, hi)
    assert fake.calls["logs.getLogs"] == 2 and client.calls == 2  # the failed attempt, then the good one
    assert fake.fault_remaining() == 0 and fake.rate_limited == 0
    first, second = call_times(fake)
    # backoff before the retry; a rate-limit answer additionally holds the pacer for a second
    assert second - first >= (1.0 if fault in ("rate_limit", "max_rate") else 0.5)


async def test_retried_up_to_four_attempts_with_backoff(fakes: Fakes, fast_clock: trio.testing.MockClock) -> None:
    chain, fake = fakes.chain, fakes.etherscan
    lo, hi = small_history(chain)
    fake.inject("html_503", count=3, action="logs.getLogs")
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        client = make_client(http, fakes.etherscan_url)
        got = await client.transfer_logs(USDT, lo, hi)
        assert_same_transfers(got, chain, USDT, lo, hi)
        assert fake.calls["logs.getLogs"] == 4
        times = call_times(fake)
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert gaps[0] >= 0.5 and gaps[1] >= 1.0 and gaps[2] >= 2.0  # exponential backoff

        fake.inject("busy", count=4, action="logs.getLogs")
        with pytest.raises(ApiUnavailable):
            await client.transfer_logs(USDT, lo, hi)
        assert fake.calls["logs.getLogs"] == 8  # gave up after 4 attempts, no fifth
        assert fake.fault_remaining() == 0


NOT_RETRIED: dict[str, tuple[dict[str, Any], type[ChainApiError]]] = {
    "invalid_key_fault": ({"fault": "invalid_key"}, InvalidApiKey),
    "too_many_invalid_keys_fault": ({"fault": "too_many_invalid_keys"}, InvalidApiKey),
    "unknown_key": ({"api_key": "NOT-A-KNOWN-KEY"}, InvalidApiKey),
    "missing_key": ({"api_key": ""}, InvalidApiKey),
    "daily_limit_fault": ({"fault": "daily_limit"}, DailyLimitReached),
    "daily_quota_used_up": ({"daily_limit": 0}, DailyLimitReached),
    "unsupported_chain": ({"chain_id": 999_999}, ApiRejected),
    "paid_only_chain": ({"chain_id": 56}, ApiRejected),
    "v1_endpoint": ({"path": "/api"}, ApiRejected),
    "http_404": ({"path": "/v3/api"}, ApiRejected),
    "bad_address": ({"contract": "0x1234"}, ApiRejected),
    "null_result": ({"fault": "null_result"}, ApiRejected),
    "query_timeout": ({"fault": "query_timeout"}, QueryTooLarge),
}
GETLOGS_ONLY = {"bad_address", "query_timeout"}


@pytest.mark.parametrize(("case", "endpoint"),
                         [(case, endpoint) for case in sorted(NOT_RETRIED) for endpoint in ("getLogs", "eth_blockNumber")
                          if endpoint == "getLogs" or case not in GETLOGS_ONLY])
async def test_permanent_error_raised_without_retry(fakes: Fakes, case: str, endpoint: str) -> None:
    setup, cls = NOT_RETRIED[case]
    chain, fake = fakes.chain, fakes.etherscan
    lo, hi = small_history(chain)
    if "fault" in setup:
        fake.inject(setup["fault"])
    if "daily_limit" in setup:
        fake.daily_limit = setup["daily_limit"]
    url = fakes.etherscan_url.removesuffix("/v2/api") + setup.get("path", "/v2/api")
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        client = make_client(http, url, api_key=setup.get("api_key", API_KEY), chain_id=setup.get("chain_id", 1))
        with pytest.raises(ChainApiError) as caught:
            if endpoint == "getLogs":
                await client.get_logs(setup.get("contract", USDT), lo, hi)
            else:
                await client.block_number()
    assert type(caught.value) is cls
    assert client.calls == 1 and sum(fake.calls.values()) == 1  # not retried


async def test_query_timeout_on_whole_read_is_split(fakes: Fakes) -> None:
    chain, fake = fakes.chain, fakes.etherscan
    lo, hi = small_history(chain)
    fake.inject("query_timeout", action="logs.getLogs")
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        got = await make_client(http, fakes.etherscan_url).transfer_logs(USDT, lo, hi)
    assert_same_transfers(got, chain, USDT, lo, hi)
    ranges = [(int(p["fromBlock"]), int(p["toBlock"])) for p in get_logs_params(fake)]
    middle = (lo + hi) // 2
    assert ranges == [(lo, hi), (lo, middle), (middle + 1, hi)]


# ---- eth_blockNumber --------------------------------------------------------------------------------------------

async def test_block_number(fakes: Fakes, fast_clock: trio.testing.MockClock) -> None:
    chain, fake = fakes.chain, fakes.etherscan
    chain.mine(7)
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        client = make_client(http, fakes.etherscan_url)
        assert await client.block_number() == chain.head
        assert fake.calls["proxy.eth_blockNumber"] == 1
        # the rate-limit text as a plain JSON-RPC result: not a number, retried after a pause
        fake.inject("rpc_text", count=2, action="proxy.eth_blockNumber")
        assert await client.block_number() == chain.head
    assert fake.calls["proxy.eth_blockNumber"] == 4
    times = call_times(fake)
    assert times[2] - times[1] >= 1.0 and times[3] - times[2] >= 1.0
    assert fake.fault_remaining() == 0 and fake.rate_limited == 0


# ---- paging -------------------------------------------------------------------------------------------------

async def test_many_transfers_over_many_blocks_read_by_block_cursor(fakes: Fakes) -> None:
    chain, fake = fakes.chain, fakes.etherscan
    rng = random.Random(7)
    lo = chain.head + 1
    for _ in range(150):
        chain.transfer_many((USDT, f"0x{rng.getrandbits(160):040x}", f"0x{rng.getrandbits(160):040x}",
                             rng.randrange(10**9)) for _ in range(rng.randrange(0, 36)))
        chain.transfer_many((USDC, ALICE, BOB, 1) for _ in range(rng.randrange(0, 5)))  # other token: filtered
        chain.mine()
    hi = chain.head
    n = len(chain.transfers(lo, hi, contract=USDT))
    assert n > 2 * PAGE_SIZE
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        got = await make_client(http, fakes.etherscan_url).transfer_logs(USDT, lo, hi)
    assert len(got) == n
    assert_same_transfers(got, chain, USDT, lo, hi)
    calls = get_logs_params(fake)
    assert math.ceil(n / PAGE_SIZE) <= len(calls) <= math.ceil(n / PAGE_SIZE) + 1  # not one call per block
    assert all(p["address"] == USDT and p["offset"] == str(PAGE_SIZE) and p["page"] == "1" for p in calls)
    assert int(calls[0]["fromBlock"]) == lo and all(int(p["toBlock"]) == hi for p in calls)
    assert fake.rate_limited == 0


@pytest.mark.parametrize("in_block", [PAGE_SIZE, 2_500])
async def test_one_block_with_many_transfers_is_read_page_by_page(fakes: Fakes, in_block: int) -> None:
    chain, fake = fakes.chain, fakes.etherscan
    lo = chain.head + 1
    for i in range(7):
        chain.transfer("USDT", ALICE, BOB, i)
    chain.mine()
    chain.transfer_many((USDT, ALICE, f"0x{i:040x}", i + 1) for i in range(in_block))
    big = chain.mine()
    for i in range(5):
        chain.transfer("USDT", BOB, CAROL, i)
    hi = chain.mine(3)
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        got = await make_client(http, fakes.etherscan_url).transfer_logs(USDT, lo, hi)
    assert len(got) == 7 + in_block + 5
    assert_same_transfers(got, chain, USDT, lo, hi)
    requests = [(int(p["fromBlock"]), int(p["toBlock"]), int(p["page"])) for p in get_logs_params(fake)]
    inside = [(big, big, page) for page in range(2, in_block // PAGE_SIZE + 2)]  # 1000 → page 2 (empty); 2500 → 2, 3
    assert requests == [(lo, hi, 1), (big, hi, 1), *inside, (big + 1, hi, 1)]
    assert fake.rate_limited == 0


async def test_range_split_on_query_timeout(fakes: Fakes) -> None:
    chain, fake = fakes.chain, fakes.etherscan
    fake.max_range_blocks = 30
    rng = random.Random(11)
    lo = chain.head + 1
    for _ in range(100):
        chain.transfer_many((USDT, ALICE, f"0x{rng.getrandbits(160):040x}", rng.randrange(10**6))
                            for _ in range(rng.choice([0, 3, 40])))
        chain.mine()
    hi = chain.head
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        got = await make_client(http, fakes.etherscan_url).transfer_logs(USDT, lo, hi)
    assert_same_transfers(got, chain, USDT, lo, hi)
    spans = [int(p["toBlock"]) - int(p["fromBlock"]) + 1 for p in get_logs_params(fake)]
    assert any(span > 30 for span in spans)  # the fake did time out
    assert spans[0] == 100 and len(spans) <= 12


async def test_spec_record_cap_is_the_page_size(fakes: Fakes) -> None:
    """The client treats a page shorter than PAGE_SIZE as the end: that is only sound while PAGE_SIZE is the
    provider's record cap (1,000 on the free plan, per the spec), so pin both."""
    assert PAGE_SIZE == 1000 == fakes.etherscan.max_records


# ---- log parsing ------------------------------------------------------------------------------------------------

def log_item(**overrides: Any) -> dict[str, Any]:
    item = {"address": USDT, "topics": [TRANSFER_TOPIC, "0x" + "0" * 24 + ALICE[2:], "0x" + "0" * 24 + BOB[2:]],
            "data": "0x", "blockNumber": "0x1234", "timeStamp": "0x65000000", "gasPrice": "0x3b9aca00",
            "gasUsed": "0x5208", "logIndex": "0x", "transactionHash": "0x" + "AB" * 32, "transactionIndex": "0x"}
    item.update(overrides)
    return item


def test_parse_bare_0x_is_zero() -> None:
    transfer = parse_transfer_log(log_item(), 1)
    assert transfer is not None
    assert transfer.value == 0 and transfer.log_index == 0
    assert transfer.block_number == 0x1234 and transfer.block_time == 0x65000000
    assert transfer.sender == ALICE and transfer.recipient == BOB and transfer.contract == USDT
    assert transfer.tx_hash == "0x" + "ab" * 32 and transfer.block_hash is None
    padded = parse_transfer_log(log_item(data="0x" + "0" * 63 + "7", logIndex="0x1f"), 1)
    assert padded is not None and padded.value == 7 and padded.log_index == 31


def test_parse_ignores_non_erc20_items() -> None:
    topics = log_item()["topics"]
    assert parse_transfer_log(log_item(topics=[*topics, "0x" + "0" * 63 + "5"]), 1) is None  # ERC-721 (token id)
    assert parse_transfer_log(log_item(topics=topics[:2]), 1) is None
    assert parse_transfer_log(log_item(topics=["0x" + "11" * 32, *topics[1:]]), 1) is None


async def test_zero_value_at_log_index_zero_end_to_end(fakes: Fakes) -> None:
    chain = fakes.chain
    lo = chain.head + 1
    chain.transfer("USDT", CAROL, ALICE, 0)  # address-poisoning shape: log index 0, value 0
    hi = chain.mine()
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        got = await make_client(http, fakes.etherscan_url).transfer_logs(USDT, lo, hi)
    assert [(t.log_index, t.value, t.sender, t.recipient) for t in got] == [(0, 0, CAROL, ALICE)]
    assert_same_transfers(got, chain, USDT, lo, hi)


async def test_foreign_items_in_a_getlogs_answer_are_dropped(fakes: Fakes, nursery: trio.Nursery) -> None:
    """An ERC-721 Transfer (4 topics) and another contract's log mixed into the answer never become Transfers."""
    chain, fake = fakes.chain, fakes.etherscan
    lo, hi = small_history(chain)

    async def mixing(request: Request) -> Response:
        response = await fake.handle(request)
        payload = json.loads(response.body)
        if request.params.get("action") == "getLogs" and payload.get("status") == "1":
            last = payload["result"][-1]
            nft = {**last, "topics": [*last["topics"], "0x" + "0" * 63 + "9"], "data": "0x", "logIndex": "0x7a"}
            other = {**last, "address": "0x" + "de" * 20, "logIndex": "0x7b"}
            payload["result"] += [nft, other]
            return Response.json(payload)
        return response

    base = await nursery.start(serve_http, mixing)
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        got = await make_client(http, f"{base}/v2/api").transfer_logs(USDT, lo, hi)
    assert_same_transfers(got, chain, USDT, lo, hi)


# ---- pacing and concurrency ---------------------------------------------------------------------------------

async def test_pacer_keeps_under_the_free_plan_rate(fakes: Fakes) -> None:
    fake = fakes.etherscan
    assert fake.rate_limit == 3
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        client = make_client(http, fakes.etherscan_url, rate=3)
        for _ in range(12):
            assert await client.block_number() == fakes.chain.head
    assert fake.rate_limited == 0
    assert fake.calls["proxy.eth_blockNumber"] == 12 == client.calls


async def test_capacity_limiter_bounds_requests_in_flight(fakes: Fakes, nursery: trio.Nursery) -> None:
    fake = fakes.etherscan
    fake.rate_limit = 1000
    in_flight = peak = 0

    async def counting(request: Request) -> Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            return await fake.handle(request)
        finally:
            in_flight -= 1

    base = await nursery.start(serve_http, counting)
    fake.inject("slow", count=8, delay=0.2)
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        client = make_client(http, f"{base}/v2/api", rate=1000, concurrency=2)
        heads: list[int] = []

        async def one() -> None:
            heads.append(await client.block_number())

        with trio.fail_after(10):
            async with trio.open_nursery() as inner:
                for _ in range(8):
                    inner.start_soon(one)
    assert heads == [fakes.chain.head] * 8
    assert peak == 2  # calls did overlap, but never more than the limiter's two
    assert fake.calls["proxy.eth_blockNumber"] == 8 and fake.fault_remaining() == 0


# ---- the API key stays secret -----------------------------------------------------------------------------------

def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v2/api"


async def test_api_key_never_in_errors_or_logs(fakes: Fakes, fast_clock: trio.testing.MockClock,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    chain, fake = fakes.chain, fakes.etherscan
    lo, hi = small_history(chain)
    url = fakes.etherscan_url
    v1_url = url.removesuffix("/v2/api") + "/api"
    errors: list[ChainApiError] = []

    async def expect(cls: type[ChainApiError], client: EtherscanClient, fault: str | None = None,
                     count: int = 1, delay: float = 0.0) -> None:
        if fault is not None:
            fake.inject(fault, count=count, delay=delay)
        with pytest.raises(cls) as caught:
            await client.get_logs(USDT, lo, hi)
        errors.append(caught.value)

    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http, httpx.AsyncClient(timeout=1.0) as impatient:
        client = make_client(http, url)
        await expect(InvalidApiKey, client, "invalid_key")
        await expect(DailyLimitReached, client, "daily_limit")
        await expect(ApiRejected, client, "null_result")
        await expect(QueryTooLarge, client, "query_timeout")
        await expect(ApiRejected, make_client(http, url, chain_id=999_999))
        await expect(ApiRejected, make_client(http, v1_url))
        for fault in ("html_502", "reset", "invalid_json"):
            await expect(ApiUnavailable, client, fault, count=4)
        await expect(RateLimited, client, "rate_limit", count=4)
        await expect(ApiUnavailable, make_client(impatient, url), "slow", count=4, delay=3.0)  # read timeouts
        await expect(ApiUnavailable, make_client(http, closed_port_url()))  # connection refused
    assert fake.fault_remaining() == 0
    for exc in errors:
        for text in (str(exc), repr(exc), "".join(traceback.format_exception(exc))):
            assert API_KEY not in text
    ours = [r for r in caplog.records if r.name.startswith("usdt_trio")]
    assert any(r.levelno == logging.DEBUG and "retry" in r.getMessage() for r in ours)
    for record in ours:
        assert API_KEY not in record.getMessage()
        assert record.exc_info is None or API_KEY not in "".join(traceback.format_exception(*record.exc_info))
