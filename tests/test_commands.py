"""Commands as a user sees them, through the real service and the fake Telegram."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from conftest import USER, converse, poll_until, running
from usdt_trio.chain.addresses import to_checksum
from usdt_trio.telegram.commands import parse_command
from usdt_trio.telegram.poller import OFFSET_KEY

WALLET = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
CHECKSUMMED = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
OTHER = "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"


def test_parse_command_forms():
    assert parse_command("/add@UsdtTrioBot 0xabc Savings", "UsdtTrioBot").args == "0xabc Savings"
    assert parse_command("/ADD  x", "UsdtTrioBot").name == "add"
    assert parse_command("/add@OtherBot x", "UsdtTrioBot").addressed_to_other_bot
    assert parse_command("hello", "UsdtTrioBot") is None
    assert parse_command("/list\nmore", None).args == "more"


@given(st.text(max_size=200))
def test_parse_command_never_raises(text):
    parsed = parse_command(text, "UsdtTrioBot")
    assert parsed is None or parsed.name == parsed.name.lower()


async def test_address_forms_and_checksum(fakes, settings_for):
    async with running(settings_for(fakes)):
        [reply] = await converse(fakes.telegram, f"/add {CHECKSUMMED}")
        assert "Watching" in reply
        [reply] = await converse(fakes.telegram, f"/add {WALLET.upper().replace('0X', '0x')}")
        assert "already watch" in reply
        [reply] = await converse(fakes.telegram, "/add 0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
        assert "checksum" in reply and "wrong" in reply
        [reply] = await converse(fakes.telegram, "/add 0x1234")
        assert "not an Ethereum address" in reply
        [reply] = await converse(fakes.telegram, "/add")
        assert "/add 0x" in reply


async def test_add_list_remove_with_escaped_labels(fakes, settings_for):
    async with running(settings_for(fakes)):
        label = "<b>Tom & Jerry</b>"
        [reply] = await converse(fakes.telegram, f"/add@UsdtTrioBot {WALLET} {label}")
        assert label in reply  # shown literally: the fake Telegram would reject unescaped tags
        await converse(fakes.telegram, f"/add {OTHER} Cold")
        [listing] = await converse(fakes.telegram, "/list")
        assert "2 addresses" in listing and label in listing and to_checksum(OTHER) in listing
        [reply] = await converse(fakes.telegram, "/remove cold")
        assert "Stopped watching" in reply and to_checksum(OTHER) in reply
        [reply] = await converse(fakes.telegram, f"/remove {WALLET.upper().replace('0X', '0x')}")
        assert "Stopped watching" in reply
        [reply] = await converse(fakes.telegram, "/remove nothing-here")
        assert "don't watch" in reply
        [listing] = await converse(fakes.telegram, "/list")
        assert "don't watch any" in listing


async def test_wallet_limit(fakes, settings_for):
    async with running(settings_for(fakes, MAX_WALLETS_PER_USER=1)):
        await converse(fakes.telegram, f"/add {WALLET}")
        [reply] = await converse(fakes.telegram, f"/add {OTHER}")
        assert "maximum of 1" in reply


async def test_other_text_groups_and_unknown_commands(fakes, settings_for):
    async with running(settings_for(fakes)) as service:
        [reply] = await converse(fakes.telegram, "hello there")
        assert "/help" in reply
        [reply] = await converse(fakes.telegram, "/frobnicate")
        assert "don't know /frobnicate" in reply
        fakes.telegram.user_sends(USER, "/start", chat_id=-500, chat_type="group")
        fakes.telegram.user_sends(USER, "just chatting", chat_id=-500, chat_type="group")
        [welcome] = await converse(fakes.telegram, "/start")
        assert "Welcome" in welcome
        group = [m.text for m in fakes.telegram.messages_to(-500)]
        assert group == ["I work in private chats only: message me directly."]
        commands = {c["command"] for c in fakes.telegram.commands}
        assert commands == {"start", "add", "list", "remove", "help", "spam"}
        assert not fakes.telegram.webhook_active
        assert await service.store.list_watches(-500) == []


async def test_restart_neither_replays_nor_loses_commands(fakes, settings_for):
    settings = settings_for(fakes)
    async with running(settings) as service:
        await converse(fakes.telegram, f"/add {WALLET}")

        async def offset_stored() -> bool:
            return await service.store.get_value(OFFSET_KEY) is not None
        await poll_until(offset_stored)
        offset = int(await service.store.get_value(OFFSET_KEY))
    fakes.telegram.user_sends(USER, f"/add {OTHER}")  # arrives while the service is down
    async with running(settings) as service:
        [added, reply] = await converse(fakes.telegram, "/list", replies=2)
        assert "Watching" in added

        async def both_confirmed() -> bool:
            return int(await service.store.get_value(OFFSET_KEY)) == offset + 2
        await poll_until(both_confirmed)
    texts = [m.text for m in fakes.telegram.messages_to(USER)]
    assert sum("Watching" in t for t in texts) == 2  # each /add answered once, none replayed
    assert "2 addresses" in reply
