"""Train the Rasa model only when its inputs changed.

The model file is named after a hash of everything training reads (config, domain, NLU data and
the custom components), and kept in a cache outside the clone, so a fresh clone on the same machine
(CI) and every test run reuse it instead of spending minutes retraining.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAINING_INPUTS = ("config.yml", "domain.yml", "bot/data", "bot/components")
RASA_VERSION = "3.6.21"


def cache_dir() -> Path:
    return Path(os.environ.get("CSKH_CACHE_DIR", Path.home() / ".cache" / "cskh-assistant")) / "models"


def data_hash(root: Path = ROOT, inputs: tuple[str, ...] = TRAINING_INPUTS) -> str:
    """Hash of the training inputs' paths and contents (order-independent of the file system)."""
    h = hashlib.sha256(RASA_VERSION.encode())
    for name in inputs:
        p = root / name
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            if f.suffix in {".pyc"} or "__pycache__" in f.parts:
                continue
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def model_path(root: Path = ROOT) -> Path:
    return root / "models" / f"cskh-{data_hash(root)}.tar.gz"


def train_env(root: Path = ROOT) -> dict[str, str]:
    """Environment of `rasa train`: Rasa's telemetry and crash reports off, as in every devstack process."""
    return {**os.environ, "PYTHONPATH": str(root), "RASA_TELEMETRY_ENABLED": "false"}


def ensure_model(root: Path = ROOT, force: bool = False, finetune: bool = False) -> Path:
    """Return the path of an up-to-date model, training it if needed."""
    target = model_path(root)
    cached = cache_dir() / target.name
    if not force and target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if not force and cached.exists():
        shutil.copy2(cached, target)
        print(f">> model {target.name} taken from the cache", flush=True)
        return target
    print(f">> training model {target.name} (a few minutes on 2 cores)", flush=True)
    started = time.monotonic()
    from devstack.processes import rasa_python  # Rasa's environment, also when called from .venv-svc

    cmd = [
        rasa_python(),
        "-m",
        "deploy.rasa_main",  # Rasa's command line after the patch installer (FINETUNE=1: rasa_finetune)
        "train",
        "--config",
        "config.yml",
        "--domain",
        "domain.yml",
        "--data",
        "bot/data",
        "--out",
        str(target.parent),
        "--fixed-model-name",
        target.name[: -len(".tar.gz")],
    ]
    if finetune:
        previous = sorted(target.parent.glob("cskh-*.tar.gz"), key=lambda p: p.stat().st_mtime)
        if previous:
            cmd += ["--finetune", str(previous[-1])]
    subprocess.run(cmd, cwd=root, check=True, env=train_env(root))
    print(f">> trained in {time.monotonic() - started:.0f} s", flush=True)
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(target, cached)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true", help="retrain even if a model exists")
    parser.add_argument("--finetune", action="store_true", help="fine-tune the latest model")
    parser.add_argument("--print-path", action="store_true", help="only print the model path")
    args = parser.parse_args()
    if args.print_path:
        print(model_path())
        return
    print(ensure_model(force=args.force, finetune=args.finetune))


if __name__ == "__main__":
    main()
