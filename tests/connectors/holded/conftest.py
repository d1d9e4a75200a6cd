"""Fixtures: one Holded sandbox per test module (rate limit off), served over real HTTP."""

from __future__ import annotations

from holded_support import Admin
from tests.support.sandbox_fixtures import sandbox_fixtures

from orderbridge.connectors.holded.sandbox import create_app

served, admin, url = sandbox_fixtures(create_app, {"rate_limit_enabled": False, "accounts": []}, Admin, reset="reset")
