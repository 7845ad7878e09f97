"""The stock `rasa init` starter bot, the baseline every benchmark compares against.

It is created and trained once per Rasa version and kept outside the clone
(~/.cache/cskh-assistant/starter-bot/<version>/), so benchmark runs do not retrain it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import rasa


def cache_dir() -> Path:
    base = Path(os.environ.get("CSKH_CACHE_DIR", Path.home() / ".cache" / "cskh-assistant"))
    return base / "starter-bot" / rasa.__version__


def ensure_starter_bot() -> Path:
    """Return the directory of the trained starter bot (with its model under models/)."""
    target = cache_dir()
    if target.joinpath(".complete").exists() and list(target.glob("models/*.tar.gz")):
        return target
    print(f">> creating and training the stock `rasa init` bot in {target} (once, ~2 min)", flush=True)
    # Built in a temporary directory and moved into place, so an interrupted run leaves no half bot.
    with tempfile.TemporaryDirectory(prefix="starter-bot-") as tmp:
        work = Path(tmp) / "bot"
        work.mkdir()
        env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
        subprocess.run(
            [sys.executable, "-m", "rasa", "init", "--no-prompt", "--init-dir", str(work)],
            check=True,
            env=env,
            cwd=tmp,
        )
        if not list(work.glob("models/*.tar.gz")):
            raise RuntimeError("`rasa init` produced no model")
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(work), target)
    target.joinpath(".complete").touch()
    return target


def starter_model() -> Path:
    return sorted(ensure_starter_bot().glob("models/*.tar.gz"))[-1]


if __name__ == "__main__":
    print(starter_model())
