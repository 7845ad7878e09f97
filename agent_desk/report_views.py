"""Routes of the supervisors' reports: /reports (tables and charts) and /reports.csv."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from agent_desk import reports
from agent_desk.handoffs import DeskError
from agent_desk.keys import ENGINE
from agent_desk.request_helpers import error_response
from agent_desk.security import login_required


def _period(request: web.Request) -> reports.Period:
    try:
        return reports.parse_period(request.query.get("from"), request.query.get("to"))
    except reports.ReportError as exc:
        raise DeskError(exc.message, 400) from exc


@login_required(role="supervisor")
async def reports_page(request: web.Request) -> web.StreamResponse:
    try:
        period = _period(request)
    except DeskError as exc:
        return error_response(request, exc, back="/reports")
    report = await reports.build(request.app[ENGINE], period)
    return aiohttp_jinja2.render_template(
        "reports.html",
        request,
        {
            "report": report,
            "charts": reports.charts(report),
            "short": reports.short_duration,
            "max_days": reports.MAX_DAYS,
        },
    )


@login_required(role="supervisor")
async def reports_csv(request: web.Request) -> web.StreamResponse:
    try:
        period = _period(request)
    except DeskError as exc:
        return error_response(request, exc, back="/reports")
    report = await reports.build(request.app[ENGINE], period)
    name = f"bao-cao-cskh-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    return web.Response(
        body=reports.to_csv(report).encode("utf-8"),
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/reports", reports_page)
    app.router.add_get("/reports.csv", reports_csv)
