"""A fake Etherscan API V2 over a SimChain, faithful to shared/specs/chain-apis.md (texts, encodings, limits, faults).

Serve it with ``await nursery.start(serve_http, fake.handle)`` and point a client at ``<base>/v2/api``.

Decisions where the spec is silent:
- The per-second limit is per *account* (the spec: "cumulative over all keys of an account"); by default every key
  in ``api_keys`` belongs to one account, ``accounts`` maps key -> account to split them. Every request with a valid
  key counts toward the sliding 1.0 s window, rejected ones included (as on the real service), so a client that
  retries at once stays locked out until it slows down.
- Missing/unknown keys are rejected before the rate limiter; the limiter runs before chainid/action validation.
- ``proxy`` parameter errors are JSON-RPC ``error`` objects (as from a node); every other error is an HTTP 200
  status "0" envelope. Texts not in the spec's catalogue ("Error! Invalid startblock", ...) are this fake's own.
- tokentx accepts ``contractaddress`` without ``address`` (as Etherscan does); with neither the answer is
  "Error! Invalid address format".
- getLogs: several topics need ``topicA_B_opr`` for each topic B after the first, linking it to the closest earlier
  given topic A that has an operator; the chain is evaluated with "and" binding tighter than "or".
- Offsets above ``max_records`` are clamped; the page window check uses the offset as sent.
- An injected fault's ``delay`` is slept before answering (any fault, not only "slow"). Injected "rate_limit" and
  "rpc_text" always say "(3/sec)" (the catalogue text); the real limiter says ``({rate_limit}/sec)``.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from usdt_trio.chain.tokens import TRANSFER_TOPIC
from usdt_trio.testing.chain import SimChain, SimTransfer, is_address
from usdt_trio.testing.http_server import Request, Response, ResetConnection

RATE_LIMIT_TEXT = "Max calls per sec rate limit reached ({}/sec)"
MAX_RATE_TEXT = "Max rate limit reached, please use API Key for higher rate limit"
DAILY_LIMIT_TEXT = "Max daily rate limit reached. 100000 (100%) of Daily Rate Limit Limit Reached"
INVALID_KEY_TEXT = "Invalid API Key"
MISSING_KEY_TEXT = "Missing/Invalid API Key"
TOO_MANY_BAD_KEYS_TEXT = "Too many invalid api key attempts, please try again later"
BAD_CHAIN_TEXT = ("Missing or unsupported chainid parameter (required for v2 api), "
                  "please see chainlist for the list of supported chainids")
PAID_CHAIN_TEXT = ("Free API access is not supported for this chain. "
                   "Please upgrade your api plan for full chain coverage.")
BAD_ACTION_TEXT = "Error! Missing Or invalid Action name"
BAD_ADDRESS_TEXT = "Error! Invalid address format"
QUERY_TIMEOUT_TEXT = "Query Timeout occured. Please select a smaller result dataset"
BUSY_TEXT = "Unexpected err, timeout occurred or server too busy. Please try again later"
LOAD_SHEDDING_TEXT = "Free API access is temporarily unavailable due to unusually high network activity"
V1_TEXT = "You are using a deprecated V1 endpoint, switch to Etherscan API V2."
WINDOW_TEXT = "Result window is too large, PageNo x Offset size must be less than or equal to 10000"
NO_RECORDS_TEXT = "No records found"
NO_TRANSACTIONS_TEXT = "No transactions found"
NO_DATA_TEXT = "No data found"
NO_CLOSEST_TEXT = "Error! No closest block found"
BAD_TOPIC_TEXT = "Error! Invalid topic format"
BAD_TOPIC_OPR_TEXT = "Error! Missing or invalid topic operator (topicX_Y_opr must be and|or)"
BAD_PAGING_TEXT = "Error! Invalid page or offset"

PAID_ONLY_CHAINS = frozenset({56, 8453, 10, 43114})
PAGE_WINDOW = 10_000
RPC_ID = 83
FAULTS = frozenset({"rate_limit", "max_rate", "daily_limit", "invalid_key", "too_many_invalid_keys", "query_timeout",
                    "busy", "load_shedding", "html_500", "html_502", "html_503", "html_504", "invalid_json", "reset",
                    "slow", "null_result", "rpc_text"})
__all__ = [
    "FakeEtherscan", "FAULTS", "PAID_ONLY_CHAINS", "hex0", "pad_topic",
    "BAD_ACTION_TEXT", "BAD_ADDRESS_TEXT", "BAD_CHAIN_TEXT", "BAD_PAGING_TEXT", "BAD_TOPIC_OPR_TEXT", "BAD_TOPIC_TEXT",
    "BUSY_TEXT", "DAILY_LIMIT_TEXT", "INVALID_KEY_TEXT", "LOAD_SHEDDING_TEXT", "MAX_RATE_TEXT", "MISSING_KEY_TEXT",
    "NO_CLOSEST_TEXT", "NO_DATA_TEXT", "NO_RECORDS_TEXT", "NO_TRANSACTIONS_TEXT", "PAID_CHAIN_TEXT",
    "QUERY_TIMEOUT_TEXT", "RATE_LIMIT_TEXT", "TOO_MANY_BAD_KEYS_TEXT", "V1_TEXT", "WINDOW_TEXT",
]

_DIGITS = re.compile(r"[0-9]{1,30}\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]{1,30}\Z")
_TOPIC = re.compile(r"0x[0-9a-f]{64}\Z")
_PAD = "0x" + "0" * 24
_TRANSFER_SELECTOR = "0xa9059cbb"
_HTML_TITLES = {500: "500 Internal Server Error", 502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable",
                504: "504 Gateway Time-out"}


def hex0(n: int) -> str:
    """Etherscan getLogs number encoding: lowercase hex, and zero is the bare ``"0x"``."""
    return "0x" if n == 0 else hex(n)


def pad_topic(address: str) -> str:
    """A 20-byte address left-padded to a 32-byte topic."""
    return _PAD + address[2:].lower()


class _ApiError(Exception):
    """Internal: abort a request with this JSON payload (after ``delay`` seconds)."""

    def __init__(self, payload: dict[str, Any], delay: float = 0.0) -> None:
        super().__init__(payload)
        self.payload = payload
        self.delay = delay


def _notok(text: str) -> _ApiError:
    return _ApiError({"status": "0", "message": "NOTOK", "result": text})


@dataclass
class _Fault:
    name: str
    remaining: int
    action: str | None
    delay: float


@dataclass(frozen=True, slots=True)
class _TxMeta:
    nonce: int
    gas: int
    gas_price: int
    gas_used: int
    cumulative_gas_used: int


def _tx_meta(t: SimTransfer) -> _TxMeta:
    h = int(t.tx_hash[2:18], 16)
    gas_used = 34_000 + h % 30_000
    return _TxMeta(nonce=(h >> 8) % 5_000, gas=gas_used + (h >> 20) % 40_000,
                   gas_price=1_000_000_000 + (h >> 32) % 40_000_000_000, gas_used=gas_used,
                   cumulative_gas_used=gas_used + t.tx_index * 61_000 + (h >> 40) % 50_000)


class FakeEtherscan:
    """Etherscan API V2 (``/v2/api``) over a SimChain, with rate limits, record caps and injectable faults."""

    def __init__(self, chain: SimChain, *, api_keys: Iterable[str] = ("demo-key",), rate_limit: int = 3,
                 max_records: int = 1000, max_range_blocks: int | None = None, daily_limit: int | None = None,
                 accounts: Mapping[str, str] | None = None, tokentx_log_index: bool = True,
                 query_timeout_delay: float = 0.0) -> None:
        self.chain = chain
        self.api_keys = set(api_keys)
        self.accounts = dict(accounts or {})
        self.rate_limit = rate_limit
        self.max_records = max_records
        self.max_range_blocks = max_range_blocks
        self.daily_limit = daily_limit
        self.tokentx_log_index = tokentx_log_index
        self.query_timeout_delay = query_timeout_delay
        self.calls: collections.Counter[str] = collections.Counter()
        self.log: list[tuple[float, str, dict[str, str]]] = []
        self.rate_limited = 0
        self._faults: list[_Fault] = []
        self._windows: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._daily: collections.Counter[tuple[str, int]] = collections.Counter()
        self._actions = {
            "proxy.eth_blockNumber": self._eth_block_number,
            "proxy.eth_getBlockByNumber": self._eth_get_block_by_number,
            "logs.getLogs": self._get_logs,
            "account.tokentx": self._tokentx,
            "account.tokenbalance": self._tokenbalance,
            "block.getblocknobytime": self._getblocknobytime,
            "contract.getcontractcreation": self._getcontractcreation,
        }

    # -- faults ---------------------------------------------------------------------------------------------------

    def inject(self, fault: str, *, count: int = 1, action: str | None = None, delay: float = 0.0) -> None:
        """Queue ``fault`` for the next ``count`` requests matching ``action`` ("logs.getLogs"; None = any)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {sorted(FAULTS)}")
        if count < 1 or delay < 0:
            raise ValueError("count must be >= 1 and delay >= 0")
        self._faults.append(_Fault(fault, count, action, delay))

    def fault_remaining(self) -> int:
        """How many injected faults are still queued."""
        return sum(f.remaining for f in self._faults)

    def _take_fault(self, key: str) -> _Fault | None:
        for fault in self._faults:
            if fault.action is None or fault.action == key:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _fault_response(self, name: str) -> Response:
        texts = {"rate_limit": RATE_LIMIT_TEXT.format(3), "max_rate": MAX_RATE_TEXT,
                 "daily_limit": DAILY_LIMIT_TEXT, "invalid_key": INVALID_KEY_TEXT,
                 "too_many_invalid_keys": TOO_MANY_BAD_KEYS_TEXT, "busy": BUSY_TEXT,
                 "load_shedding": LOAD_SHEDDING_TEXT}
        if name in texts:
            return Response.json({"status": "0", "message": "NOTOK", "result": texts[name]})
        if name == "query_timeout":
            return Response.json({"status": "0", "message": QUERY_TIMEOUT_TEXT, "result": None})
        if name == "null_result":
            return Response.json({"status": "0", "message": "NOTOK", "result": None})
        if name == "rpc_text":
            return Response.json({"jsonrpc": "2.0", "id": RPC_ID, "result": RATE_LIMIT_TEXT.format(3)})
        if name == "invalid_json":
            return Response(200, b'{"status":"1","message":"OK","result":[{"blockNumber":"0x',
                            {"content-type": "application/json"})
        if name == "reset":
            raise ResetConnection()
        status = int(name.removeprefix("html_"))
        return Response.html(_html_page(status), status)

    # -- request handling -----------------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        """Answer one HTTP request like Etherscan would."""
        params = request.params
        key = f"{params.get('module', '')}.{params.get('action', '')}"
        self.calls[key] += 1
        self.log.append((trio.current_time(), key, {k: v for k, v in params.items() if k != "apikey"}))
        fault = self._take_fault(key)
        if fault is not None:
            if fault.delay > 0:
                await trio.sleep(fault.delay)
            if fault.name != "slow":
                return self._fault_response(fault.name)
        path = request.path.rstrip("/")
        if not path.endswith("/v2/api"):
            if path.endswith("/api"):
                return Response.json({"status": "0", "message": "NOTOK", "result": V1_TEXT})
            return Response.html(_html_page(404), 404)
        try:
            return Response.json(self._dispatch(key, params))
        except _ApiError as exc:
            if exc.delay > 0:
                await trio.sleep(exc.delay)
            return Response.json(exc.payload)

    def _dispatch(self, key: str, params: dict[str, str]) -> dict[str, Any]:
        apikey = params.get("apikey", "")
        if not apikey:
            raise _notok(MISSING_KEY_TEXT)
        if apikey not in self.api_keys:
            raise _notok(INVALID_KEY_TEXT)
        self._check_limits(self.accounts.get(apikey, "default"))
        chainid = params.get("chainid", "")
        if not _DIGITS.match(chainid):
            raise _notok(BAD_CHAIN_TEXT)
        if int(chainid) != self.chain.chain_id:
            raise _notok(PAID_CHAIN_TEXT if int(chainid) in PAID_ONLY_CHAINS else BAD_CHAIN_TEXT)
        handler = self._actions.get(key)
        if handler is None:
            raise _notok(BAD_ACTION_TEXT)
        return handler(params)

    def _check_limits(self, account: str) -> None:
        now = trio.current_time()
        window = self._windows[account]
        while window and window[0] <= now - 1.0:
            window.popleft()
        window.append(now)  # rejected calls count too
        if len(window) > self.rate_limit:
            self.rate_limited += 1
            raise _notok(RATE_LIMIT_TEXT.format(self.rate_limit))
        if self.daily_limit is not None:
            day = (account, int(now // 86_400))
            self._daily[day] += 1
            if self._daily[day] > self.daily_limit:
                raise _notok(DAILY_LIMIT_TEXT)

    # -- parameter parsing ----------------------------------------------------------------------------------------

    def _address(self, params: dict[str, str], name: str, *, required: bool) -> str | None:
        value = params.get(name, "").strip()
        if not value:
            if required:
                raise _notok(BAD_ADDRESS_TEXT)
            return None
        if not is_address(value):
            raise _notok(BAD_ADDRESS_TEXT)
        return value.lower()

    def _block(self, params: dict[str, str], name: str, default: int | None) -> int:
        """A decimal block number or "latest" (head); an upper bound (default None) is clamped to head."""
        value = params.get(name, "")
        head = self.chain.head
        if value == "":
            if default is None:
                return head
            return default
        if value == "latest":
            return head
        if not _DIGITS.match(value):
            raise _notok(f"Error! Invalid {name}")
        return int(value) if default is not None else min(int(value), head)

    def _paging(self, params: dict[str, str]) -> tuple[int, int]:
        """(page, effective offset); raises the page-window error for page x offset > 10000."""
        page_s, offset_s = params.get("page", ""), params.get("offset", "")
        for text in (page_s, offset_s):
            if text and not _DIGITS.match(text):
                raise _notok(BAD_PAGING_TEXT)
        page = int(page_s) if page_s else 1
        offset = int(offset_s) if offset_s else self.max_records
        page, offset = page or 1, offset or self.max_records
        if page * offset > PAGE_WINDOW:
            raise _ApiError({"status": "0", "message": WINDOW_TEXT, "result": None})
        return page, min(offset, self.max_records)

    def _check_range(self, from_block: int, to_block: int) -> None:
        if self.max_range_blocks is not None and to_block - from_block + 1 > self.max_range_blocks:
            raise _ApiError({"status": "0", "message": QUERY_TIMEOUT_TEXT, "result": None}, self.query_timeout_delay)

    # -- proxy ----------------------------------------------------------------------------------------------------

    def _eth_block_number(self, params: dict[str, str]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": RPC_ID, "result": hex(self.chain.head)}

    def _eth_get_block_by_number(self, params: dict[str, str]) -> dict[str, Any]:
        chain = self.chain
        tag = params.get("tag", "")
        tags = {"latest": chain.head, "pending": chain.head, "earliest": 0, "safe": max(0, chain.head - 32),
                "finalized": max(0, chain.head - 64)}
        if tag in tags:
            number = tags[tag]
        elif _HEX.match(tag):
            number = int(tag, 16)
        else:
            message = "hex string without 0x prefix" if tag else "empty hex string"
            raise _ApiError({"jsonrpc": "2.0", "id": RPC_ID,
                             "error": {"code": -32602, "message": f"invalid argument 0: {message}"}})
        full = params.get("boolean", "false").lower() == "true"
        if number > chain.head:
            return {"jsonrpc": "2.0", "id": RPC_ID, "result": None}
        logs = chain.transfers(number, number)
        by_tx: dict[str, SimTransfer] = {}
        for t in logs:
            by_tx.setdefault(t.tx_hash, t)
        gas_used = sum(_tx_meta(t).gas_used for t in by_tx.values())
        txs: list[Any] = list(by_tx) if not full else [self._rpc_tx(t) for t in by_tx.values()]
        h = int(chain.block_hash(number)[2:18], 16)
        block = {
            "number": hex(number), "hash": chain.block_hash(number),
            "parentHash": chain.block_hash(number - 1) if number > 0 else "0x" + "0" * 64,
            "timestamp": hex(chain.block_time(number)), "miner": "0x" + f"{h:040x}"[-40:],
            "gasLimit": hex(30_000_000), "gasUsed": hex(gas_used), "baseFeePerGas": hex(1_000_000_000 + h % 10**10),
            "difficulty": "0x0", "extraData": "0x", "nonce": "0x0000000000000000", "size": hex(600 + 180 * len(txs)),
            "sha3Uncles": "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347",
            "transactions": txs, "uncles": [],
        }
        return {"jsonrpc": "2.0", "id": RPC_ID, "result": block}

    def _rpc_tx(self, t: SimTransfer) -> dict[str, Any]:
        meta = _tx_meta(t)
        return {"blockHash": t.block_hash, "blockNumber": hex(t.block_number), "chainId": hex(self.chain.chain_id),
                "from": t.sender, "gas": hex(meta.gas), "gasPrice": hex(meta.gas_price), "hash": t.tx_hash,
                "input": _transfer_calldata(t), "nonce": hex(meta.nonce), "to": t.contract,
                "transactionIndex": hex(t.tx_index), "type": "0x2", "value": "0x0"}

    # -- logs -----------------------------------------------------------------------------------------------------

    def _get_logs(self, params: dict[str, str]) -> dict[str, Any]:
        contract = self._address(params, "address", required=False)
        from_block = self._block(params, "fromBlock", 0)
        to_block = self._block(params, "toBlock", None)
        groups = self._topic_groups(params)
        page, offset = self._paging(params)
        if from_block > to_block:
            return _empty(NO_RECORDS_TEXT)
        self._check_range(from_block, to_block)
        candidates = self._log_candidates(from_block, to_block, contract, groups)
        matched = [t for t in candidates if _matches(t, groups)]
        items = matched[(page - 1) * offset:page * offset]
        if not items:
            return _empty(NO_RECORDS_TEXT)
        return {"status": "1", "message": "OK", "result": [self._log_item(t) for t in items]}

    def _topic_groups(self, params: dict[str, str]) -> list[list[tuple[int, str]]]:
        """The topic filter as OR-groups of AND-ed (position, topic) conditions."""
        given: list[tuple[int, str]] = []
        for i in range(4):
            value = params.get(f"topic{i}", "").strip().lower()
            if value:
                if not _TOPIC.match(value):
                    raise _notok(BAD_TOPIC_TEXT)
                given.append((i, value))
        if not given:
            return []
        groups = [[given[0]]]
        for k in range(1, len(given)):
            b = given[k][0]
            opr = None
            for a, _ in reversed(given[:k]):
                opr = params.get(f"topic{a}_{b}_opr")
                if opr is not None:
                    break
            if opr == "and":
                groups[-1].append(given[k])
            elif opr == "or":
                groups.append([given[k]])
            else:
                raise _notok(BAD_TOPIC_OPR_TEXT)
        return groups

    def _log_candidates(self, from_block: int, to_block: int, contract: str | None,
                        groups: list[list[tuple[int, str]]]) -> list[SimTransfer]:
        """Transfers that may match: per-address index lookups when every OR-group pins topic1 or topic2."""
        chain = self.chain
        addresses: set[str] = set()
        for group in groups:
            pinned = [value for position, value in group if position in (1, 2)]
            if not pinned:
                return chain.transfers(from_block, to_block, contract=contract)
            if not pinned[0].startswith(_PAD):
                continue  # not a padded address: matches nothing
            addresses.add("0x" + pinned[0][26:])
        if not groups:
            return chain.transfers(from_block, to_block, contract=contract)
        found: dict[tuple[int, int], SimTransfer] = {}
        for address in addresses:
            for t in chain.transfers(from_block, to_block, contract=contract, address=address):
                found[(t.block_number, t.log_index)] = t
        return [found[k] for k in sorted(found)]

    def _log_item(self, t: SimTransfer) -> dict[str, Any]:
        meta = _tx_meta(t)
        return {
            "address": t.contract,
            "topics": [TRANSFER_TOPIC, pad_topic(t.sender), pad_topic(t.recipient)],
            "data": f"0x{t.value:064x}",
            "blockNumber": hex0(t.block_number),
            "blockHash": t.block_hash,
            "timeStamp": hex0(t.timestamp),
            "gasPrice": hex0(meta.gas_price),
            "gasUsed": hex0(meta.gas_used),
            "logIndex": hex0(t.log_index),
            "transactionHash": t.tx_hash,
            "transactionIndex": hex0(t.tx_index),
        }

    # -- account --------------------------------------------------------------------------------------------------

    def _tokentx(self, params: dict[str, str]) -> dict[str, Any]:
        contract = self._address(params, "contractaddress", required=False)
        address = self._address(params, "address", required=contract is None)
        start = self._block(params, "startblock", 0)
        end = self._block(params, "endblock", None)
        page, offset = self._paging(params)
        descending = params.get("sort", "asc").lower() == "desc"
        rows = self.chain.transfers(start, end, contract=contract, address=address) if start <= end else []
        if descending:
            rows = rows[::-1]
        items = rows[(page - 1) * offset:page * offset]
        if not items:
            return _empty(NO_TRANSACTIONS_TEXT)
        return {"status": "1", "message": "OK", "result": [self._tokentx_item(t) for t in items]}

    def _tokentx_item(self, t: SimTransfer) -> dict[str, str]:
        meta = _tx_meta(t)
        token = self.chain.tokens.get(t.contract)
        item = {
            "blockNumber": str(t.block_number),
            "timeStamp": str(t.timestamp),
            "hash": t.tx_hash,
            "nonce": str(meta.nonce),
            "blockHash": t.block_hash,
            "from": t.sender,
            "contractAddress": t.contract,
            "to": t.recipient,
            "value": str(t.value),
            "tokenName": token.name if token else "",
            "tokenSymbol": token.symbol if token else "",
            "tokenDecimal": str(token.decimals) if token else "0",
            "transactionIndex": str(t.tx_index),
            "gas": str(meta.gas),
            "gasPrice": str(meta.gas_price),
            "gasUsed": str(meta.gas_used),
            "cumulativeGasUsed": str(meta.cumulative_gas_used),
            "input": "deprecated",
            "confirmations": str(self.chain.head - t.block_number + 1),
        }
        if self.tokentx_log_index:
            item["logIndex"] = str(t.log_index)
        return item

    def _tokenbalance(self, params: dict[str, str]) -> dict[str, Any]:
        contract = self._address(params, "contractaddress", required=True)
        address = self._address(params, "address", required=True)
        assert contract is not None and address is not None
        tag = params.get("tag", "latest")
        if tag != "latest":
            raise _notok("Error! Invalid tag")
        return {"status": "1", "message": "OK", "result": str(self.chain.balance(contract, address))}

    # -- block, contract ------------------------------------------------------------------------------------------

    def _getblocknobytime(self, params: dict[str, str]) -> dict[str, Any]:
        timestamp = params.get("timestamp", "")
        if not _DIGITS.match(timestamp):
            raise _notok("Error! Invalid timestamp")
        closest = params.get("closest", "before")
        if closest not in ("before", "after"):
            raise _notok("Error! Invalid closest parameter")
        number = self.chain.block_at_time(int(timestamp), before=closest == "before")
        return {"status": "1", "message": "OK", "result": NO_CLOSEST_TEXT if number is None else str(number)}

    def _getcontractcreation(self, params: dict[str, str]) -> dict[str, Any]:
        raw = [a.strip() for a in params.get("contractaddresses", "").split(",") if a.strip()]
        if not raw or not all(is_address(a) for a in raw):
            raise _notok(BAD_ADDRESS_TEXT)
        if len(raw) > 5:
            raise _notok("Error! Maximum of 5 contract addresses allowed")
        items = []
        for address in raw:
            info = self.chain.contracts.get(address.lower())
            if info is None:
                continue
            items.append({"contractAddress": info.address, "contractCreator": info.creator, "txHash": info.tx_hash,
                          "blockNumber": str(info.block_number), "timestamp": str(info.timestamp),
                          "contractFactory": info.factory, "creationBytecode": info.bytecode})
        if not items:
            return {"status": "0", "message": NO_DATA_TEXT, "result": None}
        return {"status": "1", "message": "OK", "result": items}


def _empty(text: str) -> dict[str, Any]:
    return {"status": "0", "message": text, "result": []}


def _matches(t: SimTransfer, groups: list[list[tuple[int, str]]]) -> bool:
    if not groups:
        return True
    topics = (TRANSFER_TOPIC, pad_topic(t.sender), pad_topic(t.recipient))
    return any(all(pos < 3 and topics[pos] == value for pos, value in group) for group in groups)


def _transfer_calldata(t: SimTransfer) -> str:
    return f"{_TRANSFER_SELECTOR}{'0' * 24}{t.recipient[2:]}{t.value:064x}"


def _html_page(status: int) -> str:
    title = _HTML_TITLES.get(status, f"{status} Not Found" if status == 404 else f"{status} Error")
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            f"<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n")
