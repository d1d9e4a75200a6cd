"""Templates and the small formatting helpers pages share."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from orderbridge.domain.models import utcnow

TEMPLATES = Path(__file__).parent / "templates"

env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def ago(value: datetime | None) -> str:
    """'12 s ago' / 'in 3 s': runner health reads better relative to now."""
    if value is None:
        return "never"
    delta = (utcnow() - value).total_seconds()
    future, secs = delta < 0, abs(delta)
    if secs < 90:
        text = f"{secs:.0f} s"
    elif secs < 5400:
        text = f"{secs / 60:.0f} min"
    elif secs < 172800:
        text = f"{secs / 3600:.0f} h"
    else:
        text = f"{secs / 86400:.0f} days"
    return f"in {text}" if future else f"{text} ago"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


env.filters.update(when=when, ago=ago, pretty=pretty)


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(env.get_template(template).render(**context), status_code=status_code)
