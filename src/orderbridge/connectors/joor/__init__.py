"""JOOR: a B2B wholesale marketplace (order download and inventory push over its v2 API)."""
