"""Score a trained model on every set of the project's tests/nlu, as `make nlu-report` does.

    python -m agent_desk.training.evaluation --project DIR --model M.tar.gz --out report.json
                                             [--model M2.tar.gz --out report2.json ...]

Runs in its own process (it imports TensorFlow; the desk never does), started by runner.py. Each set
is scored as typed and on its copy without diacritics (trainer/evaluate.py). The JSON has, per set,
accuracy, macro F1, per-intent precision/recall/F1, the top confusions and the confusion matrix; and,
per message, the predicted intent (to list the predictions that changed between two models). The
report-only set (trainer/report.py REPORT_ONLY_STEM) gets figures only: its messages are written
nowhere.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from agent_desk.training.texts import TEXTS

REPORT_FORMAT = 1


def file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tests_hash(project_dir: Path) -> str:
    """Hash of the test sets: a cached report is valid for one model and one version of tests/nlu."""
    h = hashlib.sha256(str(REPORT_FORMAT).encode())
    for f in sorted((project_dir / "tests" / "nlu").glob("*.yml")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def cache_path(models_dir: Path, model: Path, project_dir: Path) -> Path:
    """Where the report of `model` on the current test sets is kept (models_dir/reports/)."""
    return models_dir / "reports" / f"{file_sha(model)}-{tests_hash(project_dir)}.json"


def _variants(project_dir: Path) -> tuple[Any, dict[str, tuple[str, str, list[Any]]]]:
    from trainer import evaluate, report
    from trainer import settings as trainer_settings
    from trainer.project import Project

    settings = trainer_settings.load(project_dir)
    project = Project.load(settings)
    broken = [
        f"{settings.rel(f.path)}:{p.line}: {p.message}" for f in project.test for p in f.problems if p.fatal
    ]
    if broken:
        raise ValueError(TEXTS.get("tests_broken", problems="; ".join(broken[:5])))
    out: dict[str, tuple[str, str, list[Any]]] = {}
    for f in sorted(project.test, key=lambda f: f.path.name):
        examples = list(f.examples("intent"))
        if not examples:
            continue
        stem = f.path.stem
        out[report.run_name(stem, report.WITH)] = (stem, report.WITH, examples)
        out[report.run_name(stem, report.WITHOUT)] = (
            stem,
            report.WITHOUT,
            evaluate.stripped_examples(examples),
        )
    if not out:
        raise ValueError(TEXTS.get("tests_empty"))
    return settings, out


def build_report(model: Path, project_dir: Path) -> dict[str, Any]:
    from trainer import evaluate, report

    settings, variants = _variants(project_dir)
    names = list(variants)
    parses = evaluate.parse_texts(model, [[e.plain for e in variants[n][2]] for n in names])
    sets = []
    predictions: dict[str, dict[str, list[Any]]] = {}
    for name, parsed in zip(names, parses, strict=True):
        stem, variant, examples = variants[name]
        scores = evaluate.score(name, examples, parsed, settings.rel)
        report_only = stem == report.REPORT_ONLY_STEM
        sets.append(
            {
                "name": name,
                "stem": stem,
                "variant": variant,
                "no_diacritics": variant == report.WITHOUT,
                "report_only": report_only,
                "examples": len(scores.cases),
                "accuracy": scores.accuracy,
                "macro_f1": scores.macro_f1,
                "weighted_f1": scores.weighted_f1,
                "per_intent": scores.per_intent,
                "top_confusions": [list(t) for t in scores.top_confusions(15)],
                "labels": scores.labels,
                "confusion": scores.confusion,
            }
        )
        if not report_only:  # never a message of the report-only set
            predictions[name] = {
                c.text: [c.expected, c.predicted, round(c.confidence, 3)] for c in scores.cases
            }
    return {
        "format": REPORT_FORMAT,
        "model": model.name,
        "sha256": file_sha(model),
        "tests": tests_hash(project_dir),
        "generated": time.time(),
        "thresholds": {
            "min_accuracy": settings.min_accuracy,
            "min_accuracy_no_diacritics": settings.min_accuracy_no_diacritics,
        },
        "sets": sets,
        "predictions": predictions,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--model", type=Path, action="append", required=True)
    parser.add_argument("--out", type=Path, action="append", required=True)
    args = parser.parse_args(argv)
    if len(args.model) != len(args.out):
        parser.error("one --out per --model")
    # This process runs on the Rasa environment (TRAINING_PYTHON): load the two models without Rasa's
    # training step at load time (deploy/rasa_fast_start.py: same parses, a fraction of the time).
    from deploy import rasa_fast_start, rasa_patches

    rasa_patches.install(rasa_fast_start.PATCHES)
    for model, out in zip(args.model, args.out, strict=True):
        print(f">> evaluating {model.name}", flush=True)
        started = time.monotonic()
        result = build_report(model, args.project.resolve())
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
        tmp.replace(out)
        print(f">> evaluated {model.name} in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
