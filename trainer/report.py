"""`make nlu-report`: train (or reuse) an NLU model, score it on the held-out set and on its copy typed
without diacritics, write reports/nlu/report.{md,html} with charts, and fail under the repo's thresholds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from trainer import evaluate, nlumodel, render
from trainer.project import Project
from trainer.settings import Settings

MAIN_SET = "có dấu (tests/nlu)"
STRIPPED_SET = "không dấu (tự bỏ dấu)"


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
    test = [e for f in project.test for e in f.examples("intent")]
    if not test:
        raise ReportError(f"không có câu kiểm tra nào trong {settings.test_dir}/")
    out = out_dir or settings.path(settings.reports_dir)
    out.mkdir(parents=True, exist_ok=True)
    stripped = evaluate.stripped_examples(test)
    (out / "test_no_diacritics.yml").write_text(evaluate.stripped_yaml(stripped), encoding="utf-8")

    model, how = nlumodel.ensure(settings, config=config, finetune=finetune, cache=cache)
    parses = evaluate.parse_texts(model, [[e.plain for e in test], [e.plain for e in stripped]])
    runs = [
        evaluate.score(MAIN_SET, test, parses[0], settings.rel),
        evaluate.score(STRIPPED_SET, stripped, parses[1], settings.rel),
    ]
    thresholds = {MAIN_SET: settings.min_accuracy, STRIPPED_SET: settings.min_accuracy_no_diacritics}
    failures = [
        f"độ chính xác {s.name} {100 * s.accuracy:.1f} % < ngưỡng "
        f"{100 * thresholds[s.name]:.1f} % (nlu_thresholds.yml)"
        for s in runs
        if s.accuracy < thresholds[s.name]
    ]
    images = {
        "f1": "intent_f1.png",
        MAIN_SET: "confusion_matrix.png",
        STRIPPED_SET: "confusion_matrix_no_diacritics.png",
    }
    render.f1_png(runs[0], runs[1], out / images["f1"])
    render.confusion_png(runs[0], out / images[MAIN_SET], "Ma trận nhầm lẫn — câu có dấu")
    render.confusion_png(runs[1], out / images[STRIPPED_SET], "Ma trận nhầm lẫn — câu không dấu")
    meta = {
        "generated": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"),
        "model": model.name,
        "how": {
            "cache": "dùng lại, dữ liệu không đổi",
            "trained": "học mới",
            "finetuned": "học tiếp (finetune)",
        }[how],
        "config": config or settings.config,
        "train_examples": len(project.train_examples()),
        "test_examples": len(test),
        "thresholds": thresholds,
        "failures": failures,
        "verdict": "ĐẠT" if not failures else "KHÔNG ĐẠT",
    }
    (out / "report.md").write_text(render.markdown(meta, runs, images), encoding="utf-8")
    (out / "report.html").write_text(render.html_report(meta, runs, images), encoding="utf-8")
    (out / "results.json").write_text(
        json.dumps({"meta": meta, "runs": [s.as_dict() for s in runs]}, ensure_ascii=False, indent=1),
        encoding="utf-8",
    )
    return ReportResult(out, runs, failures)
