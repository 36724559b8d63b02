"""Ethereum address parsing, EIP-55 checksums and log-topic conversion.

Exceptions::

    ValueError
    └── AddressError        any rejected address input (message is user-facing)
        ├── InvalidAddress  not ``0x`` followed by 40 hex digits
        └── BadChecksum     mixed case that fails the EIP-55 check
"""

from __future__ import annotations

import re

from Crypto.Hash import keccak

__all__ = [
    "AddressError",
    "InvalidAddress",
    "BadChecksum",
    "keccak256",
    "to_checksum",
    "parse_address",
    "looks_like_address",
    "topic_to_address",
    "address_to_topic",
    "short_address",
]

_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}", re.ASCII)
_ADDRESS_ANY_PREFIX_RE = re.compile(r"0[xX][0-9a-fA-F]{40}", re.ASCII)
_TOPIC_RE = re.compile(r"0x[0-9a-fA-F]{64}", re.ASCII)
_MAX_SHOWN = 60


def _shown(text: str) -> str:
    """Shorten user input for an error message (callers HTML-escape it)."""
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


class AddressError(ValueError):
    """An address was rejected; ``str(exc)`` is a short user-facing message."""

    def __init__(self, message: str, text: str) -> None:
        super().__init__(message)
        self.text = text


class InvalidAddress(AddressError):
    """The input is not ``0x`` followed by exactly 40 hex digits."""

    def __init__(self, text: str) -> None:
        super().__init__(
            f"“{_shown(text)}” is not an address: expected 0x followed by 40 hex characters.",
            text,
        )


class BadChecksum(AddressError):
    """Mixed-case input whose capitalisation does not match EIP-55."""

    def __init__(self, text: str) -> None:
        super().__init__(
            f"“{_shown(text)}” has a bad checksum (its upper/lower case letters don't match EIP-55). "
            "It probably contains a typo: copy it again from the source.",
            text,
        )


def keccak256(data: bytes) -> bytes:
    """Return the Keccak-256 digest (Ethereum's hash, not NIST SHA3-256)."""
    return keccak.new(digest_bits=256, data=data).digest()


def _checksum_hex(hex40_lower: str) -> str:
    """EIP-55 capitalisation of 40 lowercase hex digits (no prefix)."""
    digest = keccak256(hex40_lower.encode("ascii")).hex()
    return "".join(
        ch.upper() if ch.isalpha() and int(digest[i], 16) >= 8 else ch
        for i, ch in enumerate(hex40_lower)
    )


def to_checksum(address: str) -> str:
    """Return the EIP-55 form of a ``0x`` + 40 hex address given in any case."""
    if not _ADDRESS_RE.fullmatch(address):
        raise InvalidAddress(address)
    return "0x" + _checksum_hex(address[2:].lower())


def parse_address(text: str) -> str:
    """Parse user input into a lowercase ``0x`` address.

    Surrounding whitespace is stripped; the prefix must be ``0x`` (``0X`` is rejected).
    All-lowercase or all-uppercase hex is accepted as is; mixed case must pass EIP-55.
    """
    candidate = text.strip()
    if not _ADDRESS_RE.fullmatch(candidate):
        raise InvalidAddress(candidate)
    body = candidate[2:]
    lower = body.lower()
    if body != lower and body != body.upper() and body != _checksum_hex(lower):
        raise BadChecksum(candidate)
    return "0x" + lower


def looks_like_address(text: str) -> bool:
    """Tell an address attempt from a label: ``0x``/``0X`` + 40 hex, any case, whitespace ignored."""
    return _ADDRESS_ANY_PREFIX_RE.fullmatch(text.strip()) is not None


def topic_to_address(topic: str) -> str:
    """Convert a 32-byte left-padded log topic to a lowercase ``0x`` address."""
    if len(topic) != 66 or not _TOPIC_RE.fullmatch(topic):
        raise ValueError(f"not a 32-byte hex topic: {topic[:80]!r}")
    if topic[2:26].strip("0"):
        raise ValueError(f"topic has non-zero upper 12 bytes: {topic!r}")
    return "0x" + topic[26:].lower()


def address_to_topic(address: str) -> str:
    """Convert an address (validated like :func:`parse_address`) to a 32-byte log topic."""
    return "0x" + "0" * 24 + parse_address(address)[2:]


def short_address(address: str) -> str:
    """``0x1234…abcd``: enough to recognise an address, impossible to copy as a genuine one."""
    return f"{address[:6]}…{address[-4:]}"
