"""Workbench settings from environment variables, validated once at start-up (agent_desk/config.py
builds them with the desk's own settings).

TRAINING_PROJECT_DIR  the project whose NLU data the workbench edits and trains (bot/data/nlu, config.yml,
                      domain.yml, tests/nlu, nlu_thresholds.yml); default: this repository.
TRAINING_GIT_BRANCH   the branch workbench commits go to; it must be the one checked out in that directory
                      (empty: whatever is checked out). Every saved change is one commit by the trainer.
TRAINING_MODELS_DIR   where trained models are written; default <project>/models/workbench. Rasa servers
                      load them from this path (PUT /model), so it must be readable by them.
TRAINING_RASA_URLS    comma-separated Rasa servers to load an activated model into; default RASA_URL.
TRAINING_EPOCH_FRACTION  fraction of the epochs used when continuing from the production model
                      (finetune); 0.1-1, default 0.3.
TRAINING_PYTHON       the Python that runs `rasa train` and the evaluation (default: the desk's own).
METRICS_TOKEN         also sent to Rasa's `GET /webhooks/metrics/worker` (connectors/metrics_input.py),
                      which tells activation which worker answered.

`train_command` / `eval_command` replace `<python> -m deploy.rasa_main` /
`<python> -m agent_desk.training.evaluation`
(the arguments are appended unchanged); they are a seam for tests, never read from the environment.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from common.metrics import TOKEN_ENV as METRICS_TOKEN_ENV

ROOT = Path(__file__).resolve().parent.parent.parent


class TrainingConfigError(ValueError):
    """A workbench setting is invalid; the message names it."""


@dataclass(frozen=True)
class TrainingSettings:
    project_dir: Path = ROOT
    git_branch: str = ""
    models_dir: Path = ROOT / "models" / "workbench"
    rasa_urls: tuple[str, ...] = field(default=("http://127.0.0.1:5005",))
    epoch_fraction: float = 0.3
    python: str = sys.executable
    metrics_token: str | None = None
    train_command: tuple[str, ...] = ()
    eval_command: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: dict[str, str], rasa_url: str) -> TrainingSettings:
        project = Path(env.get("TRAINING_PROJECT_DIR", "").strip() or ROOT).resolve()
        if not (project / "bot" / "data" / "nlu").is_dir() or not (project / "config.yml").is_file():
            raise TrainingConfigError(
                f"TRAINING_PROJECT_DIR={project} is not a project directory (no bot/data/nlu or config.yml)"
            )
        models = Path(env.get("TRAINING_MODELS_DIR", "").strip() or project / "models" / "workbench")
        urls = tuple(
            u.strip().rstrip("/")
            for u in (env.get("TRAINING_RASA_URLS", "") or rasa_url).split(",")
            if u.strip()
        )
        for url in urls:
            parsed = urlparse(url)
            if parsed.scheme not in {"http", "https"} or not parsed.netloc:
                raise TrainingConfigError(f"TRAINING_RASA_URLS must list http(s) URLs, got {url!r}")
        raw_fraction = env.get("TRAINING_EPOCH_FRACTION", "").strip() or "0.3"
        try:
            fraction = float(raw_fraction)
        except ValueError:
            raise TrainingConfigError(
                f"TRAINING_EPOCH_FRACTION must be a number, got {raw_fraction!r}"
            ) from None
        if not 0.1 <= fraction <= 1:
            raise TrainingConfigError(f"TRAINING_EPOCH_FRACTION must be between 0.1 and 1, got {fraction}")
        branch = env.get("TRAINING_GIT_BRANCH", "").strip()
        return cls(
            project_dir=project,
            git_branch=branch,
            models_dir=models.resolve(),
            rasa_urls=urls or (rasa_url,),
            epoch_fraction=fraction,
            python=env.get("TRAINING_PYTHON", "").strip() or sys.executable,
            metrics_token=(env.get(METRICS_TOKEN_ENV) or "").strip() or None,
        )
