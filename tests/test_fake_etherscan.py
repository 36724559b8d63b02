"""The simulated chain and the fake Etherscan V2, over real loopback HTTP, against the spec's texts and encodings."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import trio
import trio.testing

from usdt_trio.chain.tokens import TRANSFER_TOPIC
from usdt_trio.testing.chain import SimChain
from usdt_trio.testing.fake_etherscan import FakeEtherscan
from usdt_trio.testing.http_server import Request, serve_http

USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
CAROL = "0x" + "c0" * 20
TX = "0x" + "ab" * 32
START = 1_000
T0 = 1_700_000_000

# Texts copied from shared/specs/chain-apis.md on purpose (not imported from the fake).
PER_SEC = "Max calls per sec rate limit reached (3/sec)"
WINDOW = "Result window is too large, PageNo x Offset size must be less than or equal to 10000"
TIMEOUT = "Query Timeout occured. Please select a smaller result dataset"
BAD_CHAIN = ("Missing or unsupported chainid parameter (required for v2 api), please see chainlist for the list of "
             "supported chainids")
PAID = "Free API access is not supported for this chain. Please upgrade your api plan for full chain coverage."
TOKENTX_KEYS = {"blockNumber", "timeStamp", "hash", "nonce", "blockHash", "from", "contractAddress", "to", "value",
                "tokenName", "tokenSymbol", "tokenDecimal", "transactionIndex", "gas", "gasPrice", "gasUsed",
                "cumulativeGasUsed", "input", "confirmations"}


def pad(address: str) -> str:
    return "0x" + "0" * 24 + address[2:]


class Api:
    """A tiny client for the tests: GET <base>/v2/api with chainid and key filled in."""

    def __init__(self, client: httpx.AsyncClient, chain: SimChain, fake: FakeEtherscan) -> None:
        self.client, self.chain, self.fake = client, chain, fake

    async def raw(self, path: str = "/v2/api", **params: Any) -> httpx.Response:
        params = {"chainid": "1", "apikey": "demo-key", **params}
        return await self.client.get(path, params={k: v for k, v in params.items() if v is not None})

    async def __call__(self, module: str, action: str, **params: Any) -> dict[str, Any]:
        response = await self.raw(module=module, action=action, **params)
        assert response.status_code == 200
        return response.json()


async def start_api(nursery: trio.Nursery, chain: SimChain, **kwargs: Any) -> Api:
    fake = FakeEtherscan(chain, **kwargs)
    base = await nursery.start(serve_http, fake.handle)
    client = httpx.AsyncClient(base_url=base)
    nursery.start_soon(_close_later, client)
    return Api(client, chain, fake)


async def _close_later(client: httpx.AsyncClient) -> None:
    try:
        await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):
            await client.aclose()


@pytest.fixture
def chain() -> SimChain:
    return SimChain(start_block=START, start_time=T0)


@pytest.fixture
async def api(nursery: trio.Nursery, chain: SimChain) -> Api:
    return await start_api(nursery, chain, rate_limit=10_000)


# -- the simulated chain ---------------------------------------------------------------------------------------------


def test_chain_blocks_and_log_indexes(chain: SimChain) -> None:
    chain.transfer("USDT", ALICE, BOB, 5)
    chain.transfer("usdc", BOB, CAROL, 7, tx_hash=TX)
    chain.transfer(USDT.upper().replace("0X", "0x"), CAROL, ALICE, 9)
    chain.transfer("USDT", ALICE, CAROL, 11, tx_hash=TX.upper().replace("0X", "0x"))  # same tx as the 2nd
    assert chain.mine(3) == START + 3
    got = chain.transfers(START, START + 3)
    assert [t.block_number for t in got] == [START + 1] * 4
    assert [t.log_index for t in got] == [0, 1, 2, 3]
    # a transaction's logs are contiguous: tx 0 (5), tx 1 (7 and 11 share TX), tx 2 (9)
    assert [(t.tx_index, t.value) for t in got] == [(0, 5), (1, 7), (1, 11), (2, 9)]
    assert got[1].tx_hash == got[2].tx_hash == TX and got[0].tx_hash != got[3].tx_hash
    assert got[0].timestamp == chain.block_time(START + 1) == T0 + 12
    assert got[0].block_hash == chain.block_hash(START + 1) != chain.block_hash(START + 2)
    assert chain.transfers(START, START + 3, contract=USDC) == [got[1]]
    assert chain.transfers(0, 10**9, address=CAROL) == got[1:]
    assert chain.transfers(START + 2, START + 3) == []
    assert chain.balance(USDT, ALICE) == -5 + 9 - 11
    assert SimChain(start_block=START, start_time=T0).block_hash(START + 0) == chain.block_hash(START)
    with pytest.raises(ValueError):
        chain.transfer("DAI", ALICE, BOB, 1)
    with pytest.raises(ValueError):
        chain.transfer("USDT", "0x1234", BOB, 1)
    with pytest.raises(ValueError):
        chain.transfer("USDT", ALICE, BOB, 1.5)  # type: ignore[arg-type]


def test_chain_bulk_noise_and_reorg(chain: SimChain) -> None:
    rng = random.Random(7)
    for _ in range(200):
        chain.add_noise(rng)
        chain.transfer_many([(USDT, ALICE, BOB, 1)])
        chain.mine()
    assert chain.head == START + 200
    assert len(chain.transfers(START + 1, START + 1)) == 56
    mine = chain.transfers(0, chain.head, address=ALICE)
    assert len(mine) == 200 and all(t.value == 1 for t in mine)
    window = chain.transfers(START + 50, START + 59, contract=USDC)
    assert window and all(START + 50 <= t.block_number <= START + 59 and t.contract == USDC for t in window)
    orphan = chain.transfers(chain.head, chain.head, address=ALICE)[0]
    old_hash = chain.block_hash(chain.head)
    assert chain.reorg(2, drop=[orphan.tx_hash]) == START + 200
    assert chain.block_hash(chain.head) != old_hash
    assert len(chain.transfers(0, chain.head, address=ALICE)) == 199
    assert chain.transfers(chain.head, chain.head) == []  # re-included transfers all land in the first new block


async def test_chain_miner_and_waiting(chain: SimChain, autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(chain.run_miner, 12.0)
        assert await chain.wait_for_block() == START + 1
        with trio.fail_after(100):
            assert await chain.wait_for_head(START + 5) == START + 5
        assert trio.current_time() == pytest.approx(60.0)
        nursery.cancel_scope.cancel()


# -- proxy ------------------------------------------------------------------------------------------------------------


async def test_block_number_and_block(api: Api, chain: SimChain) -> None:
    chain.transfer("USDT", ALICE, BOB, 5)
    chain.mine(2)
    assert await api("proxy", "eth_blockNumber") == {"jsonrpc": "2.0", "id": 83, "result": hex(START + 2)}
    block = (await api("proxy", "eth_getBlockByNumber", tag=hex(START + 1), boolean="false"))["result"]
    assert block["number"] == hex(START + 1)
    assert block["hash"] == chain.block_hash(START + 1)
    assert block["parentHash"] == chain.block_hash(START)
    assert block["timestamp"] == hex(T0 + 12)
    assert block["transactions"] == [chain.transfers(START + 1, START + 1)[0].tx_hash]
    latest = (await api("proxy", "eth_getBlockByNumber", tag="latest", boolean="true"))["result"]
    assert latest["number"] == hex(START + 2) and latest["transactions"] == []
    assert (await api("proxy", "eth_getBlockByNumber", tag=hex(START + 3), boolean="false"))["result"] is None
    bad = await api("proxy", "eth_getBlockByNumber", tag="1001", boolean="false")
    assert bad["error"]["code"] == -32602 and "result" not in bad


# -- getLogs ----------------------------------------------------------------------------------------------------------


async def test_getlogs_encoding_and_log_indexes(api: Api, chain: SimChain) -> None:
    chain.transfer("USDT", ALICE, BOB, 0, tx_hash=TX)
    chain.transfer("USDT", BOB, CAROL, 1_500_000, tx_hash=TX)
    chain.mine()
    body = await api("logs", "getLogs", address=USDT, fromBlock=START, toBlock="latest", topic0=TRANSFER_TOPIC)
    assert body["status"] == "1" and body["message"] == "OK"
    first, second = body["result"]
    assert first == {
        "address": USDT, "topics": [TRANSFER_TOPIC, pad(ALICE), pad(BOB)], "data": "0x" + "0" * 64,
        "blockNumber": hex(START + 1), "blockHash": chain.block_hash(START + 1), "timeStamp": hex(T0 + 12),
        "gasPrice": first["gasPrice"], "gasUsed": first["gasUsed"], "logIndex": "0x",
        "transactionHash": TX, "transactionIndex": "0x",
    }
    assert first["gasPrice"].startswith("0x") and int(first["gasUsed"], 16) > 0
    assert second["logIndex"] == "0x1" and second["transactionIndex"] == "0x" and second["transactionHash"] == TX
    assert second["data"] == "0x" + f"{1_500_000:064x}" and len(second["data"]) == 66
    assert second["topics"][1:] == [pad(BOB), pad(CAROL)]


async def test_getlogs_filters_and_empty(api: Api, chain: SimChain) -> None:
    chain.transfer("USDT", ALICE, BOB, 1)
    chain.transfer("USDT", BOB, CAROL, 2)
    chain.transfer("USDC", CAROL, ALICE, 3)
    chain.mine()
    chain.transfer("USDT", CAROL, BOB, 4)
    chain.mine()

    async def values(**params: Any) -> list[int]:
        query = {"fromBlock": START, "toBlock": START + 10, "topic0": TRANSFER_TOPIC, **params}
        body = await api("logs", "getLogs", **query)
        if body["status"] == "0":
            assert body == {"status": "0", "message": "No records found", "result": []}
        return [int(item["data"], 16) for item in body["result"]]

    assert await values(address=USDT) == [1, 2, 4]
    assert await values(address=USDT, topic1=pad(BOB), topic0_1_opr="and") == [2]
    assert await values(topic2=pad(BOB), topic0_2_opr="and") == [1, 4]
    assert await values(topic1=pad(CAROL), topic1_2_opr="or", topic2=pad(CAROL), topic0_1_opr="and") == [2, 3, 4]
    assert await values(address=USDC, topic1=pad(ALICE), topic0_1_opr="and") == []
    assert await values(address=USDT, toBlock=START + 1) == [1, 2]
    body = await api("logs", "getLogs", address=USDT, fromBlock=START, toBlock="latest", topic0="0x" + "11" * 32)
    assert body == {"status": "0", "message": "No records found", "result": []}
    body = await api("logs", "getLogs", address=USDT, fromBlock=START + 5, toBlock=START + 3, topic0=TRANSFER_TOPIC)
    assert body == {"status": "0", "message": "No records found", "result": []}
    # several topics without an operator, a bad block number, a bad address: status "0" errors, never HTTP 500
    for params in ({"topic1": pad(BOB)}, {"fromBlock": "0x3e8"}, {"toBlock": "abc"}, {"address": "0x12"}):
        body = await api("logs", "getLogs", **{"address": USDT, "fromBlock": START, "toBlock": "latest",
                                               "topic0": TRANSFER_TOPIC, **params})
        assert body["status"] == "0" and body["message"] == "NOTOK" and body["result"].startswith("Error!")


async def test_getlogs_record_cap_and_pages(api: Api, chain: SimChain) -> None:
    chain.transfer_many((USDT, ALICE, BOB, i) for i in range(1_050))
    chain.mine()
    common = {"address": USDT, "fromBlock": START, "toBlock": "latest", "topic0": TRANSFER_TOPIC}
    default = (await api("logs", "getLogs", **common))["result"]
    assert len(default) == 1000 and [int(x["data"], 16) for x in default[:3]] == [0, 1, 2]
    capped = (await api("logs", "getLogs", page=1, offset=5000, **common))["result"]
    assert len(capped) == 1000
    page2 = (await api("logs", "getLogs", page=2, offset=1000, **common))["result"]
    assert [int(x["logIndex"], 16) for x in page2] == list(range(1000, 1050))
    page3 = (await api("logs", "getLogs", page=3, offset=20, **common))["result"]
    assert [int(x["data"], 16) for x in page3] == list(range(40, 60))
    assert await api("logs", "getLogs", page=10, offset=1000, **common) == {
        "status": "0", "message": "No records found", "result": []}
    window = {"status": "0", "message": WINDOW, "result": None}
    assert await api("logs", "getLogs", page=11, offset=1000, **common) == window
    assert await api("logs", "getLogs", page=3, offset=5000, **common) == window
    assert (await api("logs", "getLogs", page="x", offset=10, **common))["status"] == "0"


async def test_getlogs_range_limit(nursery: trio.Nursery, chain: SimChain) -> None:
    api = await start_api(nursery, chain, rate_limit=100, max_range_blocks=10)
    chain.transfer("USDT", ALICE, BOB, 1)
    chain.mine(20)
    common = {"address": USDT, "topic0": TRANSFER_TOPIC}
    assert await api("logs", "getLogs", fromBlock=START, toBlock=START + 10, **common) == {
        "status": "0", "message": TIMEOUT, "result": None}
    assert (await api("logs", "getLogs", fromBlock=START, toBlock=START + 9, **common))["status"] == "1"
    # toBlock above the head is clamped before the range is measured
    assert (await api("logs", "getLogs", fromBlock=START + 15, toBlock=START + 10**6, **common))["status"] == "0"
    assert (await api("logs", "getLogs", fromBlock=START + 15, toBlock=START + 10**6, **common))["message"] == (
        "No records found")


# -- tokentx ----------------------------------------------------------------------------------------------------------


async def test_tokentx_items(api: Api, chain: SimChain) -> None:
    chain.transfer("USDT", ALICE, BOB, 5, tx_hash=TX)
    chain.transfer("USDT", ALICE, BOB, 5, tx_hash=TX)  # identical twin in the same tx: only logIndex tells them apart
    chain.transfer("USDC", BOB, ALICE, 7)
    chain.transfer("USDT", CAROL, CAROL, 1)
    chain.mine(3)
    body = await api("account", "tokentx", address=ALICE.upper().replace("0X", "0x"), startblock=0,
                     endblock=99_999_999, page=1, offset=100, sort="asc")
    assert body["status"] == "1" and body["message"] == "OK"
    items = body["result"]
    assert len(items) == 3
    first = items[0]
    assert TOKENTX_KEYS <= set(first) and len(first) >= 19
    assert all(isinstance(v, str) for item in items for v in item.values())
    assert first == {
        "blockNumber": str(START + 1), "timeStamp": str(T0 + 12), "hash": TX, "nonce": first["nonce"],
        "blockHash": chain.block_hash(START + 1), "from": ALICE, "contractAddress": USDT, "to": BOB, "value": "5",
        "tokenName": "Tether USD", "tokenSymbol": "USDT", "tokenDecimal": "6", "transactionIndex": "0",
        "gas": first["gas"], "gasPrice": first["gasPrice"], "gasUsed": first["gasUsed"],
        "cumulativeGasUsed": first["cumulativeGasUsed"], "input": "deprecated", "confirmations": "3", "logIndex": "0",
    }
    assert first["gasPrice"].isdigit() and first["nonce"].isdigit()
    assert [i["logIndex"] for i in items] == ["0", "1", "2"]
    assert items[2]["tokenSymbol"] == "USDC" and items[2]["tokenName"] == "USD Coin"
    desc = (await api("account", "tokentx", address=ALICE, sort="desc"))["result"]
    assert [i["logIndex"] for i in desc] == ["2", "1", "0"]
    only_usdc = (await api("account", "tokentx", address=ALICE, contractaddress=USDC, sort="asc"))["result"]
    assert [i["value"] for i in only_usdc] == ["7"]
    self_transfer = (await api("account", "tokentx", address=CAROL, sort="asc"))["result"]
    assert len(self_transfer) == 1
    assert await api("account", "tokentx", address=ALICE, startblock=START + 2, endblock="latest", sort="asc") == {
        "status": "0", "message": "No transactions found", "result": []}
    assert await api("account", "tokentx", address="0xnothex", sort="asc") == {
        "status": "0", "message": "NOTOK", "result": "Error! Invalid address format"}
    assert (await api("account", "tokentx", sort="asc"))["result"] == "Error! Invalid address format"
    assert (await api("account", "tokentx", address=ALICE, startblock="1e3"))["status"] == "0"
    assert await api("account", "tokentx", address=ALICE, page=101, offset=100) == {
        "status": "0", "message": WINDOW, "result": None}


async def test_tokentx_paging_and_no_log_index(nursery: trio.Nursery, chain: SimChain) -> None:
    api = await start_api(nursery, chain, rate_limit=100, max_records=4, tokentx_log_index=False)
    for i in range(6):
        chain.transfer("USDT", ALICE, BOB, i)
    chain.mine()
    page1 = (await api("account", "tokentx", address=BOB, page=1, offset=10, sort="asc"))["result"]
    assert [i["value"] for i in page1] == ["0", "1", "2", "3"]
    assert "logIndex" not in page1[0] and len(page1[0]) == 19
    page2 = (await api("account", "tokentx", address=BOB, page=2, offset=4, sort="asc"))["result"]
    assert [i["value"] for i in page2] == ["4", "5"]


# -- other actions ----------------------------------------------------------------------------------------------------


async def test_balance_blockbytime_and_contracts(api: Api, chain: SimChain) -> None:
    chain.transfer("USDT", ALICE, BOB, 500)
    chain.transfer("USDT", BOB, CAROL, 120)
    chain.transfer("USDC", CAROL, BOB, 9)
    chain.mine(5)
    balance = await api("account", "tokenbalance", contractaddress=USDT, address=BOB, tag="latest")
    assert balance == {"status": "1", "message": "OK", "result": "380"}
    assert (await api("block", "getblocknobytime", timestamp=T0 + 30, closest="before"))["result"] == str(START + 2)
    assert (await api("block", "getblocknobytime", timestamp=T0 + 30, closest="after"))["result"] == str(START + 3)
    assert (await api("block", "getblocknobytime", timestamp=T0 + 24, closest="after"))["result"] == str(START + 2)
    assert await api("block", "getblocknobytime", timestamp=T0 + 10**6, closest="after") == {
        "status": "1", "message": "OK", "result": "Error! No closest block found"}
    created = await api("contract", "getcontractcreation", contractaddresses=f"{USDT},{ALICE}")
    assert created["status"] == "1" and [c["contractAddress"] for c in created["result"]] == [USDT]
    assert set(created["result"][0]) == {"contractAddress", "contractCreator", "txHash", "blockNumber", "timestamp",
                                         "contractFactory", "creationBytecode"}
    eoa = await api("contract", "getcontractcreation", contractaddresses=f"{ALICE},{BOB}")
    assert eoa["status"] == "0" and eoa["message"] == "No data found"
    six = ",".join([ALICE] * 6)
    assert (await api("contract", "getcontractcreation", contractaddresses=six))["status"] == "0"


# -- envelope errors, rate limit, faults ------------------------------------------------------------------------------


async def test_v1_chain_key_and_action_errors(api: Api) -> None:
    def notok(text: str) -> dict[str, Any]:
        return {"status": "0", "message": "NOTOK", "result": text}

    v1 = await api.raw("/api", module="proxy", action="eth_blockNumber")
    assert v1.status_code == 200
    assert v1.json() == notok("You are using a deprecated V1 endpoint, switch to Etherscan API V2.")
    assert await api("proxy", "eth_blockNumber", chainid=None) == notok(BAD_CHAIN)
    assert await api("proxy", "eth_blockNumber", chainid="137") == notok(BAD_CHAIN)
    assert await api("proxy", "eth_blockNumber", chainid="1,137") == notok(BAD_CHAIN)
    for paid in ("56", "8453", "10", "43114"):
        assert await api("proxy", "eth_blockNumber", chainid=paid) == notok(PAID)
    assert await api("proxy", "eth_blockNumber", apikey=None) == notok("Missing/Invalid API Key")
    assert await api("proxy", "eth_blockNumber", apikey="nope") == notok("Invalid API Key")
    assert await api("account", "txlistx") == notok("Error! Missing Or invalid Action name")
    assert await api("nomodule", "eth_blockNumber") == notok("Error! Missing Or invalid Action name")
    assert (await api.raw("/elsewhere", module="proxy", action="eth_blockNumber")).status_code == 404
    assert api.fake.calls["proxy.eth_blockNumber"] == 11
    assert all("apikey" not in params for _, _, params in api.fake.log)
    assert api.fake.log[0][1:] == ("proxy.eth_blockNumber", {"chainid": "1", "module": "proxy",
                                                             "action": "eth_blockNumber"})


async def test_rate_limit_sliding_window(nursery: trio.Nursery, chain: SimChain, mock_clock: trio.testing.MockClock,
                                         ) -> None:
    api = await start_api(nursery, chain, api_keys=["k1", "k2"])
    bodies = [await api("proxy", "eth_blockNumber", apikey="k1") for _ in range(3)]
    assert all(b["result"] == hex(START) for b in bodies)
    assert await api("proxy", "eth_blockNumber", apikey="k2") == {"status": "0", "message": "NOTOK",
                                                                  "result": PER_SEC}  # keys share the account limit
    assert api.fake.rate_limited == 1 and api.fake.calls["proxy.eth_blockNumber"] == 4
    mock_clock.jump(0.6)
    assert (await api("proxy", "eth_blockNumber", apikey="k1"))["result"] == PER_SEC  # rejected calls count too
    mock_clock.jump(0.4)  # t=1.0: the four calls of t=0 left the window, the rejected one of t=0.6 did not
    assert (await api("proxy", "eth_blockNumber", apikey="k1"))["result"] == hex(START)
    assert (await api("proxy", "eth_blockNumber", apikey="k1"))["result"] == hex(START)
    assert (await api("proxy", "eth_blockNumber", apikey="k1"))["result"] == PER_SEC
    mock_clock.jump(1.0)
    assert (await api("proxy", "eth_blockNumber", apikey="k1"))["result"] == hex(START)
    assert api.fake.rate_limited == 3


async def test_separate_accounts_and_daily_limit(nursery: trio.Nursery, chain: SimChain,
                                                 mock_clock: trio.testing.MockClock) -> None:
    api = await start_api(nursery, chain, api_keys=["k1", "k2"], accounts={"k2": "other"}, rate_limit=2,
                          daily_limit=3)
    for key in ("k1", "k1", "k2", "k2"):
        assert (await api("proxy", "eth_blockNumber", apikey=key))["result"] == hex(START)
    assert (await api("proxy", "eth_blockNumber", apikey="k2"))["result"] == PER_SEC.replace("3/sec", "2/sec")
    mock_clock.jump(1.0)
    assert (await api("proxy", "eth_blockNumber", apikey="k2"))["result"] == hex(START)  # 3rd accepted call today
    mock_clock.jump(1.0)
    body = await api("proxy", "eth_blockNumber", apikey="k2")
    assert body["status"] == "0" and "Max daily rate limit reached" in body["result"]
    assert (await api("proxy", "eth_blockNumber", apikey="k1"))["result"] == hex(START)


NOTOK_FAULTS = {
    "rate_limit": PER_SEC,
    "max_rate": "Max rate limit reached, please use API Key for higher rate limit",
    "invalid_key": "Invalid API Key",
    "too_many_invalid_keys": "Too many invalid api key attempts, please try again later",
    "busy": "Unexpected err, timeout occurred or server too busy. Please try again later",
    "load_shedding": "Free API access is temporarily unavailable due to unusually high network activity",
    "null_result": None,
}


@pytest.mark.parametrize("fault", sorted(NOTOK_FAULTS))
async def test_notok_faults(api: Api, fault: str) -> None:
    api.fake.inject(fault, count=2)
    for _ in range(2):
        assert await api("proxy", "eth_blockNumber") == {"status": "0", "message": "NOTOK",
                                                         "result": NOTOK_FAULTS[fault]}
    assert api.fake.fault_remaining() == 0
    assert (await api("proxy", "eth_blockNumber"))["result"] == hex(START)


async def test_other_faults(api: Api) -> None:
    fake = api.fake
    fake.inject("daily_limit")
    body = await api("account", "tokentx", address=ALICE)
    assert body["status"] == "0" and "Max daily rate limit reached" in body["result"]
    fake.inject("query_timeout")
    assert await api("logs", "getLogs", address=USDT) == {"status": "0", "message": TIMEOUT, "result": None}
    fake.inject("rpc_text")
    assert await api("proxy", "eth_blockNumber") == {"jsonrpc": "2.0", "id": 83, "result": PER_SEC}
    for status in (502, 503):
        fake.inject(f"html_{status}")
        response = await api.raw(module="proxy", action="eth_blockNumber")
        assert response.status_code == status and response.headers["content-type"] == "text/html"
        assert response.text.startswith("<html>") and str(status) in response.text
    fake.inject("invalid_json")
    response = await api.raw(module="proxy", action="eth_blockNumber")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    fake.inject("reset")
    with pytest.raises(httpx.TransportError):
        await api.raw(module="proxy", action="eth_blockNumber")
    fake.inject("slow", delay=0.05)
    started = trio.current_time()
    assert (await api("proxy", "eth_blockNumber"))["result"] == hex(START)
    assert trio.current_time() - started >= 0.05
    assert fake.fault_remaining() == 0
    with pytest.raises(ValueError):
        fake.inject("gremlins")


async def test_fault_targets_one_action(api: Api) -> None:
    api.fake.inject("busy", count=2, action="logs.getLogs")
    assert api.fake.fault_remaining() == 2
    assert (await api("proxy", "eth_blockNumber"))["result"] == hex(START)
    assert (await api("logs", "getLogs", address=USDT))["result"].startswith("Unexpected err")
    assert api.fake.fault_remaining() == 1
    assert (await api("account", "tokentx", address=ALICE))["message"] == "No transactions found"
    assert (await api("logs", "getLogs", address=USDT))["result"].startswith("Unexpected err")
    assert (await api("logs", "getLogs", address=USDT))["message"] == "No records found"
    assert api.fake.calls["logs.getLogs"] == 3


PARAM_VALUES = st.one_of(
    st.sampled_from(["", "0", "1", "latest", "asc", "desc", "and", "or", "true", "-1", "1e3", "0x10", "9" * 50,
                     USDT, ALICE, pad(ALICE), TRANSFER_TOPIC, f"{USDT},{ALICE}", "proxy", "logs", "account"]),
    st.text(max_size=12),
)
PARAM_NAMES = ["address", "contractaddress", "contractaddresses", "fromBlock", "toBlock", "startblock", "endblock",
               "page", "offset", "sort", "topic0", "topic1", "topic2", "topic3", "topic0_1_opr", "topic1_2_opr",
               "topic0_2_opr", "tag", "boolean", "timestamp", "closest", "chainid"]
ACTIONS = ["proxy.eth_blockNumber", "proxy.eth_getBlockByNumber", "logs.getLogs", "account.tokentx",
           "account.tokenbalance", "block.getblocknobytime", "contract.getcontractcreation", "x.y"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.sampled_from(ACTIONS), params=st.dictionaries(st.sampled_from(PARAM_NAMES), PARAM_VALUES))
def test_garbage_params_get_api_errors_not_exceptions(action: str, params: dict[str, str]) -> None:
    chain = SimChain(start_block=START, start_time=T0)
    chain.transfer("USDT", ALICE, BOB, 3)
    chain.mine(3)
    fake = FakeEtherscan(chain, rate_limit=10**9)
    module, name = action.split(".")
    query = {"chainid": "1", **params, "module": module, "action": name, "apikey": "demo-key"}
    response = trio.run(fake.handle, Request("GET", "/v2/api", query, {}, b""))
    assert response.status == 200
    body = json.loads(response.body)
    assert body.get("status") in ("0", "1") or body.get("jsonrpc") == "2.0"
    if body.get("status") == "0":
        assert body["message"] and (body["result"] is None or isinstance(body["result"], (str, list)))
