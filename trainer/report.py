"""`make nlu-report`: train (or reuse) an NLU model, score it on the held-out set and on its copy typed
without diacritics, write reports/nlu/report.{md,html} with charts, and fail under the repo's thresholds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from trainer import evaluate, nludata, nlumodel, render
from trainer.project import Project
from trainer.settings import Settings

# The set looked at only to report a figure: its messages are never listed, so nobody tunes on them.
REPORT_ONLY_STEM = "report_only"
WITH = "có dấu"
WITHOUT = "không dấu"


def run_name(stem: str, variant: str) -> str:
    return f"{stem} · {variant}"


class ReportError(Exception):
    pass


@dataclass
class ReportResult:
    out_dir: Path
    runs: list[evaluate.Scores]
    failures: list[str]

    @property
    def ok(self) -> bool:
        return not self.failures


def build(
    settings: Settings,
    config: str | None = None,
    finetune: bool = False,
    cache: Path | None = None,
    out_dir: Path | None = None,
    with_reference: bool = True,
) -> ReportResult:
    project = Project.load(settings)
    broken = [
        f"{settings.rel(f.path)}:{p.line}: {p.message}"
        for f in project.train + project.test
        for p in f.problems
        if p.fatal
    ]
    if broken:
        raise ReportError("dữ liệu bị lỗi, chạy make validate: " + "; ".join(broken))
    sets = {
        f.path.stem: [e for e in f.examples("intent")]
        for f in sorted(project.test, key=lambda f: f.path.name)
    }
    sets = {stem: examples for stem, examples in sets.items() if examples}
    if not sets:
        raise ReportError(f"không có câu kiểm tra nào trong {settings.test_dir}/")
    out = out_dir or settings.path(settings.reports_dir)
    out.mkdir(parents=True, exist_ok=True)
    variants = {}
    for stem, examples in sets.items():
        variants[run_name(stem, WITH)] = examples
        variants[run_name(stem, WITHOUT)] = evaluate.stripped_examples(examples)
    # The report-only set's sentences are written nowhere, not even without diacritics.
    (out / "test_no_diacritics.yml").write_text(
        evaluate.stripped_yaml(
            [e for stem in sets if stem != REPORT_ONLY_STEM for e in variants[run_name(stem, WITHOUT)]]
        ),
        encoding="utf-8",
    )

    model, how = nlumodel.ensure(settings, config=config, finetune=finetune, cache=cache)
    runs = _score_all(model, variants, settings)
    reference: list[evaluate.Scores] = []
    with_reference = with_reference and settings.path(settings.reference_config).exists()
    if with_reference:
        ref_model, _ = nlumodel.ensure(settings, config=settings.reference_config, cache=cache)
        reference = _score_all(ref_model, variants, settings)
    thresholds = {
        name: settings.min_accuracy if name.endswith(WITH) else settings.min_accuracy_no_diacritics
        for name in variants
    }
    # The report-only set is reported, never gated: a gate invites tuning on it.
    gated = [s for s in runs if not s.name.startswith(REPORT_ONLY_STEM)]
    failures = [
        f"độ chính xác {s.name} {100 * s.accuracy:.1f} % < ngưỡng "
        f"{100 * thresholds[s.name]:.1f} % (nlu_thresholds.yml)"
        for s in gated
        if s.accuracy < thresholds[s.name]
    ]
    main = next((s for s in gated if s.name.endswith(WITH)), runs[0])
    main_plain = next((s for s in runs if s.name == main.name.replace(WITH, WITHOUT)), None)
    images = {"f1": "intent_f1.png"}
    render.f1_png(main, main_plain, out / images["f1"])
    for i, s in enumerate(runs):
        images[s.name] = f"confusion_{i}.png"
        render.confusion_png(s, out / images[s.name], f"Ma trận nhầm lẫn — {s.name}")
    meta: dict[str, Any] = {
        "generated": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"),
        "model": model.name,
        "how": {
            "cache": "dùng lại, dữ liệu không đổi",
            "trained": "học mới",
            "finetuned": "học tiếp (finetune)",
        }[how],
        "config": config or settings.config,
        "reference_config": settings.reference_config if with_reference else None,
        "reference": {s.name: s.as_summary() for s in reference},
        "train_examples": len(project.train_examples()),
        "test_examples": sum(len(v) for v in sets.values()),
        "thresholds": thresholds,
        "report_only": [s.name for s in runs if s.name.startswith(REPORT_ONLY_STEM)],
        "failures": failures,
        "verdict": "ĐẠT" if not failures else "KHÔNG ĐẠT",
    }
    (out / "report.md").write_text(render.markdown(meta, runs, images), encoding="utf-8")
    (out / "report.html").write_text(render.html_report(meta, runs, images), encoding="utf-8")
    (out / "results.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "runs": [s.as_summary() if s.name in meta["report_only"] else s.as_dict() for s in runs],
            },
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
    return ReportResult(out, runs, failures)


def _score_all(
    model: Path, variants: dict[str, list[nludata.Example]], settings: Settings
) -> list[evaluate.Scores]:
    names = list(variants)
    parses = evaluate.parse_texts(model, [[e.plain for e in variants[n]] for n in names])
    return [evaluate.score(n, variants[n], p, settings.rel) for n, p in zip(names, parses, strict=True)]
