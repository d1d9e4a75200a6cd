"""Migration 0003 creates exactly the API tables that ledger/schema.py declares."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from orderbridge.ledger import schema as t
from orderbridge.ledger.db import open_ledger

API_TABLES = ("api_keys", "api_key_grants", "api_wms_orders", "api_wms_shipments", "api_wms_stock")


def test_migration_matches_schema(db_url: str) -> None:
    engine = open_ledger(db_url)
    try:
        assert set(API_TABLES) <= set(sa.inspect(engine).get_table_names())
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), t.metadata)
        assert not [d for d in diffs if any(name in str(d) for name in API_TABLES)], diffs
    finally:
        engine.dispose()
