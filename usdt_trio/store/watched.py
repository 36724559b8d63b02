"""The watched set of one chain, held in memory in a compact form: 20-byte keys, one packed int per watch."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

__all__ = ["WatchRef", "WatchedSet"]

_SHIFT = 48                 # start blocks stay below 2**48
_MASK = (1 << _SHIFT) - 1


@dataclass(frozen=True, slots=True)
class WatchRef:
    """What the scanner needs to know about one chat watching one address."""

    chat_id: int
    start_block: int


def _key(address: str) -> bytes:
    return bytes.fromhex(address[2:])


def _pack(chat_id: int, start_block: int) -> int:
    return (chat_id << _SHIFT) | start_block


def _ref(packed: int) -> WatchRef:
    return WatchRef(packed >> _SHIFT, packed & _MASK)


class WatchedSet(Mapping[str, list[WatchRef]]):
    """Lowercase address → refs of the ACTIVE chats watching it. A lookup costs O(1), whatever the size.

    About 130 bytes per watched address (a dict slot, a 20-byte key and a packed int), against several hundred for
    a dict of lists of objects; chats that blocked the bot stay in the set and are filtered at lookup.
    """

    def __init__(self) -> None:
        self._entries: dict[bytes, int | tuple[int, ...]] = {}
        self._inactive: set[int] = set()

    # ---- changes (the Store applies them after the database transaction committed) ----------------------
    def add(self, address: str, chat_id: int, start_block: int) -> None:
        if not 0 <= start_block <= _MASK:
            raise ValueError(f"start block out of range: {start_block}")
        key, packed = _key(address), _pack(chat_id, start_block)
        current = self._entries.get(key)
        if current is None:
            self._entries[key] = packed
            return
        others = tuple(p for p in (current if isinstance(current, tuple) else (current,)) if _ref(p).chat_id != chat_id)
        self._entries[key] = (*others, packed) if others else packed

    def remove(self, address: str, chat_id: int) -> None:
        key = _key(address)
        current = self._entries.get(key)
        if current is None:
            return
        left = tuple(p for p in (current if isinstance(current, tuple) else (current,)) if _ref(p).chat_id != chat_id)
        if not left:
            del self._entries[key]
        else:
            self._entries[key] = left if len(left) > 1 else left[0]

    def set_active(self, chat_id: int, active: bool) -> None:
        if active:
            self._inactive.discard(chat_id)
        else:
            self._inactive.add(chat_id)

    # ---- reading ----------------------------------------------------------------------------------------
    def _refs(self, value: int | tuple[int, ...]) -> list[WatchRef]:
        packed = value if isinstance(value, tuple) else (value,)
        return [ref for ref in map(_ref, packed) if ref.chat_id not in self._inactive]

    def get(self, address: str, default=None):  # type: ignore[override]  # hot path: no exception on a miss
        value = self._entries.get(_key(address)) if len(address) == 42 else None
        if value is None:
            return default
        return self._refs(value) or default

    def __getitem__(self, address: str) -> list[WatchRef]:
        refs = self.get(address)
        if refs is None:
            raise KeyError(address)
        return refs

    def __iter__(self) -> Iterator[str]:
        for key, value in self._entries.items():
            if self._refs(value):
                yield "0x" + key.hex()

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def addresses_before(self, block: int, limit: int | None = None, after: str = "") -> list[str] | None:
        """Active addresses above ``after`` watched by some chat whose start block is below ``block`` (sorted);
        None as soon as there are more than ``limit`` of them."""
        found = []
        floor = bytes.fromhex(after[2:]) if after else b""
        for key, value in self._entries.items():
            if key > floor and any(ref.start_block < block for ref in self._refs(value)):
                found.append("0x" + key.hex())
                if limit is not None and len(found) > limit:
                    return None
        return sorted(found)
