"""In-process fakes (simulated chain, Etherscan V2, Telegram Bot API) for tests, the demo and benchmarks."""
