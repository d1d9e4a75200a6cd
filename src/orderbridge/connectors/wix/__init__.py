"""Wix eCommerce as an order source: connector (orders, fulfillments, stock, webhooks) and sandbox."""
