"""The `training_runs` table: one row per training started from the workbench, and its progress.

Exactly one run is queued or running at a time, across every desk process: such a run holds
`active_slot = 1`, a UNIQUE column (NULL once it ends, and NULLs never collide on SQLite or
PostgreSQL), so a second start fails on the database's constraint, not on a check-then-insert race.

The desk process that runs the training writes its progress and a heartbeat (`updated_at`) about
once a second. A run whose heartbeat stopped (its desk crashed or was restarted) is marked failed.
Cancelling sets `cancel_requested`; the owning desk sees it on its next heartbeat and kills the
training, so a cancel reaches the training whichever desk process received the click.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk import db
from agent_desk.training.texts import TEXTS

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
OPEN = ("queued", "running")
STALE_AFTER = 20.0  # seconds without a heartbeat: the owning desk is gone


def new_owner() -> str:
    """Who runs a training: this machine, this process, and this desk app (a test runs several)."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


MAX_ERROR = 500
RESTARTED = TEXTS.get("desk_restarted")

training_runs = sa.Table(
    "training_runs",
    db.metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("started_by", sa.Integer, sa.ForeignKey("desk_agents.id"), nullable=False),
    sa.Column("started_by_name", sa.String(100), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("status", sa.String(16), nullable=False),
    # 1 while queued or running, NULL after: UNIQUE, so at most one open run in the whole desk.
    sa.Column("active_slot", sa.Integer, unique=True),
    sa.Column("owner", sa.String(300), nullable=False, default=""),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("progress", sa.Text, nullable=False, default="{}"),  # phase, component, epoch, epochs, eta
    sa.Column("mode", sa.String(16), nullable=False, default=""),  # finetune | full
    sa.Column("model_path", sa.String(1000)),
    sa.Column("base_model", sa.String(1000)),  # the production model when the run started
    sa.Column("report", sa.Text),  # agent_desk/training/evaluation.py's JSON
    sa.Column("error", sa.String(MAX_ERROR)),  # Vietnamese, for the page; never a stack trace
    sa.CheckConstraint("active_slot IS NULL OR active_slot = 1", name="ck_training_runs_slot"),
)


class RunBusy(Exception):
    """Another training is queued or running."""

    def __init__(self, run_id: int | None) -> None:
        super().__init__(f"training {run_id} is running")
        self.run_id = run_id


@dataclass(frozen=True)
class Run:
    id: int
    started_by: int
    started_by_name: str
    started_at: float
    finished_at: float | None
    status: str
    updated_at: float
    cancel_requested: bool
    progress: dict[str, Any]
    mode: str
    model_path: str | None
    base_model: str | None
    error: str | None
    owner: str

    @property
    def open(self) -> bool:
        return self.status in OPEN


def _run(row: Any) -> Run:
    try:
        progress = json.loads(row.progress or "{}")
    except ValueError:
        progress = {}
    return Run(
        id=row.id,
        started_by=row.started_by,
        started_by_name=row.started_by_name,
        started_at=row.started_at,
        finished_at=row.finished_at,
        status=row.status,
        updated_at=row.updated_at,
        cancel_requested=bool(row.cancel_requested),
        progress=progress if isinstance(progress, dict) else {},
        mode=row.mode or "",
        model_path=row.model_path,
        base_model=row.base_model,
        error=row.error,
        owner=row.owner or "",
    )


_COLUMNS = [c for c in training_runs.c if c.name != "report"]


async def create(
    engine: AsyncEngine, owner: str, agent_id: int, agent_name: str, base_model: str | None
) -> int:
    """A new queued run; RunBusy when one is already open (in this desk or another)."""
    now = time.time()
    try:
        async with engine.begin() as conn:
            result = await conn.execute(
                training_runs.insert().values(
                    started_by=agent_id,
                    started_by_name=agent_name[:100],
                    started_at=now,
                    status="queued",
                    active_slot=1,
                    owner=owner,
                    updated_at=now,
                    cancel_requested=False,
                    progress=json.dumps({"phase": "queued"}),
                    base_model=base_model,
                )
            )
            return db.inserted_id(result)
    except sa.exc.IntegrityError:
        raise RunBusy(await open_run_id(engine)) from None


async def open_run_id(engine: AsyncEngine) -> int | None:
    async with engine.connect() as conn:
        value = await conn.scalar(sa.select(training_runs.c.id).where(training_runs.c.active_slot == 1))
    return int(value) if value is not None else None


async def get(engine: AsyncEngine, run_id: int) -> Run | None:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(*_COLUMNS).where(training_runs.c.id == run_id))).first()
    return _run(row) if row is not None else None


async def report(engine: AsyncEngine, run_id: int) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        raw = await conn.scalar(sa.select(training_runs.c.report).where(training_runs.c.id == run_id))
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


async def recent(engine: AsyncEngine, limit: int = 50) -> list[Run]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(sa.select(*_COLUMNS).order_by(training_runs.c.id.desc()).limit(limit))
        ).all()
    return [_run(r) for r in rows]


async def update(engine: AsyncEngine, run_id: int, **values: Any) -> bool:
    """Update an open run (progress, status...); False when it is no longer open."""
    if "progress" in values and not isinstance(values["progress"], str):
        values["progress"] = json.dumps(values["progress"], ensure_ascii=False)
    values.setdefault("updated_at", time.time())
    async with engine.begin() as conn:
        result = await conn.execute(
            training_runs.update()
            .where(training_runs.c.id == run_id, training_runs.c.status.in_(OPEN))
            .values(**values)
        )
    return result.rowcount == 1


async def finish(
    engine: AsyncEngine,
    run_id: int,
    status: str,
    error: str | None = None,
    report: dict[str, Any] | None = None,
    **values: Any,
) -> bool:
    assert status in {"succeeded", "failed", "cancelled"}
    if report is not None:
        values["report"] = json.dumps(report, ensure_ascii=False)
    return await update(
        engine,
        run_id,
        status=status,
        active_slot=None,
        finished_at=time.time(),
        error=error[:MAX_ERROR] if error else None,
        **values,
    )


async def request_cancel(engine: AsyncEngine, run_id: int) -> bool:
    """Ask the owning desk to stop the run. A queued run nobody runs yet is cancelled at once."""
    async with engine.begin() as conn:
        result = await conn.execute(
            training_runs.update()
            .where(training_runs.c.id == run_id, training_runs.c.status.in_(OPEN))
            .values(cancel_requested=True)
        )
    return result.rowcount == 1


def _owner_dead(owner: str) -> bool:
    """The owner ran on this machine and its process is gone."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


async def fail_orphans(engine: AsyncEngine, *, at_start: bool = False) -> list[int]:
    """Mark failed the open runs whose desk is gone: no heartbeat for STALE_AFTER seconds, or (at
    start-up) a run owned by a dead process of this machine. Returns their ids."""
    now = time.time()
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(training_runs.c.id, training_runs.c.owner, training_runs.c.updated_at).where(
                    training_runs.c.status.in_(OPEN)
                )
            )
        ).all()
    failed = []
    for row in rows:
        stale = now - row.updated_at > STALE_AFTER
        if (stale or (at_start and _owner_dead(row.owner or ""))) and await finish(
            engine, row.id, "failed", RESTARTED
        ):
            failed.append(row.id)
    return failed
