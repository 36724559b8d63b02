"""Settings from the environment and `.env`, validated up front (names match usdt_monitor_bot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

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
