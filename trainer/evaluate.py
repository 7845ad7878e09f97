"""Score an NLU model on held-out examples: intent accuracy, per-intent P/R/F1, confusions, entities."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.request_code import is_request_code
from trainer import nludata, textnorm

FALLBACK_INTENT = "nlu_fallback"


@dataclass
class Case:
    """One held-out example and what the model said about it."""

    text: str
    expected: str
    predicted: str
    confidence: float
    where: str  # file:line of the example
    expected_entities: set[tuple[int, int, str]] = field(default_factory=set)
    predicted_entities: set[tuple[int, int, str]] = field(default_factory=set)

    @property
    def correct(self) -> bool:
        return self.expected == self.predicted


@dataclass
class Scores:
    name: str
    cases: list[Case]
    labels: list[str]
    accuracy: float
    macro_f1: float
    weighted_f1: float
    per_intent: dict[str, dict[str, float]]  # label → precision, recall, f1, support
    confusion: list[list[int]]  # rows: expected, columns: predicted, in `labels` order
    entities: dict[str, dict[str, float]]

    def worst(self, n: int = 25) -> list[Case]:
        """Wrong predictions, the most confident first (those teach the most)."""
        return sorted((c for c in self.cases if not c.correct), key=lambda c: -c.confidence)[:n]

    def top_confusions(self, n: int = 10) -> list[tuple[str, str, int]]:
        pairs = Counter((c.expected, c.predicted) for c in self.cases if not c.correct)
        return [(a, b, k) for (a, b), k in pairs.most_common(n)]

    def as_summary(self) -> dict[str, Any]:
        """Figures only, no message: what the report shows of the report-only set."""
        micro = self.entity_micro_f1()
        return {
            "name": self.name,
            "examples": len(self.cases),
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "entity_f1": micro,
            "min_intent_f1": min((m["f1"] for m in self.per_intent.values()), default=0.0),
            "per_intent_f1": {k: round(v["f1"], 3) for k, v in self.per_intent.items()},
            "top_confusions": self.top_confusions(),
        }

    def entity_micro_f1(self) -> float:
        """Entities of every type together: exact span and type (request codes also normalised)."""
        tp = sum(len(c.expected_entities & c.predicted_entities) for c in self.cases)
        got = sum(len(c.predicted_entities) for c in self.cases)
        exp = sum(len(c.expected_entities) for c in self.cases)
        if not exp and not got:
            return 1.0
        prec, rec = (tp / got if got else 0.0), (tp / exp if exp else 0.0)
        return 2 * prec * rec / (prec + rec) if prec + rec else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "examples": len(self.cases),
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "weighted_f1": self.weighted_f1,
            "per_intent": self.per_intent,
            "entities": self.entities,
            "labels": self.labels,
            "confusion": self.confusion,
            "errors": [
                {
                    "text": c.text,
                    "expected": c.expected,
                    "predicted": c.predicted,
                    "confidence": c.confidence,
                    "where": c.where,
                }
                for c in self.worst(1000)
            ],
        }


def predicted_label(parse: dict[str, Any]) -> tuple[str, float]:
    """Intent name, or the full retrieval intent (faq/hotline) when a response selector answered."""
    intent = parse.get("intent") or {}
    name, conf = str(intent.get("name") or "None"), float(intent.get("confidence") or 0.0)
    if intent.get("full_retrieval_intent_name"):
        return str(intent["full_retrieval_intent_name"]), conf
    selectors = parse.get("response_selector") or {}
    sel = selectors.get(name) or (
        selectors.get("default") if name in selectors.get("all_retrieval_intents", []) else None
    )
    if isinstance(sel, dict):
        key = (sel.get("response") or {}).get("intent_response_key")
        if key:
            return str(key), conf
    return name, conf


def load_parser(model: Path):  # type: ignore[no-untyped-def]
    """An async `parse(text) -> dict` backed by the model (imports TensorFlow: call once)."""
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # one debug line per parsed message otherwise
    logging.getLogger("rasa").setLevel(logging.WARNING)
    agent = Agent.load(str(model))
    return agent.parse_message


def score(name: str, examples: list[nludata.Example], parses: list[dict[str, Any]], rel) -> Scores:  # type: ignore[no-untyped-def]
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    cases = []
    for ex, parse in zip(examples, parses, strict=True):
        pred, conf = predicted_label(parse)
        exp_ents = {(e["start"], e["end"], e["entity"]) for e in ex.entities()}
        got_ents = {
            (int(e["start"]), int(e["end"]), str(e["entity"]))
            for e in parse.get("entities") or []
            if "start" in e and "end" in e and _value_ok(e)
        }
        cases.append(Case(ex.plain, ex.name, pred, conf, f"{rel(ex.file)}:{ex.line}", exp_ents, got_ents))
    y_true = [c.expected for c in cases]
    y_pred = [c.predicted for c in cases]
    true_labels = sorted(set(y_true))
    labels = true_labels + sorted(set(y_pred) - set(true_labels))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=true_labels, zero_division=0)
    per_intent = {
        lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, lab in enumerate(true_labels)
    }
    total = len(cases) or 1
    accuracy = sum(c.correct for c in cases) / total
    macro_f1 = float(sum(f) / len(f)) if len(f) else 0.0
    weighted_f1 = float(sum(f[i] * s[i] for i in range(len(f))) / total) if len(f) else 0.0
    cm = confusion_matrix(y_true, y_pred, labels=labels).tolist() if cases else []
    return Scores(name, cases, labels, accuracy, macro_f1, weighted_f1, per_intent, cm, _entity_scores(cases))


def _value_ok(entity: dict[str, Any]) -> bool:
    """A request code counts only when the NLU returned it normalised (PC05HA0003391)."""
    if entity.get("entity") != "request_code":
        return True
    value = entity.get("value")
    return is_request_code(value)


def _entity_scores(cases: list[Case]) -> dict[str, dict[str, float]]:
    names = sorted({e[2] for c in cases for e in c.expected_entities | c.predicted_entities})
    out: dict[str, dict[str, float]] = {}
    for n in names:
        tp = sum(len({e for e in c.expected_entities & c.predicted_entities if e[2] == n}) for c in cases)
        exp = sum(len({e for e in c.expected_entities if e[2] == n}) for c in cases)
        got = sum(len({e for e in c.predicted_entities if e[2] == n}) for c in cases)
        prec = tp / got if got else 0.0
        rec = tp / exp if exp else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out[n] = {"precision": prec, "recall": rec, "f1": f1, "support": exp}
    return out


def stripped_examples(examples: list[nludata.Example]) -> list[nludata.Example]:
    """The same examples typed without diacritics; entity annotations kept (offsets do not move)."""
    out = []
    for ex in examples:
        plain = ex.plain
        stripped = textnorm.strip_diacritics(plain)
        pieces, at = [], 0
        for ent in sorted(ex.entities(), key=lambda e: e["start"]):
            pieces.append(stripped[at : ent["start"]])
            pieces.append(f"[{stripped[ent['start'] : ent['end']]}]({ent['entity']})")
            at = ent["end"]
        pieces.append(stripped[at:])
        out.append(nludata.Example("intent", ex.name, "".join(pieces), ex.file, ex.line))
    return out


def stripped_yaml(examples: list[nludata.Example]) -> str:
    """A Rasa NLU file of the examples (for `rasa test nlu` or for reading)."""
    by_intent: dict[str, list[str]] = {}
    for ex in examples:
        by_intent.setdefault(ex.name, []).append(ex.text)
    nf = nludata.parse_text(Path("test_no_diacritics.yml"), "")
    header = "# Tạo tự động bởi make nlu-report từ tests/nlu (bỏ dấu): đừng sửa tay.\n"
    return header + nludata.rewrite(nf, by_intent)


async def _parse_all(parse, texts: list[str]) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return [await parse(t) for t in texts]


def parse_texts(model: Path, batches: list[list[str]]) -> list[list[dict[str, Any]]]:
    parse = load_parser(model)

    async def run() -> list[list[dict[str, Any]]]:
        return [await _parse_all(parse, b) for b in batches]

    return asyncio.run(run())
