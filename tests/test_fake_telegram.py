"""The fake Telegram Bot API over loopback HTTP, under a virtual clock, and through python-telegram-bot."""

from __future__ import annotations

import datetime as dtm
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import telegram
import trio
import trio.testing
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import BadRequest, ChatMigrated, Conflict, Forbidden, InvalidToken, RetryAfter
from telegram.request import BaseRequest, RequestData

from usdt_trio.testing.fake_telegram import FIRST_UPDATE_ID, FakeTelegram, HtmlError, validate_html
from usdt_trio.testing.http_server import Request, serve_http

TOKEN = "123456:TEST-token_abc"
ALICE, BOB = 1001, 1002
CONFLICT_POLL = ("Conflict: terminated by other getUpdates request; "
                 "make sure that only one bot instance is running")


# ---------------------------------------------------------------- fixtures and helpers

@pytest.fixture
def fake() -> FakeTelegram:
    return FakeTelegram(TOKEN)


@pytest.fixture
async def base_url(fake: FakeTelegram) -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        yield await nursery.start(serve_http, fake.handle)
        nursery.cancel_scope.cancel()


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{base_url}/bot{TOKEN}", timeout=10) as http:
        yield http


async def call(http: httpx.AsyncClient, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
    """POST form-urlencoded like the product does (nested values as JSON strings)."""
    data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    response = await http.post(f"/{method}", data=data)
    return response.status_code, response.json()


async def direct(fake: FakeTelegram, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
    """Call the handler without sockets (for tests under the virtual clock)."""
    fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    response = await fake.handle(Request("POST", f"/bot{TOKEN}/{method}", fields, {}, b""))
    return response.status, json.loads(response.body)


def error(code: int, description: str, **parameters: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    return body | ({"parameters": parameters} if parameters else {})


class HttpxRequest(BaseRequest):
    """A minimal python-telegram-bot transport over a shared httpx.AsyncClient (no asyncio needed)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    @property
    def read_timeout(self) -> float:
        return 5.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = None, write_timeout: Any = None, connect_timeout: Any = None,
                         pool_timeout: Any = None) -> tuple[int, bytes]:
        read = self.read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        response = await self._http.request(method, url, data=request_data.json_parameters if request_data else None,
                                            timeout=httpx.Timeout(5.0, read=read))
        return response.status_code, response.content


@pytest.fixture
async def bot(base_url: str) -> AsyncIterator[telegram.Bot]:
    async with httpx.AsyncClient() as http:
        request = HttpxRequest(http)
        yield telegram.Bot(TOKEN, base_url=f"{base_url}/bot", request=request, get_updates_request=request)


# ---------------------------------------------------------------- envelope

async def test_token_method_names_and_unknown_methods(fake: FakeTelegram, base_url: str,
                                                      client: httpx.AsyncClient) -> None:
    response = await client.post(f"{base_url}/bot123456:WRONG/getMe")
    assert (response.status_code, response.json()) == (401, error(401, "Unauthorized"))
    assert await call(client, "noSuchMethod") == (404, error(404, "Not Found: method not found"))
    status, body = await call(client, "GETME")
    assert status == 200 and body["ok"] is True
    expected = {"id": 7000001, "is_bot": True, "username": "UsdtTrioBot", "can_join_groups": True}
    assert body["result"].items() >= expected.items()
    assert fake.calls["getme"] == 1 and fake.calls["nosuchmethod"] == 1


# ---------------------------------------------------------------- getUpdates

async def test_pending_update_is_returned_at_once_in_telegram_shape(fake: FakeTelegram,
                                                                    client: httpx.AsyncClient) -> None:
    update_id = fake.user_sends(ALICE, "/add@UsdtTrioBot 0xabc", username="alice")
    with trio.fail_after(5):
        status, body = await call(client, "getUpdates", timeout=30)
    assert status == 200 and update_id >= FIRST_UPDATE_ID
    [update] = body["result"]
    message = update["message"]
    assert update["update_id"] == update_id
    assert message["chat"] == {"id": ALICE, "type": "private", "first_name": "Alice", "username": "alice"}
    assert message["from"] == {"id": ALICE, "is_bot": False, "first_name": "Alice", "username": "alice"}
    assert message["text"] == "/add@UsdtTrioBot 0xabc" and isinstance(message["date"], int)
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 16}]
    fake.user_sends(-42, "hello", chat_id=-42, chat_type="group", title="Whales")
    _, body = await call(client, "getUpdates", offset=update_id + 1)
    [group_update] = body["result"]
    assert group_update["message"]["chat"] == {"id": -42, "type": "group", "title": "Whales"}
    assert "entities" not in group_update["message"] and group_update["update_id"] > update_id


async def test_long_poll_holds_until_timeout_then_returns_empty(fake: FakeTelegram,
                                                                client: httpx.AsyncClient) -> None:
    start = trio.current_time()
    with trio.fail_after(5):
        status, body = await call(client, "getUpdates", timeout=1)
    assert (status, body) == (200, {"ok": True, "result": []})
    assert trio.current_time() - start >= 0.9
    assert fake.pending_polls == 0


async def test_long_poll_wakes_when_an_update_arrives(fake: FakeTelegram, client: httpx.AsyncClient) -> None:
    results: list[dict[str, Any]] = []

    async def poll() -> None:
        results.append((await call(client, "getUpdates", timeout=50))[1])

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(poll)
            await fake.wait_until(lambda: fake.pending_polls == 1)
            fake.user_sends(ALICE, "hi")
    assert [u["message"]["text"] for u in results[0]["result"]] == ["hi"]


async def test_offset_confirms_and_unconfirmed_updates_are_redelivered(fake: FakeTelegram,
                                                                       client: httpx.AsyncClient) -> None:
    first = fake.user_sends(ALICE, "one")
    second = fake.user_sends(BOB, "two")
    for _ in range(2):  # not confirmed yet: delivered again (at-least-once)
        _, body = await call(client, "getUpdates")
        assert [u["update_id"] for u in body["result"]] == [first, second]
    _, body = await call(client, "getUpdates", limit=1)
    assert [u["update_id"] for u in body["result"]] == [first]
    _, body = await call(client, "getUpdates", offset=first + 1)
    assert [u["update_id"] for u in body["result"]] == [second]
    assert fake.confirmed_offset == first + 1
    _, body = await call(client, "getUpdates", offset=second + 1)
    assert body["result"] == [] and fake.confirmed_offset == second + 1 and fake.pending_updates == 0
    # negative offset -N keeps only the last N
    ids = [fake.user_sends(ALICE, str(n)) for n in range(3)]
    _, body = await call(client, "getUpdates", offset=-1)
    assert [u["update_id"] for u in body["result"]] == ids[-1:]
    _, body = await call(client, "getUpdates")
    assert [u["update_id"] for u in body["result"]] == ids[-1:]


async def test_a_second_poll_terminates_the_older_one_with_409(fake: FakeTelegram,
                                                               client: httpx.AsyncClient) -> None:
    older: list[tuple[int, dict[str, Any]]] = []

    async def poll() -> None:
        older.append(await call(client, "getUpdates", timeout=50))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(poll)
            await fake.wait_until(lambda: fake.pending_polls == 1)
            assert await call(client, "getUpdates", timeout=0) == (200, {"ok": True, "result": []})
    assert older == [(409, error(409, CONFLICT_POLL))]
    assert fake.pending_polls == 0


async def test_webhook_blocks_polling_until_deleted() -> None:
    fake_with_hook = FakeTelegram(TOKEN, webhook_active=True)
    status, body = await direct(fake_with_hook, "getUpdates")
    assert (status, body) == (409, error(409, "Conflict: can't use getUpdates method while webhook is active; "
                                              "use deleteWebhook to delete the webhook first"))
    fake_with_hook.user_sends(ALICE, "old")
    status, body = await direct(fake_with_hook, "deleteWebhook", drop_pending_updates=True)
    assert (status, body) == (200, {"ok": True, "result": True, "description": "Webhook was deleted"})
    assert not fake_with_hook.webhook_active
    assert await direct(fake_with_hook, "getUpdates") == (200, {"ok": True, "result": []})


async def test_allowed_updates_filters_and_persists(fake: FakeTelegram, client: httpx.AsyncClient) -> None:
    fake.user_sends(ALICE, "hi")
    _, body = await call(client, "getUpdates", allowed_updates=["message"])
    offset = body["result"][-1]["update_id"] + 1
    fake.block_bot(ALICE)  # a my_chat_member update: not wanted
    fake.user_sends(BOB, "hello")
    _, body = await call(client, "getUpdates", offset=offset)  # no allowed_updates: the setting persists
    assert [list(u)[1] for u in body["result"]] == ["message"]
    _, body = await call(client, "getUpdates", offset=offset, allowed_updates=[])  # [] = all types again
    fake.unblock_bot(ALICE)
    _, body = await call(client, "getUpdates", offset=offset)
    assert [list(u)[1] for u in body["result"]] == ["message", "my_chat_member"]


# ---------------------------------------------------------------- sendMessage

@pytest.mark.parametrize(("html", "description"), [
    ("<foo>x</foo>", 'Unsupported start tag "foo" at byte offset 0'),
    ("💵 <br>", 'Unsupported start tag "br" at byte offset 5'),
    ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
    ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
    ("x <b", "Unclosed start tag at byte offset 2"),
    ("Tom & Jerry", "Character entity expected at byte offset 4"),
    ('<a href="https://x.io/?a=1&b=2">x</a>', "Character entity expected at byte offset 26"),
    ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
    ("x</b>", "Unexpected end tag at byte offset 1"),
    ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ("🏟 🏟&lt;<i    aba  =  190azAz-.,", "Unexpected end of name token at byte offset 27"),
    ("🏟 🏟&lt;<i>a</i   ", "Unclosed end tag at byte offset 17"),
])
def test_invalid_html_is_rejected_with_telegrams_text(html: str, description: str) -> None:
    with pytest.raises(HtmlError) as exc:
        validate_html(html)
    assert str(exc.value) == f"Bad Request: can't parse entities: {description}"


def test_valid_html_yields_plain_text() -> None:
    html = ('<b>1 500.00 USDT</b> &lt;in&gt; from <a href="https://etherscan.io/tx/0x1?a=1&amp;b=&quot;2&quot;">'
            '<code>0xAb…</code></a> <i>x</i><s>y</s><u>z</u><tg-spoiler>s</tg-spoiler>'
            '<span class="tg-spoiler">t</span><pre><code class="language-python">p</code></pre>'
            '<blockquote expandable>q</blockquote> &#36;&#x20AC;')
    assert validate_html(html) == "1 500.00 USDT <in> from 0xAb… xyzstpq $€"
    assert validate_html("Tom & Jerry &lt", strict=False) == "Tom & Jerry <"  # what real Telegram tolerates


async def test_send_message_validation_over_http(fake: FakeTelegram, client: httpx.AsyncClient) -> None:
    assert await call(client, "sendMessage", chat_id=555, text="hi") == (400, error(400, "Bad Request: chat not found"))
    fake.user_sends(ALICE, "/start")
    assert await call(client, "sendMessage", chat_id=ALICE, text="<b>x", parse_mode="HTML") == (
        400, error(400, "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\""))
    assert await call(client, "sendMessage", chat_id=ALICE, text="<b> </b>", parse_mode="HTML") == (
        400, error(400, "Bad Request: message text is empty"))
    assert await call(client, "sendMessage", chat_id=ALICE, text="x" * 4097) == (
        400, error(400, "Bad Request: message is too long"))
    markup = {"inline_keyboard": [[{"text": "Remove", "callback_data": "x" * 65}]]}
    assert await call(client, "sendMessage", chat_id=ALICE, text="x", reply_markup=markup) == (
        400, error(400, "Bad Request: BUTTON_DATA_INVALID"))
    assert fake.sent == []
    status, body = await call(client, "sendMessage", chat_id=ALICE, text="&lt;b&gt; " + "y" * 4092, parse_mode="HTML",
                              link_preview_options={"is_disabled": True})
    assert status == 200 and body["result"]["text"] == "<b> " + "y" * 4092
    status, body = await call(client, "sendMessage", chat_id=ALICE, text="<b>literal</b> & co")
    assert status == 200 and body["result"]["text"] == "<b>literal</b> & co"
    assert body["result"]["from"]["is_bot"] is True and body["result"]["chat"]["id"] == ALICE
    assert [m.text for m in fake.messages_to(ALICE)] == ["<b> " + "y" * 4092, "<b>literal</b> & co"]
    assert fake.sent[0].html.startswith("&lt;b&gt;")


async def test_blocked_bot_gets_403_and_a_my_chat_member_update(fake: FakeTelegram,
                                                                 client: httpx.AsyncClient) -> None:
    fake.user_sends(ALICE, "/start")
    fake.block_bot(ALICE)
    assert await call(client, "sendMessage", chat_id=ALICE, text="hi") == (
        403, error(403, "Forbidden: bot was blocked by the user"))
    _, body = await call(client, "getUpdates")
    change = body["result"][-1]["my_chat_member"]
    assert (change["old_chat_member"]["status"], change["new_chat_member"]["status"]) == ("member", "kicked")
    assert change["chat"]["id"] == ALICE and change["new_chat_member"]["user"]["is_bot"] is True
    fake.unblock_bot(ALICE)
    assert (await call(client, "sendMessage", chat_id=ALICE, text="hi"))[0] == 200


async def test_bursting_one_chat_gets_429_and_early_retries_are_counted(fake: FakeTelegram,
                                                                        client: httpx.AsyncClient) -> None:
    fake.user_sends(ALICE, "/start")
    statuses = [(await call(client, "sendMessage", chat_id=ALICE, text=f"m{n}"))[0] for n in range(3)]
    assert statuses == [200, 200, 200]  # a short burst is tolerated
    status, body = await call(client, "sendMessage", chat_id=ALICE, text="m3")
    assert (status, body) == (429, error(429, "Too Many Requests: retry after 1", retry_after=1))
    assert fake.unhonoured_retry_after == 0
    assert (await call(client, "sendMessage", chat_id=ALICE, text="m3"))[0] == 429  # did not wait
    assert (fake.rejected_429, fake.unhonoured_retry_after) == (2, 1)
    assert fake.max_per_chat_in_window(ALICE) == 3 and len(fake.sent) == 3


async def test_private_chat_limit_under_virtual_time(fake: FakeTelegram, autojump_clock: trio.abc.Clock) -> None:
    fake.user_sends(ALICE, "/start")
    for n in range(3):
        assert (await direct(fake, "sendMessage", chat_id=ALICE, text=f"burst {n}"))[0] == 200
    status, body = await direct(fake, "sendMessage", chat_id=ALICE, text="again")
    assert status == 429
    await trio.sleep(body["parameters"]["retry_after"])  # honouring retry_after is enough
    for n in range(5):
        assert (await direct(fake, "sendMessage", chat_id=ALICE, text=f"steady {n}"))[0] == 200
        await trio.sleep(1)
    assert (fake.rejected_429, fake.unhonoured_retry_after) == (1, 0)
    assert fake.max_per_chat_in_window(ALICE, 1.0) == 3
    assert fake.max_per_chat_in_window(ALICE, 5.0) == 7


async def test_group_and_global_limits_under_virtual_time(fake: FakeTelegram,
                                                          autojump_clock: trio.abc.Clock) -> None:
    fake.user_sends(ALICE, "/start", chat_id=-77, chat_type="group")
    for n in range(20):
        assert (await direct(fake, "sendMessage", chat_id=-77, text=f"g{n}"))[0] == 200
        await trio.sleep(0.5)
    status, body = await direct(fake, "sendMessage", chat_id=-77, text="g20")
    assert (status, body["parameters"]) == (429, {"retry_after": 50})  # first one leaves the 60 s window at t=60
    await trio.sleep(50)
    assert (await direct(fake, "sendMessage", chat_id=-77, text="g20"))[0] == 200
    assert fake.max_per_chat_in_window(-77, 60.0) == 20

    users = range(5000, 5031)
    for user in users:
        fake.user_sends(user, "/start")
    await trio.sleep(60)
    statuses = [(await direct(fake, "sendMessage", chat_id=user, text="news"))[0] for user in users]
    assert statuses == [200] * 30 + [429]
    assert (await direct(fake, "sendMessage", chat_id=5030, text="news"))[0] == 429
    assert fake.unhonoured_retry_after == 1
    await trio.sleep(1)
    assert (await direct(fake, "sendMessage", chat_id=5030, text="news"))[0] == 200


async def test_wait_for_messages_wakes_on_accepted_messages(fake: FakeTelegram, client: httpx.AsyncClient) -> None:
    fake.user_sends(ALICE, "/start")
    got: list[list[str]] = []

    async def waiter() -> None:
        got.append([m.text for m in await fake.wait_for_messages(ALICE, 2)])

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await call(client, "sendMessage", chat_id=ALICE, text="one")
            await trio.testing.wait_all_tasks_blocked()
            assert got == []
            await call(client, "sendMessage", chat_id=ALICE, text="two")
    assert got == [["one", "two"]]


# ---------------------------------------------------------------- scripted faults, commands

async def test_fail_next_and_reset_next(fake: FakeTelegram, client: httpx.AsyncClient) -> None:
    fake.user_sends(ALICE, "/start")
    fake.fail_next("sendMessage", 502, "Bad Gateway")
    fake.fail_next("sendmessage", 429, "Too Many Requests: retry after 3", {"retry_after": 3})
    assert await call(client, "sendMessage", chat_id=ALICE, text="x") == (502, error(502, "Bad Gateway"))
    assert await call(client, "sendMessage", chat_id=ALICE, text="x") == (
        429, error(429, "Too Many Requests: retry after 3", retry_after=3))
    assert (await call(client, "sendMessage", chat_id=ALICE, text="x"))[0] == 429  # retry_after 3 not honoured
    assert (fake.rejected_429, fake.unhonoured_retry_after, fake.sent) == (2, 1, [])

    fake.reset_next("getMe")
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post("/getMe")
    assert (await call(client, "getMe"))[0] == 200
    fake.reset_next("sendMessage", after_processing=True)  # delivered, but the reply is lost
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post("/sendMessage", data={"chat_id": str(BOB + 1), "text": "x"})
    fake.user_sends(BOB, "/start")
    fake.reset_next("sendMessage", after_processing=True)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post("/sendMessage", data={"chat_id": str(BOB), "text": "lost reply"})
    assert [m.text for m in fake.sent] == ["lost reply"]
    assert fake.calls["sendmessage"] == 5


@pytest.mark.parametrize(("commands", "description"), [
    ([{"command": "Start", "description": "x"}], "Bad Request: BOT_COMMAND_INVALID"),
    ([{"command": "", "description": "x"}], "Bad Request: command must be non-empty"),
    ([{"command": "a" * 33, "description": "x"}], "Bad Request: command length must not exceed 32"),
    ([{"command": "add", "description": " "}], "Bad Request: command description must be non-empty"),
    ([{"command": "add", "description": "x" * 257}], "Bad Request: command description length must not exceed 256"),
    ([{"command": f"c{n}", "description": "x"} for n in range(101)], "Bad Request: BOT_COMMANDS_TOO_MUCH"),
])
async def test_set_my_commands_validation(fake: FakeTelegram, commands: list[dict[str, str]],
                                          description: str) -> None:
    assert await direct(fake, "setMyCommands", commands=commands) == (400, error(400, description))
    assert fake.commands == []


# ---------------------------------------------------------------- through python-telegram-bot

async def test_python_telegram_bot_round_trip(fake: FakeTelegram, bot: telegram.Bot) -> None:
    with trio.fail_after(10):
        me = await bot.get_me()
        assert (me.username, me.is_bot) == ("UsdtTrioBot", True)
        assert await bot.delete_webhook(drop_pending_updates=False) is True
        assert await bot.set_my_commands([telegram.BotCommand("start", "Start"), telegram.BotCommand("list", "List")])
        assert fake.commands == [{"command": "start", "description": "Start"},
                                 {"command": "list", "description": "List"}]

        fake.user_sends(ALICE, "/start", username="alice")
        [update] = await bot.get_updates(timeout=5, allowed_updates=["message", "callback_query"])
        assert update.message is not None and update.message.text == "/start"
        assert update.message.entities[0].type == telegram.MessageEntity.BOT_COMMAND
        assert update.effective_chat is not None and update.effective_chat.type == "private"

        keyboard = telegram.InlineKeyboardMarkup([[telegram.InlineKeyboardButton("Remove", callback_data="rm:3")]])
        sent = await bot.send_message(ALICE, "<b>+1 500 USDT</b> &amp; more", parse_mode="HTML",
                                      reply_markup=keyboard,
                                      link_preview_options=telegram.LinkPreviewOptions(is_disabled=True))
        assert isinstance(sent, telegram.Message)
        assert (sent.chat.id, sent.text, sent.from_user.is_bot) == (ALICE, "+1 500 USDT & more", True)
        assert fake.sent[0].reply_markup == {"inline_keyboard": [[{"text": "Remove", "callback_data": "rm:3"}]]}

        query_id = fake.user_presses(ALICE, sent.message_id, "rm:3")
        updates = await bot.get_updates(offset=update.update_id + 1, timeout=5)
        query = updates[-1].callback_query
        assert query is not None and (query.id, query.data) == (query_id, "rm:3")
        assert await bot.answer_callback_query(query.id, text="Removed")
        assert fake.callback_answers[query_id]["text"] == "Removed"
        with pytest.raises(BadRequest, match="(?i)query is too old"):
            await bot.answer_callback_query(query.id)
        edited = await bot.edit_message_text("removed", chat_id=ALICE, message_id=sent.message_id)
        assert isinstance(edited, telegram.Message) and fake.sent[0].text == "removed"
        with pytest.raises(BadRequest, match="(?i)message is not modified"):
            await bot.edit_message_text("removed", chat_id=ALICE, message_id=sent.message_id)


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # RetryAfter.retry_after's type
async def test_python_telegram_bot_error_mapping(fake: FakeTelegram, bot: telegram.Bot, base_url: str) -> None:
    fake.user_sends(ALICE, "/start")
    with trio.fail_after(10):
        with pytest.raises(BadRequest, match="(?i)unsupported start tag \"foo\" at byte offset 0"):
            await bot.send_message(ALICE, "<foo>", parse_mode="HTML")
        with pytest.raises(BadRequest, match="(?i)chat not found"):
            await bot.send_message(999, "hi")
        for _ in range(3):
            await bot.send_message(ALICE, "burst")
        with pytest.raises(RetryAfter) as flood:
            await bot.send_message(ALICE, "burst")
        assert flood.value.retry_after in (1, dtm.timedelta(seconds=1))
        fake.user_sends(BOB, "/start")
        fake.block_bot(BOB)
        with pytest.raises(Forbidden, match="(?i)bot was blocked by the user"):
            await bot.send_message(BOB, "hi")

        fake.user_sends(BOB, "/start", chat_id=-5, chat_type="group")
        fake.migrate_group(-5, -1000000000005)
        with pytest.raises(ChatMigrated) as migrated:
            await bot.send_message(-5, "hi")
        assert migrated.value.new_chat_id == -1000000000005
        assert (await bot.send_message(-1000000000005, "hi")).chat.type == "supergroup"

        fake.webhook_active = True
        with pytest.raises(Conflict, match="(?i)webhook is active"):
            await bot.get_updates()

        wrong = telegram.Bot("123456:WRONG", base_url=f"{base_url}/bot", request=bot.request)
        with pytest.raises(InvalidToken):
            await wrong.get_me()
