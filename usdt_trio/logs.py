"""Logging setup: one line per event, httpx quiet, and secrets redacted from every record."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

__all__ = ["setup_logging", "RedactingFilter"]

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class RedactingFilter(logging.Filter):
    """Replaces every known secret in a record's final text (message, args and traceback) with ***."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self._clean(message), None
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        return True


def setup_logging(verbose: bool, secrets: Iterable[str] = (), stream=None) -> logging.Handler:
    """Configure the root logger once; returns the handler (tests capture through it)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("httpx", "httpcore", "hpack", "telegram", "h11"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
