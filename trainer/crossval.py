"""`make crossval`: k-fold cross-validation on the training data (on demand: it trains k models)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from trainer.settings import ROOT, Settings

TIMEOUT_S = 4 * 3600


class CrossvalFailed(Exception):
    pass


def run(settings: Settings, folds: int = 3, config: str | None = None, out_dir: Path | None = None) -> Path:
    """Run `rasa test nlu --cross-validation` and write a Markdown summary; returns its path."""
    if not 2 <= folds <= 10:
        raise CrossvalFailed("số phần (folds) phải từ 2 đến 10")
    out = out_dir or settings.path(settings.reports_dir) / "crossval"
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "rasa", "test", "nlu",
        "--nlu", str(settings.path(settings.nlu_dir)),
        "--config", str(settings.path(config or settings.config)),
        "--cross-validation", "-f", str(folds), "--out", str(out),
    ]  # fmt: skip
    if settings.path(settings.domain).exists():
        cmd += ["--domain", str(settings.path(settings.domain))]
    paths = [str(settings.root), str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    proc = subprocess.run(cmd, cwd=settings.root, env=env, timeout=TIMEOUT_S)
    report = out / "intent_report.json"
    if proc.returncode != 0 or not report.exists():
        raise CrossvalFailed(
            f"rasa test nlu --cross-validation thất bại (mã {proc.returncode}); xem thông báo ở trên"
        )
    return summarise(report, folds, out / "crossval.md")


def summarise(report_json: Path, folds: int, out: Path) -> Path:
    data = json.loads(report_json.read_text(encoding="utf-8"))
    acc = data.get("accuracy")
    macro = (data.get("macro avg") or {}).get("f1-score")
    lines = [f"# Kiểm tra chéo {folds} phần (cross-validation)", ""]
    if acc is not None:
        lines.append(f"- Độ chính xác (trên phần để riêng của mỗi lượt): **{100 * acc:.1f} %**")
    if macro is not None:
        lines.append(f"- F1 trung bình (macro): {100 * macro:.1f} %")
    lines += ["", "| ý định | precision | recall | F1 | số câu |", "|---|---:|---:|---:|---:|"]
    rows = {k: v for k, v in data.items() if isinstance(v, dict) and "f1-score" in v and "avg" not in k}
    for name, m in sorted(rows.items(), key=lambda kv: kv[1]["f1-score"]):
        lines.append(
            f"| {name} | {m['precision']:.2f} | {m['recall']:.2f} "
            f"| {m['f1-score']:.2f} | {int(m['support'])} |"
        )
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
