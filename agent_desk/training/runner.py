"""Train a model in the background, one at a time, with progress, cancellable.

A run is two subprocesses (never a shell; TensorFlow never loads in the desk process), each in its
own process group so that a cancel kills everything it started:

1. `python -m deploy.rasa_main train` (Rasa's `rasa train` after the patch installer) on
   TRAINING_PROJECT_DIR's data into TRAINING_MODELS_DIR as `workbench-<id>.tar.gz`. It continues
   from the production model (`--finetune <model> --epoch-fraction <fraction>`) when there is one;
   when Rasa refuses (new intents, entities or a config change: its FinetuningValidator), a full
   training runs instead.
2. `python -m agent_desk.training.evaluation` scores the new model (and the production model, when
   its report for these test sets is not cached in models_dir/reports/) on every set of tests/nlu.

Rasa's tqdm bar ("Epochs:  22%|██▏  | 11/50 [01:28<04:35, ...]", redrawn with carriage returns)
and its "Starting to train component 'X'" lines become the run's progress, written to the database
about once a second together with a heartbeat. The output goes to models_dir/logs/run-<id>.log; the
page shows only Vietnamese messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk.text_files import load_labels
from agent_desk.training import activation, evaluation, runs
from agent_desk.training.settings import ROOT, TrainingSettings
from agent_desk.training.texts import TEXTS, TRAINING_TEXTS

log = logging.getLogger(__name__)
WRITE_EVERY = 1.0  # seconds between progress writes (and cancel checks)
HEARTBEAT_EVERY = 5.0
KILL_GRACE = 5.0
EPOCHS_RE = re.compile(r"Epochs:\s*(\d+)%\|[^|]*\|\s*(\d+)/(\d+)\s*\[([0-9:]+)<([0-9:?]+)")
COMPONENT_RE = re.compile(r"Starting to train component '([^']+)'")
# What Rasa prints when it will not continue from a model (rasa/graph_components/validators/
# finetuning_validator.py, rasa/model.py); looked for in the attempt's own output only.
NOT_FINETUNABLE = (
    "Cannot finetune",
    "InvalidConfigException",
    "Finetuning is enabled but",
    "No model for finetuning found",
    "No valid model for finetuning",
)
# Only what a training needs from the desk's environment: the desk's secrets (tokens, keys, database
# URLs) stay out of the subprocesses.
ENV_ALLOWED = (
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "TZ",
    "XDG_CACHE_HOME",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHASHSEED",
    "PYTHONDONTWRITEBYTECODE",
    "CSKH_CACHE_DIR",
)
ENV_PREFIXES = ("TF_", "OMP_", "MKL_", "CUDA_", "LD_", "CSKH_TRAIN_")  # CSKH_TRAIN_*: for the commands

PHASES = load_labels(TRAINING_TEXTS, "phases", ("queued", "training", "evaluating", "done"))


def eta_seconds(text: str) -> int | None:
    """tqdm's remaining time ("04:35", "1:04:35"; "?" at the start) in seconds."""
    if not text or "?" in text:
        return None
    total = 0
    for part in text.split(":"):
        if not part.isdigit():
            return None
        total = total * 60 + int(part)
    return total


@dataclass
class Progress:
    """What the output of `rasa train` says so far."""

    phase: str = "queued"
    mode: str = ""
    component: str = ""
    epoch: int = 0
    epochs: int = 0
    eta: int | None = None
    note: str = ""
    components_done: list[str] = field(default_factory=list)

    def feed(self, line: str) -> bool:
        """Read one output line (a tqdm redraw or a log line); True when something changed."""
        m = EPOCHS_RE.search(line)
        if m:
            before = (self.epoch, self.epochs, self.eta)
            self.epoch, self.epochs = int(m.group(2)), int(m.group(3))
            self.eta = eta_seconds(m.group(5))
            return before != (self.epoch, self.epochs, self.eta)
        m = COMPONENT_RE.search(line)
        if m:
            if self.component and self.epochs and self.component not in self.components_done:
                self.components_done.append(self.component)
            self.component, self.epoch, self.epochs, self.eta = m.group(1), 0, 0, None
            return True
        return False

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "label": PHASES.get(self.phase, self.phase),
            "mode": self.mode,
            "component": self.component,
            "epoch": self.epoch,
            "epochs": self.epochs,
            "eta": self.eta,
            "percent": round(100 * self.epoch / self.epochs) if self.epochs else None,
            "note": self.note,
        }


def model_file(settings: TrainingSettings, run_id: int) -> Path:
    return settings.models_dir / f"workbench-{run_id}.tar.gz"


def log_file(settings: TrainingSettings, run_id: int) -> Path:
    return settings.models_dir / "logs" / f"run-{run_id}.log"


def train_cmd(settings: TrainingSettings, run_id: int, finetune: Path | None) -> list[str]:
    # Through the patch installer: a finetune skips two throw-away graph traces (deploy/rasa_finetune.py).
    prefix = list(settings.train_command) or [settings.python, "-m", "deploy.rasa_main"]
    cmd = prefix + [
        "train",
        "--config",
        str(settings.project_dir / "config.yml"),
        "--domain",
        str(settings.project_dir / "domain.yml"),
        "--data",
        str(settings.project_dir / "bot" / "data"),
        "--out",
        str(settings.models_dir),
        "--fixed-model-name",
        f"workbench-{run_id}",
    ]
    if finetune is not None:
        cmd += ["--finetune", str(finetune), "--epoch-fraction", str(settings.epoch_fraction)]
    return cmd


def eval_cmd(settings: TrainingSettings, pairs: list[tuple[Path, Path]]) -> list[str]:
    cmd = list(settings.eval_command) or [settings.python, "-m", "agent_desk.training.evaluation"]
    cmd += ["--project", str(settings.project_dir)]
    for model, out in pairs:
        cmd += ["--model", str(model), "--out", str(out)]
    return cmd


def subprocess_env() -> dict[str, str]:
    from devstack.model import train_env

    full = train_env(ROOT)  # telemetry off; this repository (agent_desk, trainer, bot) importable
    env = {k: v for k, v in full.items() if k in ENV_ALLOWED or k.startswith(ENV_PREFIXES)}
    env["RASA_TELEMETRY_ENABLED"] = full["RASA_TELEMETRY_ENABLED"]
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


class Cancelled(Exception):
    pass


class Runner:
    """The trainings of one desk process (at most one at a time in the whole desk: runs.py)."""

    def __init__(
        self, engine: AsyncEngine, settings: TrainingSettings, session: aiohttp.ClientSession, token: str
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.session = session
        self.token = token
        self.owner = runs.new_owner()
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self._cancel: dict[int, asyncio.Event] = {}

    async def production_model(self) -> tuple[str | None, Path | None]:
        """The production model's name and file, (None, None) when no Rasa answers."""
        try:
            name = await activation.production_model(self.session, self.settings, self.token)
        except activation.ActivationError:
            return None, None
        known = await activation._known_paths(self.engine)
        return name, activation.resolve_model(name, self.settings, known)

    async def start(self, agent_id: int, agent_name: str) -> int:
        """Queue a run and start it in the background; runs.RunBusy when one is open already."""
        _, base = await self.production_model()
        run_id = await runs.create(
            self.engine, self.owner, agent_id, agent_name, str(base) if base is not None else None
        )
        self._cancel[run_id] = asyncio.Event()
        self.tasks[run_id] = asyncio.create_task(self._run(run_id, base))
        return run_id

    async def cancel(self, run_id: int) -> bool:
        ok = await runs.request_cancel(self.engine, run_id)
        if run_id in self._cancel:
            self._cancel[run_id].set()
        else:
            run = await runs.get(self.engine, run_id)
            if run is not None and run.open and run.owner == self.owner:
                await runs.finish(self.engine, run_id, "cancelled", TEXTS.get("cancelled"))
        return ok

    async def close(self) -> None:
        """Desk shutdown: stop the trainings of this process (their runs end as failed)."""
        for task in list(self.tasks.values()):
            task.cancel()
        for task in list(self.tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def watch_orphans(self, stop: asyncio.Event, every: float = 10.0) -> None:
        """Fail the runs of desks that died (no heartbeat), for as long as the desk runs."""
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
                return
            try:
                await runs.fail_orphans(self.engine)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("checking orphan training runs failed")

    # ------------------------------------------------------------------ one run
    async def _run(self, run_id: int, base: Path | None) -> None:
        progress = Progress(phase="training", mode="finetune" if base is not None else "full")
        if base is None:
            progress.note = TEXTS.get("base_unknown")
        target = model_file(self.settings, run_id)
        try:
            self.settings.models_dir.mkdir(parents=True, exist_ok=True)
            log_file(self.settings, run_id).parent.mkdir(parents=True, exist_ok=True)
            await runs.update(
                self.engine, run_id, status="running", mode=progress.mode, progress=progress.as_dict()
            )
            rc = await self._exec(run_id, train_cmd(self.settings, run_id, base), progress)
            if rc != 0 and base is not None and self._refused_finetune(run_id):
                progress = Progress(phase="training", mode="full")
                progress.note = TEXTS.get("finetune_refused")
                await runs.update(self.engine, run_id, mode="full", progress=progress.as_dict())
                rc = await self._exec(run_id, train_cmd(self.settings, run_id, None), progress)
            if rc != 0 or not target.is_file():
                name = log_file(self.settings, run_id).name
                raise RunFailed(TEXTS.get("train_failed", code=rc, log=name))
            progress.phase, progress.component, progress.epoch, progress.epochs, progress.eta = (
                "evaluating",
                "",
                0,
                0,
                None,
            )
            await runs.update(self.engine, run_id, model_path=str(target), progress=progress.as_dict())
            report = await self._evaluate(run_id, target, base, progress)
            progress.phase = "done"
            await runs.finish(
                self.engine,
                run_id,
                "succeeded",
                report=report,
                model_path=str(target),
                progress=progress.as_dict(),
            )
        except Cancelled:
            self._remove_partial(run_id)
            await runs.finish(self.engine, run_id, "cancelled", TEXTS.get("cancelled_on_request"))
        except RunFailed as exc:
            self._remove_partial(run_id)
            await runs.finish(self.engine, run_id, "failed", str(exc))
        except asyncio.CancelledError:  # desk shutting down
            self._remove_partial(run_id)
            with contextlib.suppress(Exception):
                await asyncio.shield(runs.finish(self.engine, run_id, "failed", runs.RESTARTED))
            raise
        except Exception:
            log.exception("training run %s failed", run_id)
            self._remove_partial(run_id)
            await runs.finish(self.engine, run_id, "failed", TEXTS.get("unexpected_error"))
        finally:
            self.tasks.pop(run_id, None)
            self._cancel.pop(run_id, None)

    def _refused_finetune(self, run_id: int) -> bool:
        try:
            text = log_file(self.settings, run_id).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
        # The output of the last attempt, without its command line (which says --finetune).
        attempt = text.rsplit("\n$ ", 1)[-1].partition("\n")[2][-20000:]
        return any(marker in attempt for marker in NOT_FINETUNABLE)

    def _remove_partial(self, run_id: int) -> None:
        for p in (model_file(self.settings, run_id), self._report_file(run_id)):
            with contextlib.suppress(OSError):
                p.unlink()

    def _report_file(self, run_id: int) -> Path:
        return self.settings.models_dir / "reports" / f"run-{run_id}.json"

    async def _evaluate(
        self, run_id: int, model: Path, base: Path | None, progress: Progress
    ) -> dict[str, Any]:
        out = self._report_file(run_id)
        pairs = [(model, out)]
        base_cache = None
        if base is not None and await asyncio.to_thread(base.is_file):
            base_cache = await asyncio.to_thread(
                evaluation.cache_path, self.settings.models_dir, base, self.settings.project_dir
            )
            if not base_cache.is_file():
                pairs.append((base, base_cache))
        rc = await self._exec(run_id, eval_cmd(self.settings, pairs), progress)
        if rc != 0 or not out.is_file():
            raise RunFailed(TEXTS.get("evaluation_failed"))
        try:
            report = json.loads(out.read_text(encoding="utf-8"))
        except ValueError:
            raise RunFailed(TEXTS.get("report_broken")) from None
        if not isinstance(report, dict):
            raise RunFailed(TEXTS.get("report_broken"))
        # Kept under the model's hash too: once activated, the next run's baseline is ready.
        with contextlib.suppress(OSError):
            mine = await asyncio.to_thread(
                evaluation.cache_path, self.settings.models_dir, model, self.settings.project_dir
            )
            mine.write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
        if base_cache is not None:
            report["baseline_file"] = str(base_cache)
        return report

    async def _exec(self, run_id: int, cmd: list[str], progress: Progress) -> int:
        """Run one command, its output into the run's log and `progress`; Cancelled on a cancel."""
        logf = await asyncio.to_thread(open, log_file(self.settings, run_id), "ab")
        logf.write(("\n$ " + " ".join(cmd) + "\n").encode())
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                cwd=self.settings.project_dir,
                env=subprocess_env(),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError:
            logf.close()
            raise RunFailed(TEXTS.get("train_command_failed")) from None
        changed = asyncio.Event()

        async def read() -> None:
            assert proc.stdout is not None
            pending = b""
            while True:
                chunk = await proc.stdout.read(4096)
                if not chunk:
                    break
                logf.write(chunk)
                pending += chunk
                *lines, pending = re.split(rb"[\r\n]", pending)
                for line in lines:
                    if progress.feed(line.decode("utf-8", "replace")):
                        changed.set()
                if len(pending) > 65536:
                    pending = pending[-4096:]
            if pending and progress.feed(pending.decode("utf-8", "replace")):
                changed.set()

        reader = asyncio.create_task(read())
        cancel = self._cancel.setdefault(run_id, asyncio.Event())
        last_write = time.monotonic()
        try:
            while not reader.done():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(reader), WRITE_EVERY)
                now = time.monotonic()
                if changed.is_set() or now - last_write >= HEARTBEAT_EVERY:
                    changed.clear()
                    last_write = now
                    still_open = await runs.update(self.engine, run_id, progress=progress.as_dict())
                    if not still_open:
                        cancel.set()
                run = await runs.get(self.engine, run_id)
                if run is None or run.cancel_requested:
                    cancel.set()
                if cancel.is_set():
                    await self._kill(proc)
                    raise Cancelled()
            rc = await proc.wait()
            return rc
        except BaseException:
            await self._kill(proc)
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            raise
        finally:
            logf.close()

    async def _kill(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), KILL_GRACE)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


class RunFailed(Exception):
    """The run failed; the message is for the page."""
