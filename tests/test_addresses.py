"""Tests for address parsing, EIP-55 checksums and topic conversion."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from usdt_trio.chain.addresses import (
    AddressError,
    BadChecksum,
    InvalidAddress,
    address_to_topic,
    keccak256,
    looks_like_address,
    parse_address,
    to_checksum,
    topic_to_address,
)

# Vectors from the EIP-55 specification.
EIP55_VECTORS = [
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


def test_keccak256_known_values() -> None:
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    # The ERC-20 Transfer event signature.
    assert (
        keccak256(b"Transfer(address,address,uint256)").hex()
        == "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
    )


@pytest.mark.parametrize("vector", EIP55_VECTORS)
def test_eip55_vectors(vector: str) -> None:
    assert to_checksum(vector.lower()) == vector
    assert to_checksum("0x" + vector[2:].upper()) == vector
    assert parse_address(vector) == vector.lower()


def test_parse_accepts_all_lower_and_all_upper() -> None:
    addr = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
    assert parse_address(addr) == addr
    assert parse_address("0x" + addr[2:].upper()) == addr
    assert parse_address(f"  \n{addr}\t ") == addr


@pytest.mark.parametrize(
    "bad",
    [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD",  # last letter case flipped
        "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",  # second letter case flipped
        "0xfb6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    ],
)
def test_bad_checksum_rejected(bad: str) -> None:
    with pytest.raises(BadChecksum) as info:
        parse_address(bad)
    assert isinstance(info.value, AddressError)
    assert isinstance(info.value, ValueError)
    assert bad in str(info.value)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "0x",
        "hello",
        "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",  # no prefix
        "0X5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",  # upper-case prefix rejected
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea",  # too short
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed00",  # too long
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg",  # non-hex
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae٣",  # non-ASCII digit
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed\nx",
    ],
)
def test_invalid_address_rejected(bad: str) -> None:
    with pytest.raises(InvalidAddress):
        parse_address(bad)


def test_invalid_message_includes_input_but_stays_short() -> None:
    with pytest.raises(InvalidAddress) as info:
        parse_address("<script>")
    assert "<script>" in str(info.value)
    with pytest.raises(InvalidAddress) as info:
        parse_address("x" * 10_000)
    assert len(str(info.value)) < 200


def test_to_checksum_rejects_invalid() -> None:
    with pytest.raises(InvalidAddress):
        to_checksum("0x1234")


def test_looks_like_address() -> None:
    assert looks_like_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
    assert looks_like_address("0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED")
    assert looks_like_address(" 0X5aaeb6053f3e94c9b9a09f33669435e7ef1beaed ")
    assert not looks_like_address("my wallet")
    assert not looks_like_address("0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea")
    assert not looks_like_address("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaez")


def test_topic_round_trip() -> None:
    addr = "0xdac17f958d2ee523a2206206994597c13d831ec7"
    topic = address_to_topic(addr)
    assert topic == "0x000000000000000000000000dac17f958d2ee523a2206206994597c13d831ec7"
    assert len(topic) == 66
    assert topic_to_address(topic) == addr
    assert topic_to_address(topic.upper().replace("0X", "0x", 1)) == addr


@pytest.mark.parametrize(
    "bad",
    [
        "0x000000000000000000000000dac17f958d2ee523a2206206994597c13d831ec",  # 65 chars
        "0x000000000000000000000000dac17f958d2ee523a2206206994597c13d831ec70",  # 67 chars
        "0x000000000000000000000001dac17f958d2ee523a2206206994597c13d831ec7",  # dirty padding
        "1x000000000000000000000000dac17f958d2ee523a2206206994597c13d831ec7",
        "0x000000000000000000000000dac17f958d2ee523a2206206994597c13d831ecg",
    ],
)
def test_topic_to_address_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        topic_to_address(bad)


@given(addresses)
def test_checksum_round_trip(addr: str) -> None:
    checksummed = to_checksum(addr)
    assert checksummed.lower() == addr
    assert to_checksum(checksummed) == checksummed
    assert parse_address(checksummed) == addr.lower()
    assert topic_to_address(address_to_topic(checksummed)) == addr


@given(addresses, st.data())
def test_single_case_flip_detected(addr: str, data: st.DataObject) -> None:
    checksummed = to_checksum(addr)
    letters = [i for i, ch in enumerate(checksummed) if i >= 2 and ch.isalpha()]
    if not letters:
        return
    i = data.draw(st.sampled_from(letters))
    flipped = checksummed[:i] + checksummed[i].swapcase() + checksummed[i + 1 :]
    body = flipped[2:]
    if body in (body.lower(), body.upper()):
        assert parse_address(flipped) == addr  # single-case input is accepted as is
    else:
        with pytest.raises(BadChecksum):
            parse_address(flipped)


@given(st.text(max_size=50))
def test_parse_address_never_crashes_unexpectedly(text: str) -> None:
    try:
        result = parse_address(text)
    except AddressError:
        return
    assert looks_like_address(result) and result == result.lower()
