"""Houzz Marketplace (Seller and Vendor programs): connectors and API emulator."""
