"""Etherscan API V2 client: one shared httpx client, a CapacityLimiter, a pacer, every documented error form."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import trio

from ..errors import (ApiRejected, ApiUnavailable, ChainApiError, DailyLimitReached, InvalidApiKey, QueryTooLarge,
                      RateLimited)
from .addresses import topic_to_address
from .models import Transfer
from ..budget import DailyBudget
from ..pacing import Pacer
from .tokens import TRANSFER_TOPIC

__all__ = ["EtherscanClient", "BlockHeader", "classify_error", "parse_transfer_log", "read_by_block", "PAGE_SIZE",
           "MAX_WINDOW"]

log = logging.getLogger(__name__)
T = TypeVar("T")
PAGE_SIZE = 1000      # free plan record cap per request
MAX_WINDOW = 10_000   # page × offset must stay ≤ this
RETRIES = 4
FIRST_RETRY_DELAY = 0.5  # seconds; doubles per attempt up to 8 s


def classify_error(text: str) -> ChainApiError:
    """Map an Etherscan error text (from `message` or `result`) to an exception."""
    lower = text.lower()
    if "daily rate limit" in lower:
        return DailyLimitReached(text)
    if "rate limit" in lower or "max calls per sec" in lower:
        return RateLimited(text)
    if "invalid api key" in lower or "invalid api-key" in lower or "api key attempts" in lower:
        return InvalidApiKey(text)
    if "query timeout" in lower or "result window is too large" in lower:
        return QueryTooLarge(text)
    if "server too busy" in lower or "temporarily unavailable" in lower or "try again later" in lower:
        return ApiUnavailable(text)
    return ApiRejected(text or "unknown error")


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """What the scanner needs of a block: its number, hash, parent hash and time."""

    number: int
    hash: str
    parent_hash: str
    timestamp: int


def _hex_int(value: Any) -> int:
    """Etherscan getLogs hex numbers; zero is the bare "0x"."""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError(f"not a hex quantity: {value!r}")
    return int(value, 16) if len(value) > 2 else 0


def parse_transfer_log(item: dict[str, Any], chain_id: int) -> Transfer | None:
    """A getLogs item → Transfer, or None when it is not an ERC-20 Transfer (ERC-721 has 4 topics)."""
    topics = item.get("topics") or []
    if len(topics) != 3 or not isinstance(topics[0], str) or topics[0].lower() != TRANSFER_TOPIC:
        return None
    data = item.get("data") or "0x"
    block_hash = item.get("blockHash")
    return Transfer(
        chain_id=chain_id,
        tx_hash=str(item["transactionHash"]).lower(),
        log_index=_hex_int(item["logIndex"]),
        block_number=_hex_int(item["blockNumber"]),
        block_time=_hex_int(item["timeStamp"]),
        contract=str(item["address"]).lower(),
        sender=topic_to_address(topics[1]),
        recipient=topic_to_address(topics[2]),
        value=_hex_int(data),
        block_hash=block_hash.lower() if isinstance(block_hash, str) and len(block_hash) == 66 else None,
    )


class EtherscanClient:
    """Calls for one chain through one API key. Never puts the key into an exception or a log line."""

    def __init__(self, http: httpx.AsyncClient, *, base_url: str, api_key: str, chain_id: int,
                 limiter: trio.CapacityLimiter, pacer: Pacer, budget: DailyBudget | None = None) -> None:
        self.http = http
        self.base_url = base_url
        self._api_key = api_key
        self.chain_id = chain_id
        self.limiter = limiter
        self.pacer = pacer
        self.budget = budget
        self.calls = 0

    # ---- transport --------------------------------------------------------------------------------------
    async def _get(self, params: dict[str, Any]) -> Any:
        """One HTTP request under the limiter and the pacer; returns decoded JSON or raises ApiUnavailable."""
        query = {"chainid": str(self.chain_id), **params, "apikey": self._api_key}
        async with self.limiter:
            await self.pacer.wait()
            self.calls += 1
            if self.budget is not None:
                self.budget.spend()
            try:
                response = await self.http.get(self.base_url, params=query)
            except httpx.TimeoutException:
                raise ApiUnavailable("request timed out") from None
            except httpx.HTTPError as exc:
                raise ApiUnavailable(f"network error ({type(exc).__name__})") from None
        if response.status_code == 429:
            raise RateLimited("HTTP 429")
        if response.status_code >= 500:
            raise ApiUnavailable(f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise ApiRejected(f"HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise ApiUnavailable("response is not valid JSON") from None

    async def _retrying(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """Retry transient failures with exponential backoff; rate limits also pause the pacer."""
        delay = FIRST_RETRY_DELAY
        for attempt in range(1, RETRIES + 1):
            try:
                return await call()
            except ChainApiError as exc:
                if not exc.retryable or attempt == RETRIES:
                    raise
                if isinstance(exc, RateLimited):
                    self.pacer.penalize(1.0)
                log.debug("%s failed (%s: %s), retry %d in %.1fs", what, type(exc).__name__, exc, attempt, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")

    @staticmethod
    def _list_result(payload: Any) -> list[Any]:
        if not isinstance(payload, dict):
            raise ApiUnavailable("unexpected response shape")
        status, message, result = payload.get("status"), payload.get("message"), payload.get("result")
        if status == "1" and isinstance(result, list):
            return result
        if status == "0" and result == [] and isinstance(message, str) and message.startswith("No "):
            return []
        text = result if isinstance(result, str) else message if isinstance(message, str) else ""
        raise classify_error(text)

    # ---- endpoints --------------------------------------------------------------------------------------
    async def block_number(self) -> int:
        """The chain head (proxy/eth_blockNumber), validated as hex."""
        async def call() -> int:
            payload = await self._get({"module": "proxy", "action": "eth_blockNumber"})
            if not isinstance(payload, dict):
                raise ApiUnavailable("unexpected response shape")
            result = payload.get("result")
            if isinstance(result, str) and result.startswith("0x") and len(result) > 2:
                try:
                    return int(result, 16)
                except ValueError:
                    pass
            error = payload.get("error")
            if isinstance(error, dict):
                raise classify_error(str(error.get("message", "")))
            text = result if isinstance(result, str) else str(payload.get("message") or "")
            raise classify_error(text)
        return await self._retrying(call, "eth_blockNumber")

    async def block_header(self, number: int) -> BlockHeader:
        """proxy/eth_getBlockByNumber without transactions; a block not available yet is ApiUnavailable."""
        async def call() -> BlockHeader:
            payload = await self._get({"module": "proxy", "action": "eth_getBlockByNumber", "tag": hex(number),
                                       "boolean": "false"})
            if not isinstance(payload, dict):
                raise ApiUnavailable("unexpected response shape")
            result = payload.get("result")
            if isinstance(result, dict):
                try:
                    header = BlockHeader(_hex_int(result["number"]), str(result["hash"]).lower(),
                                         str(result["parentHash"]).lower(), _hex_int(result["timestamp"]))
                except (KeyError, ValueError) as exc:
                    raise ApiUnavailable(f"malformed block ({type(exc).__name__})") from None
                if header.number != number or len(header.hash) != 66:
                    raise ApiUnavailable(f"asked for block {number}, got {header.number}")
                return header
            if result is None and "error" not in payload:
                raise ApiUnavailable(f"block {number} is not available yet")
            error = payload.get("error")
            if isinstance(error, dict):
                raise classify_error(str(error.get("message", "")))
            raise classify_error(result if isinstance(result, str) else str(payload.get("message") or ""))
        return await self._retrying(call, f"eth_getBlockByNumber {number}")

    async def token_transfers(self, address: str, start_block: int, end_block: int, *, page: int = 1,
                              offset: int = PAGE_SIZE, sort: str = "asc") -> list[dict[str, Any]]:
        """One page of account/tokentx for ``address`` (every token; raw items)."""
        params = {"module": "account", "action": "tokentx", "address": address, "startblock": str(start_block),
                  "endblock": str(end_block), "page": str(page), "offset": str(offset), "sort": sort}

        async def call() -> list[dict[str, Any]]:
            items = self._list_result(await self._get(params))
            if not all(isinstance(item, dict) for item in items):
                raise ApiUnavailable("malformed tokentx item")
            return items
        return await self._retrying(call, f"tokentx {start_block}-{end_block} p{page}")

    async def contract_creations(self, addresses: list[str]) -> dict[str, int]:
        """contract/getcontractcreation for up to 5 addresses: creation block of each that is a contract."""
        if not 1 <= len(addresses) <= 5:
            raise ValueError("getcontractcreation takes 1 to 5 addresses")
        params = {"module": "contract", "action": "getcontractcreation", "contractaddresses": ",".join(addresses)}

        async def call() -> dict[str, int]:
            payload = await self._get(params)
            if isinstance(payload, dict) and payload.get("status") == "0" and \
                    str(payload.get("message", "")).startswith("No data"):
                return {}   # none of them is a contract
            found = {}
            for item in self._list_result(payload):
                try:
                    found[str(item["contractAddress"]).lower()] = int(str(item["blockNumber"]))
                except (KeyError, ValueError, TypeError) as exc:
                    raise ApiUnavailable(f"malformed contract creation ({type(exc).__name__})") from None
            return found
        return await self._retrying(call, "getcontractcreation")

    async def get_logs(self, contract: str, from_block: int, to_block: int, *, page: int = 1,
                       offset: int = PAGE_SIZE) -> list[dict[str, Any]]:
        """One page of Transfer-topic logs of a contract (raw items, sorted by block and log index)."""
        params = {"module": "logs", "action": "getLogs", "address": contract, "fromBlock": str(from_block),
                  "toBlock": str(to_block), "topic0": TRANSFER_TOPIC, "page": str(page), "offset": str(offset)}

        async def call() -> list[dict[str, Any]]:
            items = self._list_result(await self._get(params))
            if not all(isinstance(item, dict) for item in items):
                raise ApiUnavailable("malformed log item")
            return items
        return await self._retrying(call, f"getLogs {from_block}-{to_block} p{page}")

    async def transfer_logs(self, contract: str, from_block: int, to_block: int) -> list[Transfer]:
        """Every Transfer of ``contract`` in [from_block, to_block]: pages by block cursor, splits on timeouts."""
        found: list[Transfer] = []
        pending = [(from_block, to_block)]
        while pending:
            low, high = pending.pop()
            try:
                found.extend(await self._read_range(contract, low, high))
            except QueryTooLarge:
                if low == high:
                    raise
                middle = (low + high) // 2
                log.debug("getLogs %d-%d too large, splitting", low, high)
                pending.extend([(middle + 1, high), (low, middle)])
        return found

    async def _read_range(self, contract: str, low: int, high: int) -> list[Transfer]:
        async def page(first: int, last: int, number: int) -> list[dict[str, Any]]:
            return await self.get_logs(contract, first, last, page=number)
        raw = await read_by_block(page, _block_of, low, high, f"transfers of {contract}")
        transfers = []
        for item in raw:
            try:
                transfer = parse_transfer_log(item, self.chain_id)
            except (KeyError, ValueError, TypeError) as exc:
                raise ApiUnavailable(f"malformed log item ({type(exc).__name__})") from None
            if transfer is not None and transfer.contract == contract.lower():
                transfers.append(transfer)
        return transfers


async def read_by_block(page: Callable[[int, int, int], Awaitable[list[dict[str, Any]]]],
                        block_of: Callable[[dict[str, Any]], int], low: int, high: int,
                        what: str) -> list[dict[str, Any]]:
    """Every item in [low, high] of an endpoint sorted by block and capped at PAGE_SIZE items per request.

    ``page(first, last, number)`` fetches one page. A full page keeps its complete blocks and restarts at its last
    block; a single block holding a full page is walked page by page up to the page window (page × offset).
    """
    raw: list[dict[str, Any]] = []
    cursor = low
    while cursor <= high:
        items = await page(cursor, high, 1)
        if len(items) < PAGE_SIZE:
            raw.extend(items)
            break
        last_block = block_of(items[-1])
        if last_block > cursor:
            raw.extend(item for item in items if block_of(item) < last_block)
            cursor = last_block
            continue
        raw.extend(items)
        for number in range(2, MAX_WINDOW // PAGE_SIZE + 1):
            batch = await page(cursor, cursor, number)
            raw.extend(batch)
            if len(batch) < PAGE_SIZE:
                break
        else:
            raise QueryTooLarge(f"block {cursor} holds more than {MAX_WINDOW} {what}")
        cursor += 1
    return raw


def _block_of(item: dict[str, Any]) -> int:
    try:
        return _hex_int(item["blockNumber"])
    except (KeyError, ValueError) as exc:
        raise ApiUnavailable(f"malformed log item ({type(exc).__name__})") from None
