"""Exception hierarchy of usdt-trio.

UsdtTrioError
├── ConfigError                 bad or missing configuration (exit code 78)
└── ChainApiError               a chain data API call failed
    ├── ApiUnavailable          transport fault, timeout, HTTP 5xx, invalid JSON, "server too busy" (retry)
    ├── RateLimited             per-second or generic rate limit (back off, retry)
    ├── DailyLimitReached       the plan's daily quota is used up (wait long)
    ├── QueryTooLarge           query timeout / result window too large (split the range)
    ├── InvalidApiKey           the key was rejected (configuration)
    └── ApiRejected             any other error text (bad chain, bad action, bad address, ...)
"""

from __future__ import annotations

__all__ = [
    "UsdtTrioError", "ConfigError", "ChainApiError", "ApiUnavailable", "RateLimited",
    "DailyLimitReached", "QueryTooLarge", "InvalidApiKey", "ApiRejected",
]


class UsdtTrioError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(UsdtTrioError):
    """Configuration is missing or invalid; the message names the variable, never its value."""


class ChainApiError(UsdtTrioError):
    """A chain data API call failed; the message never contains the API key."""

    retryable = False


class ApiUnavailable(ChainApiError):
    """Network failure, timeout, HTTP 5xx, unparsable body, or an explicit 'try again later'."""

    retryable = True


class RateLimited(ChainApiError):
    """The per-second (or generic) rate limit was hit."""

    retryable = True


class DailyLimitReached(ChainApiError):
    """The daily call quota is exhausted."""


class QueryTooLarge(ChainApiError):
    """The query covered too much data (timeout or page window); narrow the range."""


class InvalidApiKey(ChainApiError):
    """The API key was rejected."""


class ApiRejected(ChainApiError):
    """The API answered with an error that retrying will not fix."""
