"""Fixtures: one JOOR sandbox per test module (no demo account), served over real HTTP."""

from __future__ import annotations

from joor_support import Admin
from tests.support.sandbox_fixtures import sandbox_fixtures

from orderbridge.connectors.joor.sandbox import create_app

served, admin, url = sandbox_fixtures(create_app, {"accounts": [], "seed": 7}, Admin)
