"""orderbridge's CartRover-compatible REST API (/v1): carts push orders and read status and
tracking; warehouses pull orders, acknowledge them, post shipments and push stock. See docs/api.md."""
