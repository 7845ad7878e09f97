"""Routes of the workbench's training, report and activation (trainers and supervisors).

GET  /training/runs                 runs, the production model, "Huấn luyện mô hình mới", activations
POST /training/runs                 start a training (409 while one is queued or running)
GET  /training/runs/{id}            progress (polled by static/training_runs.js), then the report
GET  /training/runs/{id}/progress   JSON: status, phase, epoch x/y, time left
POST /training/runs/{id}/cancel     stop it (the subprocess group is killed, partial files removed)
POST /training/runs/{id}/activate   load the run's model into every Rasa server (refused under thresholds)
POST /training/rollback             re-activate the model the last activation replaced
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp_jinja2
from aiohttp import web

from agent_desk.keys import BACKGROUND, ENGINE, SETTINGS, STOP
from agent_desk.request_helpers import wants_json
from agent_desk.training import activation, comparison, runs
from agent_desk.training.runner import Runner
from agent_desk.training.texts import TEXTS
from agent_desk.training.web import workbench_required

log = logging.getLogger(__name__)
RUNNER = web.AppKey("training_runner", Runner)


def _refuse(
    request: web.Request, message: str, status: int, back: str = "/training/runs"
) -> web.StreamResponse:
    if wants_json(request):
        return web.json_response({"error": "refused", "message": message}, status=status)
    return aiohttp_jinja2.render_template(
        "error.html", request, {"message": message, "back": back}, status=status
    )


def _run_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) == 0:
        raise web.HTTPNotFound(text=TEXTS.get("run_not_found"))
    return int(raw)


async def _run_or_404(request: web.Request) -> runs.Run:
    run = await runs.get(request.app[ENGINE], _run_id(request))
    if run is None:
        raise web.HTTPNotFound(text=TEXTS.get("run_not_found"))
    return run


def _progress_json(run: runs.Run) -> dict[str, Any]:
    end = run.finished_at or time.time()
    return {
        "id": run.id,
        "status": run.status,
        "open": run.open,
        "progress": run.progress,
        "elapsed": round(end - run.started_at),
        "error": run.error,
        "cancel_requested": run.cancel_requested,
    }


async def _production(request: web.Request) -> tuple[str | None, str | None]:
    """The production model's name, or why it is unknown."""
    runner = request.app[RUNNER]
    try:
        return await activation.production_model(runner.session, runner.settings, runner.token), None
    except activation.ActivationError as exc:
        return None, exc.message


# ---------------------------------------------------------------------- pages
@workbench_required
async def runs_page(request: web.Request) -> web.StreamResponse:
    engine = request.app[ENGINE]
    production, production_error = await _production(request)
    return aiohttp_jinja2.render_template(
        "training/runs.html",
        request,
        {
            "runs": await runs.recent(engine),
            "open_id": await runs.open_run_id(engine),
            "production": production,
            "production_error": production_error,
            "activations": await activation.history(engine),
            "settings": request.app[SETTINGS].training,
        },
    )


@workbench_required
async def start_run(request: web.Request) -> web.StreamResponse:
    agent = request["agent"]
    try:
        run_id = await request.app[RUNNER].start(agent.id, agent.display_name)
    except runs.RunBusy as busy:
        message = TEXTS.get("run_busy_numbered", run_id=busy.run_id) if busy.run_id else TEXTS.get("run_busy")
        back = f"/training/runs/{busy.run_id}" if busy.run_id else "/training/runs"
        return _refuse(request, message, 409, back)
    log.info("training run %s started by agent %s", run_id, agent.id)
    if wants_json(request):
        return web.json_response({"id": run_id}, status=201)
    raise web.HTTPSeeOther(f"/training/runs/{run_id}")


@workbench_required
async def run_page(request: web.Request) -> web.StreamResponse:
    run = await _run_or_404(request)
    settings = request.app[SETTINGS].training
    context: dict[str, Any] = {"run": run, "progress": _progress_json(run), "cmp": None, "failures": []}
    if run.status == "succeeded":
        report = await runs.report(request.app[ENGINE], run.id)
        if report:
            base = _load_json(report.get("baseline_file"))
            thresholds = report.get("thresholds") or {}
            selected = request.query.get("set", "")[:200]
            context["cmp"] = comparison.compare(report, base, selected, thresholds)
            context["failures"] = activation.threshold_failures(report, settings.project_dir)
            context["base_name"] = (base or {}).get("model") or (
                Path(run.base_model).name if run.base_model else None
            )
        context["model_exists"] = bool(run.model_path) and await asyncio.to_thread(
            Path(run.model_path or ".").is_file
        )
        context["production"], _ = await _production(request)
    return aiohttp_jinja2.render_template("training/runs_detail.html", request, context)


def _load_json(path: object) -> dict[str, Any] | None:
    if not isinstance(path, str) or not path:
        return None
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


@workbench_required
async def run_progress(request: web.Request) -> web.StreamResponse:
    run = await _run_or_404(request)
    return web.json_response(_progress_json(run), headers={"Cache-Control": "no-store"})


@workbench_required
async def cancel_run(request: web.Request) -> web.StreamResponse:
    run = await _run_or_404(request)
    if not run.open:
        return _refuse(request, TEXTS.get("run_ended"), 409, f"/training/runs/{run.id}")
    await request.app[RUNNER].cancel(run.id)
    log.info("training run %s cancelled by agent %s", run.id, request["agent"].id)
    if wants_json(request):
        return web.json_response({"id": run.id, "cancel_requested": True})
    raise web.HTTPSeeOther(f"/training/runs/{run.id}")


@workbench_required
async def activate_run(request: web.Request) -> web.StreamResponse:
    run = await _run_or_404(request)
    back = f"/training/runs/{run.id}"
    if run.status != "succeeded" or not run.model_path:
        return _refuse(request, TEXTS.get("run_unfinished"), 409, back)
    report = await runs.report(request.app[ENGINE], run.id)
    runner = request.app[RUNNER]
    failures = activation.threshold_failures(report or {}, runner.settings.project_dir)
    if failures:
        return _refuse(request, TEXTS.get("below_thresholds", failures="; ".join(failures[:6])), 409, back)
    agent = request["agent"]
    try:
        await activation.activate(
            request.app[ENGINE],
            runner.session,
            runner.settings,
            runner.token,
            Path(run.model_path),
            agent.id,
            agent.display_name,
            run_id=run.id,
        )
    except activation.ActivationError as exc:
        return _refuse(request, exc.message, exc.status, back)
    if wants_json(request):
        return web.json_response({"activated": run.id})
    raise web.HTTPSeeOther("/training/runs")


@workbench_required
async def rollback(request: web.Request) -> web.StreamResponse:
    runner = request.app[RUNNER]
    agent = request["agent"]
    try:
        done = await activation.rollback(
            request.app[ENGINE], runner.session, runner.settings, runner.token, agent.id, agent.display_name
        )
    except activation.ActivationError as exc:
        return _refuse(request, exc.message, exc.status)
    if wants_json(request):
        return web.json_response({"model": Path(done.model).name})
    raise web.HTTPSeeOther("/training/runs")


# ---------------------------------------------------------------------- lifecycle
async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """The runner of this desk process; runs left open by a dead desk are marked failed."""
    settings = app[SETTINGS]
    session = aiohttp.ClientSession()
    runner = Runner(app[ENGINE], settings.training, session, settings.rasa_token)
    app[RUNNER] = runner
    failed = await runs.fail_orphans(app[ENGINE], at_start=True)
    if failed:
        log.warning("training runs %s were left running by a stopped desk: marked failed", failed)
    task = None
    if app[BACKGROUND]:
        task = asyncio.create_task(runner.watch_orphans(app[STOP]))
    try:
        yield
    finally:
        await runner.close()
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await session.close()


def setup_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(_lifecycle)
    r = app.router
    r.add_get("/training/runs", runs_page)
    r.add_post("/training/runs", start_run)
    r.add_get(r"/training/runs/{id:[0-9]+}", run_page)
    r.add_get(r"/training/runs/{id:[0-9]+}/progress", run_progress)
    r.add_post(r"/training/runs/{id:[0-9]+}/cancel", cancel_run)
    r.add_post(r"/training/runs/{id:[0-9]+}/activate", activate_run)
    r.add_post("/training/rollback", rollback)
