"""Charts (PNG, matplotlib Agg) and the Markdown + HTML report a trainer reads."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402

from trainer.evaluate import Scores  # noqa: E402

plt.rcParams["font.family"] = "DejaVu Sans"  # has every Vietnamese letter


def confusion_png(scores: Scores, path: Path, title: str) -> None:
    labels = scores.labels
    n = len(labels)
    size = max(5.0, 0.45 * n + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    totals = [sum(row) or 1 for row in scores.confusion]
    shares = [[v / totals[i] for v in row] for i, row in enumerate(scores.confusion)]
    im = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("mô hình đoán")
    ax.set_ylabel("đúng ra là")
    ax.set_title(title)
    for i, row in enumerate(scores.confusion):
        for j, v in enumerate(row):
            if v:
                color = "white" if shares[i][j] > 0.6 else ("#b00020" if i != j else "black")
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(im, ax=ax, fraction=0.04, label="tỉ lệ trong hàng")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def f1_png(main: Scores, stripped: Scores | None, path: Path) -> None:
    labels = sorted(main.per_intent)
    n = len(labels)
    fig, ax = plt.subplots(figsize=(9, max(3.0, 0.32 * n + 1.2)))
    ys = list(range(n))
    h = 0.4 if stripped else 0.7
    main_f1 = [main.per_intent[lab]["f1"] for lab in labels]
    ax.barh([y - (h / 2 if stripped else 0) for y in ys], main_f1, height=h, label="có dấu", color="#1f77b4")
    if stripped:
        plain_f1 = [stripped.per_intent.get(lab, {}).get("f1", 0.0) for lab in labels]
        ax.barh([y + h / 2 for y in ys], plain_f1, height=h, label="không dấu", color="#ff7f0e")
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1 (1 = luôn đúng)")
    ax.set_title("Điểm F1 theo ý định")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def markdown(meta: dict[str, Any], runs: list[Scores], images: dict[str, str]) -> str:
    out = [f"# Báo cáo NLU — {meta['generated']}", ""]
    out += [f"- Mô hình: `{meta['model']}` ({meta['how']})", f"- Cấu hình: `{meta['config']}`"]
    out += [f"- Câu học: {meta['train_examples']} · câu kiểm tra: {meta['test_examples']}"]
    out += [f"- Kết quả: **{meta['verdict']}**", ""]
    for line in meta["failures"]:
        out.append(f"> ❌ {line}")
    report_only = set(meta.get("report_only") or ())
    reference = meta.get("reference") or {}
    out += [
        "",
        "| bộ kiểm tra | số câu | độ chính xác | ngưỡng | F1 macro | F1 ý định thấp nhất | F1 thực thể |"
        " Rasa mặc định: độ chính xác |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in runs:
        gate = "chỉ báo cáo" if s.name in report_only else _pct(meta["thresholds"][s.name])
        ref = reference.get(s.name)
        low = min((m["f1"] for m in s.per_intent.values()), default=0.0)
        out.append(
            f"| {s.name} | {len(s.cases)} | {_pct(s.accuracy)} | {gate} | {_pct(s.macro_f1)} | "
            f"{_pct(low)} | {_pct(s.entity_micro_f1())} | {_pct(ref['accuracy']) if ref else '—'} |"
        )
    if reference:
        out += [
            "",
            f"Dòng tham chiếu: pipeline mặc định của Rasa (`{meta['reference_config']}`), "
            "học trên cùng dữ liệu.",
        ]
    out += ["", f"![F1 theo ý định]({images['f1']})", ""]
    for s in runs:
        out += [f"## {s.name}", "", f"![Ma trận nhầm lẫn]({images[s.name]})", ""]
        out += ["| ý định | precision | recall | F1 | số câu |", "|---|---:|---:|---:|---:|"]
        for lab, m in sorted(s.per_intent.items(), key=lambda kv: kv[1]["f1"]):
            out.append(
                f"| {lab} | {m['precision']:.2f} | {m['recall']:.2f} | {m['f1']:.2f} | {m['support']} |"
            )
        if s.entities:
            out += ["", "| thực thể | precision | recall | F1 | số lần |", "|---|---:|---:|---:|---:|"]
            for lab, m in s.entities.items():
                out.append(
                    f"| {lab} | {m['precision']:.2f} | {m['recall']:.2f} | {m['f1']:.2f} | {m['support']} |"
                )
        pairs = s.top_confusions()
        if pairs:
            out += ["", "Hay nhầm nhất:", ""] + [f"- {a} → {b}: {k} câu" for a, b, k in pairs]
        worst = [] if s.name in report_only else s.worst()
        if s.name in report_only:
            out += ["", "_Bộ chỉ để báo cáo: không liệt kê câu sai, để không ai chỉnh dữ liệu theo nó._"]
        if worst:
            out += ["", "Các câu sai (mô hình càng tự tin càng cần xem):", ""]
            out += ["| câu | đúng ra là | mô hình đoán | độ tin | ở đâu |", "|---|---|---|---:|---|"]
            for c in worst:
                text = c.text.replace("|", "\\|")
                out.append(f"| {text} | {c.expected} | {c.predicted} | {c.confidence:.2f} | {c.where} |")
        out.append("")
    return "\n".join(out) + "\n"


_CSS = """
body{font-family:'DejaVu Sans',Arial,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px}
th{background:#f0f4f8}td.n{text-align:right}.ok{color:#0a7a2f;font-weight:bold}.fail{color:#b00020;font-weight:bold}
.low{background:#fde8e8}img{max-width:100%;border:1px solid #ddd;margin:6px 0}
.box{padding:8px 12px;border-radius:6px;margin:8px 0}.box.fail{background:#fde8e8}.box.ok{background:#e6f4ea}
"""


def html_report(meta: dict[str, Any], runs: list[Scores], images: dict[str, str]) -> str:
    e = html.escape
    ok = not meta["failures"]
    parts = [
        "<!doctype html><html lang='vi'><head><meta charset='utf-8'>",
        f"<title>Báo cáo NLU {e(meta['generated'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>Báo cáo NLU — {e(meta['generated'])}</h1>",
        f"<div class='box {'ok' if ok else 'fail'}'>Kết quả: <span "
        f"class='{'ok' if ok else 'fail'}'>{e(meta['verdict'])}</span>",
    ]
    parts += [f"<br>❌ {e(line)}" for line in meta["failures"]]
    parts.append("</div>")
    parts.append(
        f"<p>Mô hình <code>{e(meta['model'])}</code> ({e(meta['how'])}) "
        f"· cấu hình <code>{e(meta['config'])}</code> · "
        f"{meta['train_examples']} câu học · {meta['test_examples']} câu kiểm tra</p>"
    )
    parts.append(
        "<table><tr><th>bộ kiểm tra</th><th>số câu</th><th>độ "
        "chính xác</th><th>ngưỡng</th><th>F1 macro</th><th>F1 thực thể</th>"
        "<th>Rasa mặc định</th></tr>"
    )
    reference = meta.get("reference") or {}
    for s in runs:
        thr = meta["thresholds"][s.name]
        only = s.name in set(meta.get("report_only") or ())
        cls = "" if only else "ok" if s.accuracy >= thr else "fail"
        ref = reference.get(s.name)
        parts.append(
            f"<tr><td>{e(s.name)}</td><td class='n'>{len(s.cases)}</td><td "
            f"class='n {cls}'>{_pct(s.accuracy)}</td>"
            f"<td class='n'>{'chỉ báo cáo' if only else _pct(thr)}</td><td class='n'>{_pct(s.macro_f1)}</td>"
            f"<td class='n'>{_pct(s.entity_micro_f1())}</td>"
            f"<td class='n'>{_pct(ref['accuracy']) if ref else '—'}</td></tr>"
        )
    parts.append(f"</table><img src='{e(images['f1'])}' alt='F1 theo ý định'>")
    for s in runs:
        parts.append(f"<h2>{e(s.name)}</h2><img src='{e(images[s.name])}' alt='ma trận nhầm lẫn'>")
        parts.append(
            "<table><tr><th>ý định</th><th>precision</th><th>recall</th><th>F1</th><th>số câu</th></tr>"
        )
        for lab, m in sorted(s.per_intent.items(), key=lambda kv: kv[1]["f1"]):
            cls = " class='low'" if m["f1"] < 0.8 else ""
            parts.append(
                f"<tr{cls}><td>{e(lab)}</td><td class='n'>{m['precision']:.2f}</td><td "
                f"class='n'>{m['recall']:.2f}</td>"
                f"<td class='n'>{m['f1']:.2f}</td><td class='n'>{m['support']}</td></tr>"
            )
        parts.append("</table>")
        if s.entities:
            parts.append(
                "<table><tr><th>thực thể</th><th>precision</th><th>recall</th><th>F1</th><th>số lần</th></tr>"
            )
            for lab, m in s.entities.items():
                parts.append(
                    f"<tr><td>{e(lab)}</td><td class='n'>{m['precision']:.2f}</td><td "
                    f"class='n'>{m['recall']:.2f}</td>"
                    f"<td class='n'>{m['f1']:.2f}</td><td class='n'>{m['support']}</td></tr>"
                )
            parts.append("</table>")
        pairs = s.top_confusions()
        if pairs:
            parts.append("<h3>Hay nhầm nhất</h3><ul>")
            parts += [f"<li>{e(a)} → {e(b)}: {k} câu</li>" for a, b, k in pairs]
            parts.append("</ul>")
        worst = [] if s.name in set(meta.get("report_only") or ()) else s.worst()
        if worst:
            parts.append("<h3>Các câu sai (mô hình càng tự tin càng cần xem)</h3>")
            parts.append(
                "<table><tr><th>câu</th><th>đúng ra là</th><th>mô "
                "hình đoán</th><th>độ tin</th><th>ở đâu</th></tr>"
            )
            for c in worst:
                parts.append(
                    f"<tr><td>{e(c.text)}</td><td>{e(c.expected)}</td><td>{e(c.predicted)}</td>"
                    f"<td class='n'>{c.confidence:.2f}</td><td>{e(c.where)}</td></tr>"
                )
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
