"""TradeGecko / QuickBooks Commerce: backend connector and API emulator (sandbox)."""
