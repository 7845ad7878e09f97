"""Every desk URL, registered in one place: app.py calls `setup_routes`, and no handler module
imports app.py (the page modules depend only on keys, config, the desk and request_helpers)."""

from __future__ import annotations

from aiohttp import web

from agent_desk import (
    assignment_views,
    attachments,
    channel_window_views,
    customer_file_views,
    demo,
    report_views,
    search_views,
    service_api,
    ux,
    views,
)
from agent_desk.training import examples_views, inbox_views, labelling, runs_views


def setup_routes(app: web.Application) -> None:
    views.setup_routes(app)  # login, queue, conversation, canned replies, supervisor, SSE
    demo.setup_routes(app)  # the web chat, when DESK_DEMO_ENABLED
    assignment_views.setup_routes(app)
    search_views.setup_routes(app)
    ux.setup_routes(app)  # timed-out customers' "Gọi lại" marker
    report_views.setup_routes(app)  # supervisors' reports (/reports, /reports.csv)
    channel_window_views.setup_routes(app)  # "Gửi SMS" after Zalo's window
    attachments.setup_routes(app)  # files agents send (issue 18)
    runs_views.setup_routes(app)  # trainers: training, report, activation; its runner starts with the app
    inbox_views.setup_routes(app)  # trainers' workbench (issue 19)
    labelling.setup_routes(app)
    examples_views.setup_routes(app)
    customer_file_views.setup_routes(app)  # customers' images and files, for staff
    service_api.setup_routes(app)  # for the action server: a customer's place in the queue
