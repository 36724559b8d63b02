"""The `usdt-trio` command as a process: exit codes, signals, secrets kept out of stderr, `check`, `demo`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import time

import trio

from conftest import API_KEY, TOKEN, USER
from usdt_trio import __version__
from usdt_trio.config import Settings

BIN = Path(sys.executable).with_name("usdt-trio")
WALLET = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
STRANGER = "0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb"
TOKEN_SECRET_PART = TOKEN.split(":", 1)[1]


def child_env(**values: str) -> dict[str, str]:
    """This process's environment without any of our variables, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    env.update(values)
    return env


def fake_env(fakes, tmp_path: Path, **values: str) -> dict[str, str]:
    """Environment of a child that talks to the fakes, with a temporary database."""
    return child_env(**{
        "TELEGRAM_BOT_TOKEN": TOKEN, "ETHERSCAN_API_KEY": API_KEY, "ETHERSCAN_BASE_URL": fakes.etherscan_url,
        "TELEGRAM_API_URL": fakes.telegram_url, "DB_PATH": str(tmp_path / "bot.sqlite3"),
        "CHECK_INTERVAL_SECONDS": "0.2", "CONFIRMATIONS": "0", "VERBOSE": "true", **values})


def assert_no_secrets(text: str, *secrets: str) -> None:
    for secret in (TOKEN, TOKEN_SECRET_PART, API_KEY, *secrets):
        assert secret not in text


async def usdt_trio(tmp_path: Path, env: dict[str, str], *args: str, timeout: float = 20.0,
                    ) -> subprocess.CompletedProcess[bytes]:
    """Run the command to completion (awaiting, so the fakes in this process keep serving it)."""
    with trio.fail_after(timeout):
        return await trio.run_process([str(BIN), *args], env=env, cwd=tmp_path, check=False,
                                      capture_stdout=True, capture_stderr=True)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- configuration errors: exit 78, one line


def test_console_script_is_installed():
    assert BIN.is_file(), BIN


@pytest.mark.parametrize(("values", "named"), [
    ({}, "TELEGRAM_BOT_TOKEN"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN}, "ETHERSCAN_API_KEY"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "ETHERSCAN_API_KEY": API_KEY, "CONFIRMATIONS": "-1"}, "CONFIRMATIONS"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "ETHERSCAN_API_KEY": API_KEY, "CHECK_INTERVAL_SECONDS": "abc"},
     "CHECK_INTERVAL_SECONDS"),
    ({"TELEGRAM_BOT_TOKEN": "   ", "ETHERSCAN_API_KEY": API_KEY}, "TELEGRAM_BOT_TOKEN"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "ETHERSCAN_API_KEY": API_KEY, "ETHERSCAN_BASE_URL": "ftp://x"},
     "ETHERSCAN_BASE_URL"),
])
async def test_run_with_bad_configuration_exits_78_with_one_line(tmp_path, values, named):
    result = await usdt_trio(tmp_path, child_env(**values), "run")
    assert result.returncode == 78
    stderr = result.stderr.decode()
    assert stderr.count("\n") == 1 and stderr.endswith("\n"), stderr
    assert named in stderr and "configuration error" in stderr
    assert_no_secrets(stderr + result.stdout.decode())


async def test_run_reads_dotenv_in_working_directory(tmp_path):
    (tmp_path / ".env").write_text(f"TELEGRAM_BOT_TOKEN={TOKEN}\nETHERSCAN_API_KEY={API_KEY}\nVERBOSE=maybe\n"
                                   "MORALIS_API_KEY=old\nMAX_TRANSACTIONS_PER_CHECK=10\n")
    result = await usdt_trio(tmp_path, child_env(), "run")
    assert result.returncode == 78
    stderr = result.stderr.decode()
    # the required variables came from .env; only the bad one (and none of the old bot's) is blamed
    assert "VERBOSE" in stderr and "TELEGRAM_BOT_TOKEN" not in stderr and "MORALIS" not in stderr
    assert_no_secrets(stderr)


async def test_run_with_unusable_database_path_exits_78_naming_db_path(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    env = child_env(TELEGRAM_BOT_TOKEN=TOKEN, ETHERSCAN_API_KEY=API_KEY, DB_PATH=str(tmp_path / "a-file" / "x.db"),
                    TELEGRAM_API_URL=f"http://127.0.0.1:{closed_port()}",
                    ETHERSCAN_BASE_URL=f"http://127.0.0.1:{closed_port()}/v2/api")
    result = await usdt_trio(tmp_path, env, "run")
    assert result.returncode == 78
    stderr = result.stderr.decode()
    assert "DB_PATH" in stderr and "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if "DB_PATH" in line][0].startswith("usdt-trio: configuration error")
    assert_no_secrets(stderr)


async def test_run_with_token_rejected_by_telegram_exits_78(fakes, tmp_path):
    wrong = "111111:WRONG-token-also-secret"
    result = await usdt_trio(tmp_path, fake_env(fakes, tmp_path, TELEGRAM_BOT_TOKEN=wrong), "run")
    assert result.returncode == 78
    stderr = result.stderr.decode()
    assert "TELEGRAM_BOT_TOKEN was rejected" in stderr
    assert_no_secrets(stderr, wrong, "WRONG-token-also-secret")


# ---------------------------------------------------------------- signals: exit 0 within 2 s, no secrets in logs


async def run_then_signal(fakes, tmp_path: Path, signum: signal.Signals) -> tuple[int, float, str]:
    """Start `usdt-trio run` against the fakes, use it a little, then signal it during a pending long poll.

    Returns (exit code, seconds from signal to exit, stderr).
    """
    stderr_path = tmp_path / "stderr.log"
    with open(stderr_path, "wb") as stderr:
        process = await trio.lowlevel.open_process([str(BIN), "run"], env=fake_env(fakes, tmp_path), cwd=tmp_path,
                                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                   stderr=stderr)
    try:
        telegram = fakes.telegram
        with trio.fail_after(20):
            await telegram.wait_until(lambda: telegram.pending_polls > 0)
            telegram.user_sends(USER, f"/add {WALLET} Savings")
            await telegram.wait_for_messages(USER, 1)
            fakes.etherscan.inject("busy", action="logs.getLogs")   # a retried call is logged at DEBUG
            fakes.chain.transfer("USDT", STRANGER, WALLET, 1_250_500_000)
            fakes.chain.mine()
            messages = await telegram.wait_for_messages(USER, 2)
            assert "1,250.5 USDT" in messages[1].text
            await telegram.wait_until(lambda: telegram.pending_polls > 0)
        assert process.returncode is None
        process.send_signal(signum)
        signalled = trio.current_time()
        with trio.fail_after(10):
            code = await process.wait()
        elapsed = trio.current_time() - signalled
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    print(f"{signum.name}: exit {code} after {elapsed:.3f}s")
    return code, elapsed, stderr_path.read_text(errors="replace")


@pytest.mark.parametrize("signum", [pytest.param(signal.SIGTERM, id="SIGTERM"),
                                    pytest.param(signal.SIGINT, id="SIGINT")])
async def test_signal_during_long_poll_exits_0_within_2s_and_logs_no_secrets(fakes, tmp_path, signum):
    code, elapsed, stderr = await run_then_signal(fakes, tmp_path, signum)
    assert code == 0, stderr
    assert elapsed < 2.0
    # VERBOSE=true: there is plenty logged (DEBUG included), and none of it holds a secret
    assert "DEBUG" in stderr and "running" in stderr and f"{signum.name} received" in stderr
    assert "usdt-trio stopped" in stderr
    assert "Traceback" not in stderr
    assert_no_secrets(stderr)


# ---------------------------------------------------------------- check


async def test_check_against_the_fakes_passes(fakes, tmp_path):
    result = await usdt_trio(tmp_path, fake_env(fakes, tmp_path), "check")
    stdout = result.stdout.decode()
    assert result.returncode == 0, stdout + result.stderr.decode()
    lines = stdout.splitlines()
    assert len(lines) == 4 and all(line.startswith("ok ") for line in lines), stdout
    assert "@UsdtTrioBot" in stdout and f"head is block {fakes.chain.head}" in stdout
    assert fakes.telegram.calls["getme"] == 1 and fakes.etherscan.calls["proxy.eth_blockNumber"] == 1
    assert_no_secrets(stdout + result.stderr.decode())


async def test_check_reports_how_far_behind_the_scanner_is(fakes, tmp_path):
    """The head lag and the catch-up backlog saved by the last run are shown by `check`."""
    import sqlite3

    from usdt_trio.store.db import open_store

    async with open_store(tmp_path / "bot.sqlite3"):
        pass
    conn = sqlite3.connect(str(tmp_path / "bot.sqlite3"))
    with conn:
        conn.execute("INSERT INTO checkpoints(chain_id, block, updated_at) VALUES (1, ?, 0)", (fakes.chain.head - 5,))
        conn.execute("INSERT INTO scan_gaps(chain_id, from_block, to_block) VALUES (1, 100, 199)")
        conn.execute("INSERT INTO kv(key, value) VALUES ('etherscan.calls_today', ?)",
                     (f"{int(time.time()) // 86400}:1234",))
    conn.close()
    result = await usdt_trio(tmp_path, fake_env(fakes, tmp_path), "check")
    stdout = result.stdout.decode()
    assert result.returncode == 0, stdout + result.stderr.decode()
    assert (f"scanner: checked up to block {fakes.chain.head - 5}, 5 blocks behind the head, "
            "100 older blocks still to catch up; 1,234 of 100,000 Etherscan calls used today") in stdout


async def test_check_with_wrong_token_exits_78_and_names_the_variable(fakes, tmp_path):
    wrong = "222222:ANOTHER-wrong-token"
    result = await usdt_trio(tmp_path, fake_env(fakes, tmp_path, TELEGRAM_BOT_TOKEN=wrong), "check")
    stdout = result.stdout.decode()
    assert result.returncode == 78, stdout
    assert "TELEGRAM_BOT_TOKEN was rejected" in stdout
    assert any(line.startswith("ok ") and "etherscan" in line for line in stdout.splitlines())
    assert_no_secrets(stdout + result.stderr.decode(), wrong, "ANOTHER-wrong-token")


async def test_check_with_wrong_api_key_exits_78(fakes, tmp_path):
    wrong = "WRONGAPIKEY9876543210"
    result = await usdt_trio(tmp_path, fake_env(fakes, tmp_path, ETHERSCAN_API_KEY=wrong), "check")
    stdout = result.stdout.decode()
    assert result.returncode == 78, stdout
    assert "ETHERSCAN_API_KEY was rejected" in stdout
    assert any(line.startswith("ok ") and "telegram" in line for line in stdout.splitlines())
    assert_no_secrets(stdout + result.stderr.decode(), wrong)


async def test_check_with_unreachable_etherscan_exits_1(fakes, tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/v2/api"
    started = trio.current_time()
    result = await usdt_trio(tmp_path, fake_env(fakes, tmp_path, ETHERSCAN_BASE_URL=url), "check", timeout=25)
    print(f"check with unreachable Etherscan took {trio.current_time() - started:.1f}s")
    stdout = result.stdout.decode()
    assert result.returncode == 1, stdout
    failed = [line for line in stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and "etherscan" in failed[0] and url in failed[0]
    assert_no_secrets(stdout + result.stderr.decode())


# ---------------------------------------------------------------- version, demo


async def test_python_m_version(tmp_path):
    with trio.fail_after(20):
        result = await trio.run_process([sys.executable, "-m", "usdt_trio", "--version"], env=child_env(),
                                        cwd=tmp_path, check=False, capture_stdout=True, capture_stderr=True)
    assert result.returncode == 0
    assert result.stdout.decode().strip() == f"usdt-trio {__version__}"


async def test_demo_plays_the_conversation(tmp_path):
    result = await usdt_trio(tmp_path, child_env(), "demo", timeout=45)
    stdout = result.stdout.decode()
    assert result.returncode == 0, stdout + result.stderr.decode()
    assert "/start" in stdout and "Welcome" in stdout
    assert "Incoming 1,250.5 USDT" in stdout
    assert "Outgoing 300 USDC" in stdout and "Incoming 7 USDC" in stdout
    assert "42 USDT" not in stdout.split("no longer watched", 1)[1]
