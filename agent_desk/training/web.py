"""What the workbench's pages share: who may open them, bounded inputs, the git store of the app."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent_desk.keys import SETTINGS
from agent_desk.request_helpers import wants_json
from agent_desk.security import roles_required
from agent_desk.training.git_store import Author, GitStore
from agent_desk.training.texts import TEXTS

WORKBENCH_ROLES = ("trainer", "supervisor")
workbench_required = roles_required(*WORKBENCH_ROLES)
GIT_STORE = web.AppKey("training_git_store", GitStore)
MAX_TEXT = 500
MAX_QUERY = 100
MAX_PAGE = 1000
MAX_NAME = 100


class BadInput(Exception):
    """A request parameter is invalid; the message (Vietnamese) is shown with a 400."""


def git_store(app: web.Application) -> GitStore:
    if GIT_STORE not in app:
        training = app[SETTINGS].training
        app[GIT_STORE] = GitStore(training.project_dir, training.git_branch)
    return app[GIT_STORE]


def author(request: web.Request) -> Author:
    agent = request["agent"]
    return Author(agent.display_name, agent.username)


def text_param(values: Any, name: str, limit: int, what: str, required: bool = False) -> str:
    raw = values.get(name, "")
    if not isinstance(raw, str):
        raise BadInput(TEXTS.get("param_invalid", what=what))
    if len(raw) > limit:
        raise BadInput(TEXTS.get("param_too_long", what=what, limit=limit))
    if required and not raw.strip():
        raise BadInput(TEXTS.get("param_missing", what=what.lower()))
    return raw


def int_param(values: Any, name: str, default: int | None, low: int, high: int, what: str) -> int:
    raw = values.get(name, "")
    if not isinstance(raw, str):
        raise BadInput(TEXTS.get("param_invalid", what=what))
    raw = raw.strip()
    if not raw and default is not None:
        return default
    if not raw or len(raw) > 9 or not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise BadInput(TEXTS.get("param_out_of_range", what=what, low=low, high=high))
    return int(raw)


def choice_param(values: Any, name: str, allowed: tuple[str, ...], what: str) -> str:
    raw = values.get(name, "")
    if raw == "":
        return ""
    if not isinstance(raw, str) or raw not in allowed:
        raise BadInput(TEXTS.get("param_not_allowed", what=what))
    return raw


def error_page(
    request: web.Request, message: str, status: int = 400, back: str = "/training"
) -> web.Response:
    """A refused request: the desk's error page for browsers, JSON for fetch() callers."""
    import aiohttp_jinja2

    if wants_json(request):
        return web.json_response({"error": "bad_request", "message": message}, status=status)
    return aiohttp_jinja2.render_template(
        "error.html", request, {"message": message, "back": back}, status=status
    )
