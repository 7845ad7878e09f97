"""An NLU-only model for the report, trained only when its inputs changed.

Like devstack/model.py (whose hash and cache directory it reuses), the model file is named after a
hash of what training reads, so an unchanged data set never retrains. `--finetune` continues from the
last NLU model trained with the same config file: Rasa allows it when only examples changed (no new
intent, entity or config change). If Rasa refuses, a full training runs instead.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from devstack import model as devmodel
from trainer.settings import Settings


class TrainingFailed(Exception):
    pass


def _inputs(settings: Settings, config: str) -> tuple[str, ...]:
    names = [config, settings.nlu_dir, settings.domain, "bot/components"]
    return tuple(n for n in names if (settings.root / n).exists())


def model_name(settings: Settings, config: str) -> str:
    return f"nlu-{devmodel.data_hash(settings.root, _inputs(settings, config))}"


def _full_model(settings: Settings) -> Path | None:
    """The model `make train` (devstack/model.py) built from exactly this data, if there is one.

    Its NLU part was trained from the same config, domain and NLU data, so testing it is testing the
    NLU model; reusing it saves a training run.
    """
    if not all((settings.root / name).exists() for name in devmodel.TRAINING_INPUTS):
        return None
    local = devmodel.model_path(settings.root)
    if local.exists():
        return local
    cached = devmodel.cache_dir() / local.name
    return cached if cached.exists() else None


def _config_key(settings: Settings, config: str) -> str:
    return hashlib.sha256(settings.path(config).read_bytes()).hexdigest()[:16]


def _index_path(cache: Path) -> Path:
    return cache / "nlu-last.json"


def _last_model(cache: Path, config_key: str) -> Path | None:
    try:
        index = json.loads(_index_path(cache).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    p = Path(index.get(config_key, ""))
    return p if p.name and p.exists() else None


def _remember(cache: Path, config_key: str, model: Path) -> None:
    try:
        index = json.loads(_index_path(cache).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {}
    index[config_key] = str(model)
    _index_path(cache).write_text(json.dumps(index, indent=1), encoding="utf-8")


def ensure(
    settings: Settings,
    config: str | None = None,
    finetune: bool = False,
    cache: Path | None = None,
    epoch_fraction: float | None = None,
) -> tuple[Path, str]:
    """Path of the NLU model for the current data, and how it was obtained: cache, trained or finetuned."""
    config = config or settings.config
    cache = cache or devmodel.cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    name = model_name(settings, config)
    target = cache / f"{name}.tar.gz"
    key = _config_key(settings, config)
    if target.exists():
        print(f">> mô hình NLU {target.name}: dữ liệu không đổi, dùng lại bản đã học (cache)", flush=True)
        return target, "cache"
    if not finetune and config == settings.config:
        full = _full_model(settings)
        if full is not None:
            print(f">> dùng mô hình đầy đủ {full.name} của make train (cùng dữ liệu)", flush=True)
            return full, "cache"
    previous = _last_model(cache, key) if finetune else None
    how = "trained"
    if finetune and previous is None:
        print(">> chưa có mô hình cũ cùng cấu hình để học tiếp: học lại từ đầu", flush=True)
    if previous is not None:
        print(f">> học tiếp (finetune) từ {previous.name}", flush=True)
        if _train(settings, config, cache, name, previous, epoch_fraction):
            how = "finetuned"
        else:
            print(
                ">> Rasa không cho học tiếp (có ý định/thực thể mới hoặc cấu hình đổi): học lại từ đầu",
                flush=True,
            )
            previous = None
    if previous is None and not _train(settings, config, cache, name, None, None):
        raise TrainingFailed(f"rasa train nlu thất bại (cấu hình {config}); xem thông báo ở trên")
    _remember(cache, key, target)
    return target, how


def _train(
    settings: Settings,
    config: str,
    cache: Path,
    name: str,
    finetune_from: Path | None,
    epoch_fraction: float | None,
) -> bool:
    """Train in this process (TensorFlow is imported once for training and testing)."""
    from rasa.model_training import train_nlu

    if finetune_from is not None:
        from deploy import rasa_finetune, rasa_patches

        rasa_patches.install(rasa_finetune.PATCHES)  # two throw-away graph traces fewer
    domain = settings.path(settings.domain)
    print(f">> học mô hình NLU {name} (vài phút trên máy 2 nhân)", flush=True)
    started = time.monotonic()
    try:
        result = train_nlu(
            config=str(settings.path(config)),
            nlu_data=str(settings.path(settings.nlu_dir)),
            output=str(cache),
            fixed_model_name=name,
            domain=str(domain) if domain.exists() else None,
            model_to_finetune=str(finetune_from) if finetune_from else None,
            finetuning_epoch_fraction=epoch_fraction or 1.0,
        )
    except SystemExit:  # Rasa exits when a model cannot be fine-tuned with this data
        return False
    if not result or not (cache / f"{name}.tar.gz").exists():
        return False
    print(f">> học xong sau {time.monotonic() - started:.0f} s", flush=True)
    return True
