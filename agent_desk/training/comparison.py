"""A run's report side by side with the production model's (both from evaluation.py): accuracy per
set, per-intent F1 with the difference, confusion pairs, and the messages whose prediction changed.
The report-only set contributes figures only (its messages are not in the reports at all)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_CHANGED = 300


@dataclass
class Comparison:
    sets: list[dict[str, Any]] = field(default_factory=list)
    set_names: list[str] = field(default_factory=list)
    selected: str = ""
    intents: list[dict[str, Any]] = field(default_factory=list)
    confusions: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    changed_total: int = 0
    fixed: int = 0
    broken: int = 0
    has_base: bool = False


def _by_name(report: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    if not report:
        return {}
    return {str(s.get("name")): s for s in report.get("sets") or [] if isinstance(s, dict)}


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def compare(
    new: dict[str, Any], base: dict[str, Any] | None, selected: str | None, thresholds: dict[str, float]
) -> Comparison:
    out = Comparison(has_base=bool(base))
    new_sets, base_sets = _by_name(new), _by_name(base)
    for name, s in new_sets.items():
        b = base_sets.get(name)
        limit = None
        if not s.get("report_only"):
            limit = thresholds.get("min_accuracy_no_diacritics" if s.get("no_diacritics") else "min_accuracy")
        acc = float(s.get("accuracy") or 0.0)
        base_acc = float(b["accuracy"]) if b else None
        out.sets.append(
            {
                "name": name,
                "report_only": bool(s.get("report_only")),
                "examples": s.get("examples", 0),
                "accuracy": acc,
                "base_accuracy": base_acc,
                "diff": _diff(acc, base_acc),
                "macro_f1": float(s.get("macro_f1") or 0.0),
                "base_macro_f1": float(b["macro_f1"]) if b else None,
                "threshold": limit,
                "below": limit is not None and acc < limit,
            }
        )
    out.set_names = list(new_sets)
    if not out.set_names:
        return out
    out.selected = selected if selected in new_sets else out.set_names[0]
    s, b = new_sets[out.selected], base_sets.get(out.selected) or {}
    new_pi, base_pi = s.get("per_intent") or {}, b.get("per_intent") or {}
    for label in sorted(set(new_pi) | set(base_pi)):
        f1 = new_pi.get(label, {}).get("f1")
        bf1 = base_pi.get(label, {}).get("f1")
        out.intents.append(
            {
                "label": label,
                "support": (new_pi.get(label) or base_pi.get(label) or {}).get("support", 0),
                "f1": f1,
                "base_f1": bf1,
                "diff": _diff(f1, bf1),
            }
        )
    out.intents.sort(key=lambda r: (r["diff"] if r["diff"] is not None else 0.0, r["label"]))
    base_pairs = {(p[0], p[1]): p[2] for p in b.get("top_confusions") or [] if len(p) == 3}
    new_pairs = {(p[0], p[1]): p[2] for p in s.get("top_confusions") or [] if len(p) == 3}
    for pair in sorted(
        set(new_pairs) | set(base_pairs), key=lambda k: -max(new_pairs.get(k, 0), base_pairs.get(k, 0))
    ):
        out.confusions.append(
            {
                "expected": pair[0],
                "predicted": pair[1],
                "count": new_pairs.get(pair),
                "base_count": base_pairs.get(pair),
            }
        )
    _changed(out, new, base)
    return out


def _changed(out: Comparison, new: dict[str, Any], base: dict[str, Any] | None) -> None:
    if not base:
        return
    report_only = {name for name, s in _by_name(new).items() if s.get("report_only")}
    new_p, base_p = new.get("predictions") or {}, base.get("predictions") or {}
    for set_name, preds in new_p.items():
        if set_name in report_only or not isinstance(preds, dict):
            continue
        before = base_p.get(set_name) or {}
        for text, row in preds.items():
            old = before.get(text)
            if not old or len(row) < 2 or len(old) < 2 or old[1] == row[1]:
                continue
            expected, predicted, was = row[0], row[1], old[1]
            kind = "fixed" if predicted == expected else "broken" if was == expected else "other"
            out.changed_total += 1
            out.fixed += kind == "fixed"
            out.broken += kind == "broken"
            if len(out.changed) < MAX_CHANGED:
                out.changed.append(
                    {
                        "set": set_name,
                        "text": text,
                        "expected": expected,
                        "before": was,
                        "after": predicted,
                        "kind": kind,
                    }
                )
    order = {"broken": 0, "fixed": 1, "other": 2}
    out.changed.sort(key=lambda r: (order[r["kind"]], r["set"]))
