"""The dashboard: server-rendered pages for merchants and warehouse staff, behind a login."""

from orderbridge.web.dashboard.app import create_dashboard

__all__ = ["create_dashboard"]
