"""usdt-trio: Telegram notifications for USDT/USDC transfers, exactly once, on Trio."""

__version__ = "0.1.0"
