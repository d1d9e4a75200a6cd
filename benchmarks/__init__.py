"""`orderbridge bench`: throughput, latency and cost per order, measured against the floor set by the APIs."""
