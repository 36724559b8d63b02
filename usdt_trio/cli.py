"""The `usdt-trio` command: run | check | demo. Exit codes: 0 ok/stopped by signal, 78 configuration, 1 unexpected."""

from __future__ import annotations

import argparse
import logging
import sys

import trio

from . import __version__
from .app import run_service
from .checks import run_checks
from .config import Settings, load_settings
from .demo import run_demo
from .errors import ConfigError
from .logs import setup_logging

__all__ = ["main", "EXIT_OK", "EXIT_CONFIG", "EXIT_FAILURE"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h

log = logging.getLogger("usdt_trio")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="usdt-trio", description=__doc__)
    parser.add_argument("--version", action="version", version=f"usdt-trio {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{run,check,demo}")
    commands.add_parser("run", help="run the bot in the foreground (stop with SIGTERM or Ctrl-C)")
    commands.add_parser("check", help="validate configuration and reach Telegram and Etherscan")
    commands.add_parser("demo", help="try the bot against simulated Telegram and Ethereum (no credentials needed)")
    return parser


def _find(exc: BaseException, kind: type[ConfigError]) -> ConfigError | None:
    """The first ``kind`` inside ``exc`` (which may be a nested exception group)."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find(inner, kind)
            if found is not None:
                return found
    return None


def _config_error(message: str) -> int:
    print(f"usdt-trio: configuration error: {message}", file=sys.stderr)
    return EXIT_CONFIG


def _run(settings: Settings) -> int:
    setup_logging(settings.VERBOSE, settings.secrets())
    try:
        trio.run(run_service, settings)
    except Exception as exc:
        config_error = _find(exc, ConfigError)
        if config_error is not None:
            return _config_error(str(config_error))
        log.exception("usdt-trio stopped by an unexpected error")
        return EXIT_FAILURE
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            return trio.run(run_demo)
        try:
            settings = load_settings()
        except ConfigError as exc:
            return _config_error(str(exc))
        return _run(settings) if args.command == "run" else trio.run(run_checks, settings)
    except KeyboardInterrupt:
        return EXIT_OK
