"""Holded (Invoice API v1) backend: orders become sales receipts, invoices or sales orders."""
