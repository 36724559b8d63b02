"""Settings from the environment and `.env`, validated up front (names match usdt_monitor_bot)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError
from .monitor.spam import DEFAULT_WEIGHTS, SpamSettings

__all__ = ["Settings", "load_settings", "default_db_path"]


def default_db_path() -> Path:
    """The SQLite file under the platform's user data directory."""
    return Path(platformdirs.user_data_dir("usdt-trio", appauthor=False)) / "usdt-trio.sqlite3"


class Settings(BaseSettings):
    """Every knob of the service. Durations are seconds; amounts never appear here."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      case_sensitive=True, validate_default=True, env_ignore_empty=True)

    TELEGRAM_BOT_TOKEN: SecretStr
    ETHERSCAN_API_KEY: SecretStr
    ETHERSCAN_BASE_URL: str = "https://api.etherscan.io/v2/api"
    TELEGRAM_API_URL: str = "https://api.telegram.org"
    DB_PATH: Path = Field(default_factory=default_db_path)
    CHECK_INTERVAL_SECONDS: float = Field(12.0, gt=0, le=3600)
    CONFIRMATIONS: int = Field(2, ge=0, le=1000)
    ETHERSCAN_RATE_LIMIT: int = Field(3, ge=1, le=1000)
    ETHERSCAN_MAX_CONCURRENCY: int = Field(3, ge=1, le=100)
    ETHERSCAN_DAILY_QUOTA: int = Field(100_000, ge=100)
    MAX_WALLETS_PER_USER: int = Field(50, ge=1, le=100_000)
    RATE_LIMIT_MAX_CALLS: int = Field(10, ge=1)
    RATE_LIMIT_WINDOW_SECONDS: float = Field(60.0, gt=0)
    MAX_TRANSACTION_AGE_DAYS: int = Field(7, ge=1, le=3650)
    VERBOSE: bool = False
    BLOCKSCOUT_ENABLED: bool = False
    # address-poisoning screen (monitor/spam.py): thresholds, then one weight per flag (0 turns a flag off)
    CONTRACT_CREATION_CACHE_SIZE: int = Field(1000, ge=0)
    SPAM_SCORE_THRESHOLD: int = Field(50, ge=1, le=100)
    SPAM_DUST_THRESHOLD: Decimal = Field(Decimal("0.1"), ge=0)
    SPAM_TIMING_WINDOW_SECONDS: int = Field(1200, ge=0)
    SPAM_PREFIX_MATCH: int = Field(3, ge=1, le=20)
    SPAM_SUFFIX_MATCH: int = Field(4, ge=1, le=20)
    SPAM_NEW_CONTRACT_BLOCKS: int = Field(20, ge=0)
    SPAM_RAPID_CYCLING_SENDERS: int = Field(3, ge=2)
    SPAM_RAPID_CYCLING_WINDOW_SECONDS: int = Field(1800, ge=0)
    SPAM_WEIGHT_DUST: int = Field(50, ge=0, le=100)
    SPAM_WEIGHT_ZERO_VALUE: int = Field(50, ge=0, le=100)
    SPAM_WEIGHT_TIMING: int = Field(25, ge=0, le=100)
    SPAM_WEIGHT_SIMILAR_TO_LAST_SENDER: int = Field(40, ge=0, le=100)
    SPAM_WEIGHT_LOOKALIKE_RECENT_SENDER: int = Field(40, ge=0, le=100)
    SPAM_WEIGHT_NEW_SENDER: int = Field(15, ge=0, le=100)
    SPAM_WEIGHT_NEW_CONTRACT: int = Field(35, ge=0, le=100)
    SPAM_WEIGHT_RAPID_CYCLING: int = Field(30, ge=0, le=100)
    SPAM_WEIGHT_LOOKALIKE_COUNTERPARTY: int = Field(60, ge=0, le=100)
    SPAM_WEIGHT_LOOKALIKE_OWN: int = Field(60, ge=0, le=100)
    SPAM_WEIGHT_ZERO_VALUE_OUTGOING: int = Field(60, ge=0, le=100)

    @field_validator("TELEGRAM_BOT_TOKEN", "ETHERSCAN_API_KEY")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("ETHERSCAN_BASE_URL", "TELEGRAM_API_URL")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
            raise ValueError("must be an http(s) URL")
        return value

    @property
    def bot_token(self) -> str:
        return self.TELEGRAM_BOT_TOKEN.get_secret_value()

    @property
    def api_key(self) -> str:
        return self.ETHERSCAN_API_KEY.get_secret_value()

    def spam_settings(self) -> SpamSettings:
        """The poisoning screen's settings from the SPAM_* variables."""
        numerator, denominator = self.SPAM_DUST_THRESHOLD.as_integer_ratio()
        weights = {code: getattr(self, f"SPAM_WEIGHT_{code.upper()}") for code in DEFAULT_WEIGHTS}
        return SpamSettings(threshold=self.SPAM_SCORE_THRESHOLD, dust_numerator=numerator,
                            dust_denominator=denominator, timing_window=self.SPAM_TIMING_WINDOW_SECONDS,
                            prefix=self.SPAM_PREFIX_MATCH, suffix=self.SPAM_SUFFIX_MATCH,
                            new_contract_blocks=self.SPAM_NEW_CONTRACT_BLOCKS,
                            cycling_senders=self.SPAM_RAPID_CYCLING_SENDERS,
                            cycling_window=self.SPAM_RAPID_CYCLING_WINDOW_SECONDS, weights=weights)

    def secrets(self) -> list[str]:
        """Values that must never reach a log line."""
        return [s for s in (self.bot_token, self.api_key) if s]


def _describe(error: dict[str, Any]) -> str:
    name = ".".join(str(part) for part in error["loc"]) or "settings"
    if error["type"] == "missing":
        return f"{name} is required but not set"
    message = error["msg"].removeprefix("Value error, ")
    return f"{name}: {message}"


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (and `.env`); raise ConfigError with one line per bad variable, never the value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(e) for e in exc.errors(include_input=False, include_url=False))) from None
