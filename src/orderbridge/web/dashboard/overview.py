"""Overview: runner health per job, orders by status, open alerts, orders per hour."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from starlette.responses import Response

from orderbridge.domain.models import OrderStatus, utcnow
from orderbridge.engine.jobs import JOBS, jobs_for
from orderbridge.ledger import schema as t
from orderbridge.web.dashboard.auth import Ctx
from orderbridge.web.dashboard.scope import merchant_clause

STATUSES = [str(s) for s in OrderStatus]


def runner_health(ctx: Ctx, conn: Any) -> list[dict[str, Any]]:
    """Every job of every visible connection, including jobs that never ran (a stopped runner shows)."""
    js = t.job_state
    state = {(r.connection_id, r.job): r for r in conn.execute(sa.select(js))}
    out = []
    for row in ctx.hub.connections(conn):
        if not ctx.user.is_admin and row.merchant_id != ctx.user.merchant_id:
            continue
        for spec in jobs_for(ctx.hub, row):
            s = state.get((row.id, spec.name))
            out.append({"connection": row.name, "enabled": row.enabled, "job": spec.name, "title": spec.title,
                        "every": row.period(spec.name), "last": s.last_finished_at if s else None,
                        "next": s.next_run_at if s else None, "status": s.last_status if s else "",
                        "error": s.last_error if s else "", "processed": s.last_processed if s else 0,
                        "running": bool(s and s.lease_owner)})
    return out


def overview(ctx: Ctx) -> Response:
    o, c, a = t.orders, t.connections, t.alerts
    now = utcnow()
    with ctx.hub.db.connect() as conn:
        visible = merchant_clause(ctx.user, c.c.merchant_id)
        counts = {str(s): int(n) for s, n in conn.execute(
            sa.select(o.c.status, sa.func.count()).join(c, c.c.id == o.c.connection_id)
            .where(visible).group_by(o.c.status))}
        alerts = conn.execute(
            sa.select(a, c.c.name.label("connection")).outerjoin(c, c.c.id == a.c.connection_id)
            .where(a.c.resolved_at.is_(None), merchant_clause(ctx.user, a.c.merchant_id))
            .order_by(a.c.last_seen_at.desc()).limit(50)).mappings().all()
        since = (now - timedelta(hours=23)).replace(minute=0, second=0, microsecond=0)
        created = conn.execute(sa.select(o.c.created_at).join(c, c.c.id == o.c.connection_id)
                               .where(visible, o.c.created_at >= since)).scalars().all()
        health = runner_health(ctx, conn)
    hours = [since + timedelta(hours=i) for i in range(24)]
    per_hour = dict.fromkeys(hours, 0)
    for at in created:
        per_hour[at.replace(minute=0, second=0, microsecond=0)] = per_hour.get(
            at.replace(minute=0, second=0, microsecond=0), 0) + 1
    peak = max(per_hour.values()) or 1
    failing = [h for h in health if h["status"] == "failed"]
    stale = [h for h in health if h["enabled"] and h["next"] is not None
             and (now - h["next"]).total_seconds() > max(60.0, 3 * h["every"])]
    return ctx.render("overview.html", title="Overview", counts={s: int(counts.get(s, 0)) for s in STATUSES},
                      total=sum(counts.values()), alerts=alerts, health=health, failing=failing,
                      stale=stale, per_hour=[(h, per_hour[h]) for h in hours], peak=peak, jobs=JOBS)
