"""Which model the Rasa servers run, activating a trained one, and rolling back.

Rasa 3.6's HTTP API (rasa/server.py): `GET /status` answers the loaded model's file name
(`model_file`, a base name), `PUT /model` with `{"model_file": "<path>"}` loads a model from a path the
server can read and swaps it in without a restart (204). Both take the API token as `?token=`.

Activating loads the model into EVERY server of TRAINING_RASA_URLS; when one refuses, the servers
already switched get the previous model back, so the servers never answer with two different models.
A server with several Sanic workers swaps the model only in the worker that took the PUT: `_load`
asks on fresh connections which worker answered (connectors/metrics_input.py) and repeats the PUT on a
connection that reached a worker still on another model, until every worker runs the new one (bounded).
Each attempt is a row of `model_activations` (who, when, model, previous model, result). A model
whose report is below nlu_thresholds.yml on a gated set (with or without diacritics) is refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk import db
from agent_desk.training.file_lock import FileLock, LockBusy
from agent_desk.training.settings import ROOT, TrainingSettings
from agent_desk.training.texts import TEXTS

log = logging.getLogger(__name__)
STATUS_TIMEOUT = 10
LOAD_TIMEOUT = 600  # a loaded 2-core machine takes a while to load a model
CONVERGE_CHECKS = 6  # without worker ids: fresh-connection checks that must all show the new model
CONVERGE_ROUNDS = 6  # PUTs at most, per worker, until they do
WORKER_PROBES = 200  # fresh connections at most, per server, to meet every worker (each takes ms)

model_activations = sa.Table(
    "model_activations",
    db.metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("agent_id", sa.Integer, sa.ForeignKey("desk_agents.id"), nullable=False),
    sa.Column("agent_name", sa.String(100), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # activate | rollback
    sa.Column("run_id", sa.Integer),
    sa.Column("model", sa.String(1000), nullable=False),
    sa.Column("previous_model", sa.String(1000)),
    sa.Column("result", sa.String(16), nullable=False),  # ok | failed
    sa.Column("detail", sa.String(500), nullable=False, default=""),
)


class ActivationError(Exception):
    """Activation refused or failed; `message` is for the page (Vietnamese)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Activation:
    id: int
    agent_name: str
    at: float
    kind: str
    run_id: int | None
    model: str
    previous_model: str | None
    result: str
    detail: str


def _host(url: str) -> str:
    """A Rasa URL as shown in messages and logs: scheme://host:port, never a query (the token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def loaded_model(session: aiohttp.ClientSession, url: str, token: str) -> str:
    """The file name of the model a Rasa server runs; ActivationError when it cannot say."""
    try:
        async with session.get(
            f"{url}/status", params={"token": token}, timeout=aiohttp.ClientTimeout(total=STATUS_TIMEOUT)
        ) as resp:
            if resp.status != 200:
                raise ActivationError(
                    TEXTS.get("rasa_status_refused", host=_host(url), status=resp.status), 502
                )
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        raise ActivationError(TEXTS.get("rasa_unreachable", host=_host(url)), 502) from None
    name = data.get("model_file") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name:
        raise ActivationError(TEXTS.get("rasa_no_model", host=_host(url)), 502)
    return name


async def production_model(session: aiohttp.ClientSession, settings: TrainingSettings, token: str) -> str:
    return await loaded_model(session, settings.rasa_urls[0], token)


def model_dirs(settings: TrainingSettings) -> list[Path]:
    from devstack import model as devmodel

    dirs = [settings.models_dir, settings.project_dir / "models", ROOT / "models", devmodel.cache_dir()]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def resolve_model(
    name_or_path: str, settings: TrainingSettings, known: list[str] | None = None
) -> Path | None:
    """The file of a model Rasa names by its base name: an activation's recorded path first, then the
    workbench's models, the project's models/, this repository's models/, devstack's model cache."""
    p = Path(name_or_path)
    if p.is_absolute():
        return p if p.is_file() else None
    if "/" in name_or_path or not name_or_path.endswith(".tar.gz"):
        return None
    for candidate in known or []:
        c = Path(candidate)
        if c.name == name_or_path and c.is_file():
            return c
    for d in model_dirs(settings):
        c = d / name_or_path
        if c.is_file():
            return c
    return None


def threshold_failures(report: dict[str, Any], project_dir: Path) -> list[str]:
    """Why this report may not go to production (empty: it may). The report-only set is not gated."""
    from trainer import settings as trainer_settings

    try:
        t = trainer_settings.load(project_dir)
    except trainer_settings.SettingsError as exc:
        return [TEXTS.get("thresholds_file_unreadable", error=exc)]
    failures = []
    sets = report.get("sets") or []
    if not sets:
        return [TEXTS.get("report_no_sets")]
    for s in sets:
        if s.get("report_only"):
            continue
        limit = t.min_accuracy_no_diacritics if s.get("no_diacritics") else t.min_accuracy
        acc = float(s.get("accuracy") or 0.0)
        if acc < limit:
            failures.append(
                TEXTS.get("below_threshold", name=s.get("name"), accuracy=100 * acc, limit=100 * limit)
            )
    return failures


async def _put_model(session: aiohttp.ClientSession, url: str, token: str, model: Path) -> str | None:
    """Load `model` into one server; None when it worked, else why not (Vietnamese, no token)."""
    try:
        async with session.put(
            f"{url}/model",
            params={"token": token},
            json={"model_file": str(model)},
            timeout=aiohttp.ClientTimeout(total=LOAD_TIMEOUT),
        ) as resp:
            if resp.status in {200, 204}:
                return None
            return TEXTS.get("rasa_load_refused", host=_host(url), status=resp.status)
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return TEXTS.get("rasa_load_unreachable", host=_host(url))


@dataclass(frozen=True)
class WorkerStatus:
    pid: int
    workers: int
    model_file: str | None


async def _worker_status(
    session: aiohttp.ClientSession, url: str, metrics_token: str | None
) -> WorkerStatus | None:
    """Which worker of a Rasa server answered on this connection, how many it runs and its model
    (connectors/metrics_input.py); None when the server does not say (no metrics channel, refused)."""
    headers = {"Authorization": f"Bearer {metrics_token}"} if metrics_token else {}
    try:
        async with session.get(
            f"{url}/webhooks/metrics/worker",
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=STATUS_TIMEOUT),
        ) as resp:
            if resp.status != 200:
                return None
            data = await resp.json(content_type=None)
        pid, workers, model_file = data["pid"], data["workers"], data["model_file"]
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(pid, int) or not isinstance(workers, int) or workers < 1:
        return None
    return WorkerStatus(pid, workers, model_file if isinstance(model_file, str) else None)


async def _load(
    session: aiohttp.ClientSession,
    url: str,
    token: str,
    model: Path,
    metrics_token: str | None = None,
    touched: set[str] | None = None,
) -> str | None:
    """PUT the model, then make sure every worker of the server runs it: a Rasa started with several
    Sanic workers (RASA_WORKERS) swaps the model only in the worker that took the PUT. The workers
    share the listening socket and each connection lands on one of them, so the desk opens fresh
    connections, asks which worker answered (`/webhooks/metrics/worker`), and repeats the PUT on the
    connection that reached a worker still on another model, until it has seen every worker on the new
    model. The kernel may hand many connections in a row to the same worker, so counting agreeing
    answers is not enough; a server without that endpoint gets the counting check (_converge_blind).
    None when done, else why not. `touched` gets the URL once a worker took the model."""
    error = await _put_model(session, url, token, model)
    if error:
        return error
    if touched is not None:
        touched.add(url)
    on_new: set[int] = set()
    puts = 1
    for _ in range(WORKER_PROBES):
        async with aiohttp.ClientSession() as fresh:  # one new connection, kept for the PUT
            status = await _worker_status(fresh, url, metrics_token)
            if status is None:
                return await _converge_blind(url, token, model, puts)
            if status.model_file != model.name:
                if puts >= CONVERGE_ROUNDS * status.workers:
                    break
                puts += 1
                error = await _put_model(fresh, url, token, model)
                if error:
                    return error
                status = await _worker_status(fresh, url, metrics_token)  # same connection, same worker
                if status is None or status.model_file != model.name:
                    continue
            on_new.add(status.pid)
            if len(on_new) >= status.workers:
                return None
    return TEXTS.get("workers_stale", host=_host(url), puts=puts)


async def _converge_blind(url: str, token: str, model: Path, puts: int) -> str | None:
    """Without a worker id: until CONVERGE_CHECKS fresh connections in a row show the model (bounded)."""
    agreed = 0
    while agreed < CONVERGE_CHECKS:
        async with aiohttp.ClientSession() as fresh:
            try:
                stale = await loaded_model(fresh, url, token) != model.name
            except ActivationError:
                stale = True
            if not stale:
                agreed += 1
                continue
            if puts >= CONVERGE_ROUNDS:
                return TEXTS.get("workers_stale", host=_host(url), puts=puts)
            agreed = 0
            puts += 1
            error = await _put_model(fresh, url, token, model)
            if error:
                return error
    return None


async def _record(engine: AsyncEngine, **values: Any) -> int:
    async with engine.begin() as conn:
        result = await conn.execute(model_activations.insert().values(at=time.time(), **values))
        return db.inserted_id(result)


async def history(engine: AsyncEngine, limit: int = 20) -> list[Activation]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(model_activations).order_by(model_activations.c.id.desc()).limit(limit)
            )
        ).all()
    return [
        Activation(r.id, r.agent_name, r.at, r.kind, r.run_id, r.model, r.previous_model, r.result, r.detail)
        for r in rows
    ]


async def _known_paths(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(model_activations.c.model, model_activations.c.previous_model)
                .where(model_activations.c.result == "ok")
                .order_by(model_activations.c.id.desc())
                .limit(100)
            )
        ).all()
    return [p for r in rows for p in (r.model, r.previous_model) if p]


# One activation at a time, also across desk processes: a lock file beside the models, which every desk
# of a deployment shares with the Rasa servers (they load the models from there).
ACTIVATION_LOCK = "activation.lock"
ACTIVATION_LOCK_WAIT_S = 600.0  # an activation of two 2-worker servers takes a few minutes
_locks: dict[Path, FileLock] = {}


def _activation_lock(settings: TrainingSettings) -> FileLock:
    path = settings.models_dir / ACTIVATION_LOCK
    return _locks.setdefault(path, FileLock(path, ACTIVATION_LOCK_WAIT_S))


async def activate(
    engine: AsyncEngine,
    session: aiohttp.ClientSession,
    settings: TrainingSettings,
    token: str,
    model: Path,
    agent_id: int,
    agent_name: str,
    kind: str = "activate",
    run_id: int | None = None,
) -> Activation:
    """Load `model` into every Rasa server; on a failure put the previous model back where it was
    loaded. Records the attempt either way; ActivationError when it failed."""
    model = await asyncio.to_thread(model.resolve)
    if not await asyncio.to_thread(model.is_file):
        raise ActivationError(TEXTS.get("model_file_missing"), 404)
    try:
        async with _activation_lock(settings).held():
            return await _activate_locked(
                engine, session, settings, token, model, agent_id, agent_name, kind, run_id
            )
    except LockBusy:
        raise ActivationError(TEXTS.get("activation_busy"), 409) from None


async def _activate_locked(
    engine: AsyncEngine,
    session: aiohttp.ClientSession,
    settings: TrainingSettings,
    token: str,
    model: Path,
    agent_id: int,
    agent_name: str,
    kind: str,
    run_id: int | None,
) -> Activation:
    previous_name = await production_model(session, settings, token)
    previous = resolve_model(previous_name, settings, await _known_paths(engine))
    touched: set[str] = set()  # servers where at least one worker took the model
    error = None
    for url in settings.rasa_urls:
        error = await _load(session, url, token, model, settings.metrics_token, touched)
        if error:
            break
    done = [url for url in settings.rasa_urls if url in touched]
    detail = ""
    if error:
        restored = []
        for url in done:
            if (
                previous is not None
                and await _load(session, url, token, previous, settings.metrics_token) is None
            ):
                restored.append(_host(url))
        detail = error + (TEXTS.get("previous_restored", hosts=", ".join(restored)) if restored else "")
        if done and len(restored) != len(done):
            detail += TEXTS.get("previous_not_restored")
        log.warning("activation of %s failed: %s", model.name, detail)
    row_id = await _record(
        engine,
        agent_id=agent_id,
        agent_name=agent_name[:100],
        kind=kind,
        run_id=run_id,
        model=str(model),
        previous_model=str(previous) if previous else previous_name,
        result="failed" if error else "ok",
        detail=detail[:500],
    )
    if error:
        raise ActivationError(TEXTS.get("activation_failed", detail=detail[:400]), 502)
    log.info("model %s activated by agent %s (%s)", model.name, agent_id, kind)
    return Activation(
        row_id,
        agent_name[:100],
        time.time(),
        kind,
        run_id,
        str(model),
        str(previous or previous_name),
        "ok",
        "",
    )


async def rollback(
    engine: AsyncEngine,
    session: aiohttp.ClientSession,
    settings: TrainingSettings,
    token: str,
    agent_id: int,
    agent_name: str,
) -> Activation:
    """Re-activate the model the last successful activation replaced."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(model_activations)
                .where(model_activations.c.result == "ok")
                .order_by(model_activations.c.id.desc())
                .limit(1)
            )
        ).first()
    if row is None or not row.previous_model:
        raise ActivationError(TEXTS.get("nothing_to_roll_back"), 409)
    previous = resolve_model(row.previous_model, settings, await _known_paths(engine))
    if previous is None:
        raise ActivationError(TEXTS.get("previous_file_missing", model=Path(row.previous_model).name), 409)
    return await activate(engine, session, settings, token, previous, agent_id, agent_name, kind="rollback")
