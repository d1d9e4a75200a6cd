"""Fixtures: one Houzz sandbox per test module (rate limit off), served over real HTTP."""

from __future__ import annotations

from houzz_support import Admin
from tests.support.sandbox_fixtures import sandbox_fixtures

from orderbridge.connectors.houzz.sandbox import create_app

served, admin, url = sandbox_fixtures(create_app, {"rate_limit": False, "accounts": []}, Admin)
