"""Labelling a group of the inbox: pick the intent (each shown with examples), mark entities, check the
new example with the `make validate` checks, save it into the intent's topic file as one git commit.

GET  /training/groups/{id}          the group's page with the labelling form
POST /training/groups/{id}/label    action=check: show the findings; action=save: refuse on an error,
                                    ask to confirm warnings, else write + commit and mark the group
POST /training/check                the same check for fetch() callers (JSON) or a plain form
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from agent_desk.keys import ENGINE, SETTINGS
from agent_desk.request_helpers import wants_json
from agent_desk.training import inbox, nlu_edit
from agent_desk.training.git_store import GitError
from agent_desk.training.inbox_views import group_id
from agent_desk.training.texts import TEXTS
from agent_desk.training.web import (
    MAX_TEXT,
    BadInput,
    author,
    error_page,
    git_store,
    text_param,
    workbench_required,
)
from trainer.project import Project

log = logging.getLogger(__name__)
ENTITY_ROWS = 3
MAX_VALUE = 100
# Entities only buttons fill (never typed by customers): not offered for marking.
BUTTON_ONLY_ENTITIES = {"candidate_ref", "csat_score"}
EXAMPLES_SHOWN = 3


class NeedsConfirmation(Exception):
    def __init__(self, plan: nlu_edit.Plan) -> None:
        super().__init__("warnings")
        self.plan = plan


class Refused(Exception):
    def __init__(self, plan: nlu_edit.Plan) -> None:
        super().__init__("errors")
        self.plan = plan


def entity_types(project: Project) -> list[str]:
    return sorted(project.domain.entities - BUTTON_ONLY_ENTITIES)


def intent_choices(project: Project) -> list[dict[str, Any]]:
    """Every label a trainer may choose, with a few of its examples (shown on expand)."""
    by_intent: dict[str, list[str]] = {}
    for e in project.train_examples():
        shown = by_intent.setdefault(e.name, [])
        if len(shown) < EXAMPLES_SHOWN:
            shown.append(e.plain)
    return [{"name": n, "examples": by_intent.get(n, [])} for n in nlu_edit.labels(project)]


def read_example(form: Any, project: Project) -> tuple[str, str, list[dict[str, str]]]:
    """(raw text, annotated example, entity rows as typed) from the form; BadInput/EditRefused."""
    raw = text_param(form, "text", MAX_TEXT, TEXTS.get("field_sentence"), required=True)
    text = nlu_edit.clean_text(raw)
    spans: list[tuple[int, int, str]] = []
    rows: list[dict[str, str]] = []
    allowed = set(entity_types(project))
    for k in range(1, ENTITY_ROWS + 1):
        entity = text_param(form, f"entity_{k}", 64, TEXTS.get("field_entity_type")).strip()
        value = text_param(form, f"value_{k}", MAX_VALUE, TEXTS.get("field_entity_value")).strip()
        rows.append({"entity": entity, "value": value})
        if not entity and not value:
            continue
        if not entity or not value:
            raise BadInput(TEXTS.get("entity_row_incomplete", row=k))
        if entity not in allowed:
            raise BadInput(TEXTS.get("entity_not_listed", entity=entity))
        value = nlu_edit.textnorm.clean_example(value)
        at = text.casefold().find(value.casefold())
        if at < 0:
            raise nlu_edit.EditRefused(TEXTS.get("entity_value_not_found", value=value, entity=entity))
        spans.append((at, at + len(value), entity))
    return raw, nlu_edit.annotate(text, spans, allowed), rows


async def _project(request: web.Request) -> Project:
    return await asyncio.to_thread(nlu_edit.load, request.app[SETTINGS].training.project_dir)


def findings_json(plan: nlu_edit.Plan) -> dict[str, Any]:
    return {
        "ok": not plan.errors,
        "example": plan.example,
        "file": plan.path.name,
        "errors": [f.message for f in plan.errors],
        "warnings": [f.message for f in plan.warnings],
    }


async def _group_or_404(request: web.Request) -> dict[str, Any]:
    group = await inbox.get(request.app[ENGINE], group_id(request))
    if group is None:
        raise web.HTTPNotFound(text=TEXTS.get("group_not_found"))
    return group


async def render_group(
    request: web.Request, group: dict[str, Any], status: int = 200, **extra: Any
) -> web.Response:
    project = await _project(request)
    context: dict[str, Any] = {
        "group": group,
        "intents": intent_choices(project),
        "entity_types": entity_types(project),
        "entity_rows": ENTITY_ROWS,
        "reasons": inbox.REASON_LABELS,
        "statuses": inbox.STATUS_LABELS,
        "form": {"text": group["text"], "intent": group["intent"], "rows": []},
        "plan": None,
        "saved": None,
        "max_text": MAX_TEXT,
        **extra,
    }
    return aiohttp_jinja2.render_template("training/group.html", request, context, status=status)


@workbench_required
async def group_page(request: web.Request) -> web.StreamResponse:
    return await render_group(request, await _group_or_404(request))


@workbench_required
async def label(request: web.Request) -> web.StreamResponse:
    group = await _group_or_404(request)
    form = await request.post()
    project_dir = request.app[SETTINGS].training.project_dir
    try:
        action = text_param(form, "action", 10, TEXTS.get("field_action"))
        if action not in {"check", "save"}:
            raise BadInput(TEXTS.get("bad_action"))
        intent = text_param(form, "intent", 100, TEXTS.get("field_intent"), required=True)
        confirmed = form.get("confirm") == "1"
        project = await _project(request)
        raw, annotated, rows = read_example(form, project)
    except (BadInput, nlu_edit.EditRefused) as exc:
        return error_page(request, str(exc), back=f"/training/groups/{group['id']}")
    shown = {"text": raw[:MAX_TEXT], "intent": intent, "rows": rows}
    if action == "check":
        try:
            checked = await asyncio.to_thread(nlu_edit.plan_add, project, intent, annotated, raw)
        except nlu_edit.EditRefused as exc:
            return error_page(request, str(exc), back=f"/training/groups/{group['id']}")
        return await render_group(request, group, form=shown, plan=checked)

    def plan() -> tuple[Any, str, str]:
        fresh = nlu_edit.load(project_dir)
        p = nlu_edit.plan_add(fresh, intent, annotated, raw)
        if p.errors:
            raise Refused(p)
        if p.warnings and not confirmed:
            raise NeedsConfirmation(p)
        return p.path, p.new_text, nlu_edit.commit_message(intent, "add", request["agent"].username)

    try:
        commit = await git_store(request.app).change(plan, author(request))
    except Refused as exc:
        return await render_group(request, group, status=409, form=shown, plan=exc.plan)
    except NeedsConfirmation as exc:
        return await render_group(request, group, status=409, form=shown, plan=exc.plan, confirm=True)
    except (nlu_edit.EditRefused, GitError) as exc:
        return error_page(request, str(exc), status=409, back=f"/training/groups/{group['id']}")
    await inbox.set_status(request.app[ENGINE], group["id"], "labelled", request["agent"].username, intent)
    log.info("workbench: %s added an example to %s (%s)", request["agent"].username, intent, commit[:10])
    raise web.HTTPSeeOther(f"/training?saved={commit[:10]}")


@workbench_required
async def check(request: web.Request) -> web.StreamResponse:
    """The new example's findings, without saving (JSON for fetch(), else a short page)."""
    form: Any
    if request.content_type == "application/json":
        try:
            form = await request.json()
        except ValueError:
            return error_page(request, TEXTS.get("bad_form"))
        if not isinstance(form, dict):
            return error_page(request, TEXTS.get("bad_form"))
    else:
        form = await request.post()
    try:
        intent = text_param(form, "intent", 100, TEXTS.get("field_intent"), required=True)
        project = await _project(request)
        raw, annotated, _rows = read_example(form, project)
        plan = await asyncio.to_thread(nlu_edit.plan_add, project, intent, annotated, raw)
    except (BadInput, nlu_edit.EditRefused) as exc:
        return error_page(request, str(exc))
    if wants_json(request) or request.content_type == "application/json":
        return web.json_response(findings_json(plan))
    return aiohttp_jinja2.render_template("training/check.html", request, {"plan": plan})


def setup_routes(app: web.Application) -> None:
    app.router.add_get(r"/training/groups/{id:[0-9]+}", group_page)
    app.router.add_post(r"/training/groups/{id:[0-9]+}/label", label)
    app.router.add_post("/training/check", check)
