"""Telegram side: transport, poller, commands, rendering, sender."""

import os

# PTB >= 22.2 returns timedeltas for time periods only when this is set; without it every 429 emits a warning.
os.environ.setdefault("PTB_TIMEDELTA", "true")
