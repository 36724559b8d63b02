"""Settings: required variables, validation messages that name the variable (never the value), `.env`, old names."""

from __future__ import annotations

from pathlib import Path

import pytest

from usdt_trio.config import Settings, load_settings
from usdt_trio.errors import ConfigError

TOKEN = "987654321:SECRET-bot-token-never-shown"
API_KEY = "SECRETAPIKEY0123456789NEVERSHOWN"

OLD_BOT_ONLY = {
    "MORALIS_API_KEY": "moralis-old-key",
    "SPAM_DETECTION_DEBUG": "true",
    "SPAM_MIN_SCORE": "0.75",
    "USDT_CONTRACT_ADDRESS": "0xdAC17F958D2ee523a2206206994597C13D831ec7",
    "USDC_CONTRACT_ADDRESS": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
    "USDT_DECIMALS": "6",
    "MAX_TRANSACTIONS_PER_CHECK": "10",
    "ETHERSCAN_REQUEST_DELAY": "0.2",
    "BLOCKSCOUT_BASE_URL": "https://eth.blockscout.com/api",
    "BLOCKSCOUT_API_KEY": "blockscout-old-key",
    "FALLBACK_FAILURE_THRESHOLD": "3",
    "FALLBACK_COOLDOWN_SECONDS": "300",
    "RATE_LIMITER_BURST": "5",
    "BOT_SESSION_CONNECTION_LIMIT": "10",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variable of ours (or of the old bot) from the real environment, and no stray `.env` in the cwd."""
    for name in [*Settings.model_fields, *OLD_BOT_ONLY]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("ETHERSCAN_API_KEY", API_KEY)


def config_error(**env: str) -> str:
    """The ConfigError message load_settings raises with ``env`` set on top of the current environment."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        with pytest.raises(ConfigError) as info:
            load_settings()
    return str(info.value)


def assert_one_line_without_secrets(message: str) -> None:
    assert message and "\n" not in message and "\r" not in message
    assert TOKEN not in message and API_KEY not in message


def test_both_required_variables_missing_are_named():
    message = config_error()
    assert "TELEGRAM_BOT_TOKEN" in message and "ETHERSCAN_API_KEY" in message
    assert_one_line_without_secrets(message)


@pytest.mark.parametrize("missing", ["TELEGRAM_BOT_TOKEN", "ETHERSCAN_API_KEY"])
def test_one_required_variable_missing_is_named(required, monkeypatch, missing):
    monkeypatch.delenv(missing)
    message = config_error()
    assert missing in message
    other = ({"TELEGRAM_BOT_TOKEN", "ETHERSCAN_API_KEY"} - {missing}).pop()
    assert other not in message
    assert_one_line_without_secrets(message)


@pytest.mark.parametrize(("name", "value"), [
    ("CONFIRMATIONS", "-1"),
    ("CONFIRMATIONS", "two-blocks"),
    ("CHECK_INTERVAL_SECONDS", "abc"),
    ("CHECK_INTERVAL_SECONDS", "-12.5"),
    ("CHECK_INTERVAL_SECONDS", "-0.25"),
    ("CHECK_INTERVAL_SECONDS", "86400"),
    ("VERBOSE", "maybe"),
    ("BLOCKSCOUT_ENABLED", "perhaps"),
    ("ETHERSCAN_BASE_URL", "ftp://x"),
    ("ETHERSCAN_BASE_URL", "api.etherscan.io/v2/api"),
    ("TELEGRAM_API_URL", "telegram-somewhere"),
    ("ETHERSCAN_RATE_LIMIT", "-31"),
    ("ETHERSCAN_MAX_CONCURRENCY", "lots"),
    ("MAX_WALLETS_PER_USER", "-5"),
    ("RATE_LIMIT_MAX_CALLS", "-42"),
    ("RATE_LIMIT_WINDOW_SECONDS", "soon"),
    ("MAX_TRANSACTION_AGE_DAYS", "-77"),
])
def test_invalid_value_gives_one_line_naming_the_variable_not_the_value(required, name, value):
    message = config_error(**{name: value})
    assert name in message
    assert value not in message
    assert_one_line_without_secrets(message)
    # only the bad variable is blamed
    assert "TELEGRAM_BOT_TOKEN" not in message and "ETHERSCAN_API_KEY" not in message


@pytest.mark.parametrize("name", ["CHECK_INTERVAL_SECONDS", "ETHERSCAN_RATE_LIMIT", "ETHERSCAN_MAX_CONCURRENCY",
                                  "MAX_WALLETS_PER_USER", "RATE_LIMIT_MAX_CALLS", "RATE_LIMIT_WINDOW_SECONDS",
                                  "MAX_TRANSACTION_AGE_DAYS"])
def test_zero_is_rejected_where_it_makes_no_sense(required, name):
    message = config_error(**{name: "0"})
    assert message.startswith(f"{name}:")
    assert_one_line_without_secrets(message)


def test_several_invalid_values_are_all_named_on_one_line(required):
    bad = {"CONFIRMATIONS": "-1", "CHECK_INTERVAL_SECONDS": "abc", "VERBOSE": "maybe", "ETHERSCAN_BASE_URL": "ftp://x"}
    message = config_error(**bad)
    for name, value in bad.items():
        assert name in message and value not in message
    assert_one_line_without_secrets(message)


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_blank_token_is_rejected_by_name_and_the_key_is_not_shown(monkeypatch, blank):
    monkeypatch.setenv("ETHERSCAN_API_KEY", API_KEY)
    message = config_error(TELEGRAM_BOT_TOKEN=blank, CONFIRMATIONS="-1")
    assert "TELEGRAM_BOT_TOKEN" in message and "CONFIRMATIONS" in message
    assert_one_line_without_secrets(message)


def test_blank_api_key_is_rejected_by_name_and_the_token_is_not_shown(monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    message = config_error(ETHERSCAN_API_KEY="  ", VERBOSE="maybe")
    assert "ETHERSCAN_API_KEY" in message and "VERBOSE" in message
    assert_one_line_without_secrets(message)


def test_secrets_are_not_in_the_settings_repr(required):
    settings = load_settings()
    assert settings.bot_token == TOKEN and settings.api_key == API_KEY
    for text in (repr(settings), str(settings), repr(settings.model_dump())):
        assert TOKEN not in text and API_KEY not in text
    assert set(settings.secrets()) == {TOKEN, API_KEY}


def test_defaults(required):
    settings = load_settings()
    assert settings.ETHERSCAN_BASE_URL == "https://api.etherscan.io/v2/api"
    assert settings.TELEGRAM_API_URL == "https://api.telegram.org"
    assert settings.CONFIRMATIONS >= 0 and settings.CHECK_INTERVAL_SECONDS > 0
    assert settings.VERBOSE is False and settings.BLOCKSCOUT_ENABLED is False
    assert settings.DB_PATH.name.endswith(".sqlite3")


def test_fractional_interval_zero_confirmations_and_false_flags_are_accepted(required, monkeypatch, tmp_path):
    values = {"CHECK_INTERVAL_SECONDS": "0.5", "CONFIRMATIONS": "0", "BLOCKSCOUT_ENABLED": "false",
              "VERBOSE": "true", "RATE_LIMIT_WINDOW_SECONDS": "1.5", "ETHERSCAN_RATE_LIMIT": "5",
              "ETHERSCAN_MAX_CONCURRENCY": "2", "MAX_WALLETS_PER_USER": "7", "RATE_LIMIT_MAX_CALLS": "4",
              "MAX_TRANSACTION_AGE_DAYS": "3", "DB_PATH": str(tmp_path / "bot.sqlite3"),
              "ETHERSCAN_BASE_URL": "http://127.0.0.1:8545/v2/api/", "TELEGRAM_API_URL": "https://tg.example/"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.CHECK_INTERVAL_SECONDS == 0.5
    assert settings.CONFIRMATIONS == 0
    assert settings.BLOCKSCOUT_ENABLED is False and settings.VERBOSE is True
    assert settings.RATE_LIMIT_WINDOW_SECONDS == 1.5
    assert (settings.ETHERSCAN_RATE_LIMIT, settings.ETHERSCAN_MAX_CONCURRENCY, settings.MAX_WALLETS_PER_USER,
            settings.RATE_LIMIT_MAX_CALLS, settings.MAX_TRANSACTION_AGE_DAYS) == (5, 2, 7, 4, 3)
    assert settings.DB_PATH == tmp_path / "bot.sqlite3"
    # a trailing slash is dropped, so `{TELEGRAM_API_URL}/bot<token>/<method>` has no double slash
    assert settings.ETHERSCAN_BASE_URL == "http://127.0.0.1:8545/v2/api"
    assert settings.TELEGRAM_API_URL == "https://tg.example"


def test_dotenv_in_the_working_directory_is_read_and_real_variables_win(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text(
        f"TELEGRAM_BOT_TOKEN={TOKEN}\n"
        f"ETHERSCAN_API_KEY={API_KEY}\n"
        "CONFIRMATIONS=5\n"
        "CHECK_INTERVAL_SECONDS=30\n"
        "VERBOSE=true\n", encoding="utf-8")
    monkeypatch.setenv("CONFIRMATIONS", "0")
    monkeypatch.setenv("ETHERSCAN_API_KEY", "from-the-real-environment")
    settings = load_settings()
    assert settings.bot_token == TOKEN                         # only in .env
    assert settings.CHECK_INTERVAL_SECONDS == 30.0 and settings.VERBOSE is True
    assert settings.CONFIRMATIONS == 0                         # real env beats .env
    assert settings.api_key == "from-the-real-environment"


def test_dotenv_of_another_directory_is_not_read(monkeypatch, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".env").write_text(f"TELEGRAM_BOT_TOKEN={TOKEN}\nETHERSCAN_API_KEY={API_KEY}\n")
    message = config_error()
    assert "TELEGRAM_BOT_TOKEN" in message and "ETHERSCAN_API_KEY" in message


def test_invalid_value_in_dotenv_is_named_without_the_value(tmp_path):
    (tmp_path / ".env").write_text(f"TELEGRAM_BOT_TOKEN={TOKEN}\nETHERSCAN_API_KEY={API_KEY}\nCONFIRMATIONS=-3\n")
    message = config_error()
    assert "CONFIRMATIONS" in message and "-3" not in message
    assert_one_line_without_secrets(message)


def test_old_bot_dotenv_starts(tmp_path):
    """The old bot's whole .env (variables we use, plus many we don't) is accepted as it is."""
    lines = [f"TELEGRAM_BOT_TOKEN={TOKEN}", f"ETHERSCAN_API_KEY={API_KEY}", "DB_PATH=usdt_monitor.db",
             "CHECK_INTERVAL_SECONDS=60", "MAX_TRANSACTION_AGE_DAYS=7", "VERBOSE=false",
             "ETHERSCAN_BASE_URL=https://api.etherscan.io/v2/api", "BLOCKSCOUT_ENABLED=false",
             "RATE_LIMIT_MAX_CALLS=10", "RATE_LIMIT_WINDOW_SECONDS=60",
             *(f"{name}={value}" for name, value in OLD_BOT_ONLY.items())]
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    settings = load_settings()
    assert settings.CHECK_INTERVAL_SECONDS == 60.0 and settings.BLOCKSCOUT_ENABLED is False
    assert settings.DB_PATH == Path("usdt_monitor.db")
    assert not hasattr(settings, "MORALIS_API_KEY")


def test_old_bot_variables_in_the_environment_are_ignored(required, monkeypatch):
    for name, value in OLD_BOT_ONLY.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.bot_token == TOKEN
    dumped = settings.model_dump()
    assert not set(OLD_BOT_ONLY) & set(dumped)


def test_old_bot_contract_cache_size_is_honoured(required, monkeypatch):
    monkeypatch.setenv("CONTRACT_CREATION_CACHE_SIZE", "250")
    assert load_settings().CONTRACT_CREATION_CACHE_SIZE == 250


def test_overrides_take_precedence_over_the_environment(required, monkeypatch):
    monkeypatch.setenv("CONFIRMATIONS", "9")
    assert load_settings(CONFIRMATIONS=1).CONFIRMATIONS == 1
    with pytest.raises(ConfigError, match="CONFIRMATIONS"):
        load_settings(CONFIRMATIONS=-1)
