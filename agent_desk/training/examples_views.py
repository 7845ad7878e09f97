"""The examples browser: GET /training/examples?intent=&q= (search ignores diacritics and case),
POST /training/examples/edit and /training/examples/delete, each change one git commit."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from agent_desk.keys import SETTINGS
from agent_desk.training import nlu_edit
from agent_desk.training.git_store import GitError
from agent_desk.training.labelling import NeedsConfirmation, Refused, entity_types, read_example
from agent_desk.training.texts import TEXTS
from agent_desk.training.web import (
    MAX_QUERY,
    MAX_TEXT,
    BadInput,
    author,
    error_page,
    git_store,
    int_param,
    text_param,
    workbench_required,
)
from trainer.project import Project

log = logging.getLogger(__name__)
MAX_LISTED = 200


async def _project(request: web.Request) -> Project:
    return await asyncio.to_thread(nlu_edit.load, request.app[SETTINGS].training.project_dir)


def _row(project: Project, e: nlu_edit.nludata.Example) -> dict[str, Any]:
    return {
        "intent": e.name,
        "text": e.text,
        "plain": e.plain,
        "file": project.settings.rel(e.file),
        "line": e.line,
        "entities": [{"entity": x["entity"], "value": e.plain[x["start"] : x["end"]]} for x in _entities(e)],
    }


def _entities(e: nlu_edit.nludata.Example) -> list[dict[str, Any]]:
    try:
        return list(e.entities())
    except Exception:  # a malformed annotation: shown as text, make validate reports it
        return []


async def render(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    project = await _project(request)
    intent = extra.pop("intent", "")
    q = extra.pop("q", "")
    labels = nlu_edit.labels(project)
    found = nlu_edit.search(project, intent, q, MAX_LISTED + 1) if (intent or q) else []
    counts: dict[str, int] = {}
    for e in project.train_examples():
        counts[e.name] = counts.get(e.name, 0) + 1
    context: dict[str, Any] = {
        "labels": labels,
        "counts": counts,
        "intent": intent,
        "q": q,
        "rows": [_row(project, e) for e in found[:MAX_LISTED]],
        "more": len(found) > MAX_LISTED,
        "entity_types": entity_types(project),
        "max_text": MAX_TEXT,
        "max_query": MAX_QUERY,
        "min_examples": project.settings.min_examples_per_intent,
        "edit": None,
        "plan": None,
        "confirm": False,
        "saved": request.query.get("saved", "")[:12],
        **extra,
    }
    return aiohttp_jinja2.render_template("training/examples.html", request, context, status=status)


@workbench_required
async def examples_page(request: web.Request) -> web.StreamResponse:
    try:
        intent = text_param(request.query, "intent", 100, TEXTS.get("field_intent")).strip()
        q = text_param(request.query, "q", MAX_QUERY, TEXTS.get("field_search")).strip()
        project = await _project(request)
        if intent and intent not in nlu_edit.labels(project):
            raise BadInput(TEXTS.get("intent_unknown", intent=intent))
    except BadInput as exc:
        return error_page(request, str(exc), back="/training/examples")
    return await render(request, intent=intent, q=q)


def _target(form: Any, project: Project) -> nlu_edit.nludata.Example:
    file_rel = text_param(form, "file", 300, TEXTS.get("field_file"), required=True)
    line = int_param(form, "line", None, 1, 1_000_000, TEXTS.get("field_line"))
    old = text_param(form, "old", MAX_TEXT * 2, TEXTS.get("field_old_sentence"), required=True)
    return nlu_edit.find_example(project, file_rel, line, old)


def _back(intent: str, saved: str = "") -> str:
    query = {k: v for k, v in (("intent", intent), ("saved", saved[:10])) if v}
    return "/training/examples" + (f"?{urlencode(query)}" if query else "")


@workbench_required
async def edit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    project_dir = request.app[SETTINGS].training.project_dir
    try:
        project = await _project(request)
        target = _target(form, project)
        raw, annotated, rows = read_example(form, project)
    except (BadInput, nlu_edit.EditRefused) as exc:
        return error_page(request, str(exc), back="/training/examples")
    confirmed = form.get("confirm") == "1"
    file_rel = project.settings.rel(target.file)
    shown = {"file": file_rel, "line": target.line, "old": target.text,
             "text": raw[:MAX_TEXT], "rows": rows, "intent": target.name}  # fmt: skip

    def plan() -> tuple[Any, str, str]:
        fresh = nlu_edit.load(project_dir)
        example = nlu_edit.find_example(fresh, file_rel, target.line, target.text)
        p = nlu_edit.plan_edit(fresh, example, annotated, raw)
        if p.errors:
            raise Refused(p)
        if p.warnings and not confirmed:
            raise NeedsConfirmation(p)
        return p.path, p.new_text, nlu_edit.commit_message(target.name, "edit", request["agent"].username)

    try:
        commit = await git_store(request.app).change(plan, author(request))
    except Refused as exc:
        return await render(request, 409, intent=target.name, edit=shown, plan=exc.plan)
    except NeedsConfirmation as exc:
        return await render(request, 409, intent=target.name, edit=shown, plan=exc.plan, confirm=True)
    except (nlu_edit.EditRefused, GitError) as exc:
        return error_page(request, str(exc), status=409, back=_back(target.name))
    log.info("workbench: %s edited an example of %s (%s)", author(request).username, target.name, commit[:7])
    raise web.HTTPSeeOther(_back(target.name, commit))


@workbench_required
async def delete(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    project_dir = request.app[SETTINGS].training.project_dir
    try:
        project = await _project(request)
        target = _target(form, project)
    except (BadInput, nlu_edit.EditRefused) as exc:
        return error_page(request, str(exc), back="/training/examples")
    file_rel = project.settings.rel(target.file)

    def plan() -> tuple[Any, str, str]:
        fresh = nlu_edit.load(project_dir)
        p = nlu_edit.plan_delete(fresh, nlu_edit.find_example(fresh, file_rel, target.line, target.text))
        return p.path, p.new_text, nlu_edit.commit_message(target.name, "delete", request["agent"].username)

    try:
        commit = await git_store(request.app).change(plan, author(request))
    except (nlu_edit.EditRefused, GitError) as exc:
        return error_page(request, str(exc), status=409, back=_back(target.name))
    log.info("workbench: %s deleted an example of %s (%s)", author(request).username, target.name, commit[:7])
    raise web.HTTPSeeOther(_back(target.name, commit))


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/training/examples", examples_page)
    app.router.add_post("/training/examples/edit", edit)
    app.router.add_post("/training/examples/delete", delete)
