"""Score the trained NLU model on the held-out set and on its diacritic-stripped copy.

    .venv/bin/python -m tests.nlu.evaluate [--model models/cskh-....tar.gz] [--json out.json]

Reports intent accuracy, intent macro F1 (retrieval intents scored as `faq`, plus the accuracy of
the FAQ answer picked by the ResponseSelector) and entity F1 (exact type + span; extractors merged).
The stripped copy is generated here (`strip_example`), never written into the training data.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.components.normalizer import fold
from common.request_code import normalize_request_code

HERE = Path(__file__).resolve().parent
HELDOUT = HERE / "heldout.yml"
ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<entity>[a-z_]+)\)")


@dataclass
class Example:
    text: str
    intent: str  # full label, e.g. "faq/hotline"
    entities: list[tuple[str, int, int]] = field(default_factory=list)  # (entity, start, end)

    @property
    def base_intent(self) -> str:
        return self.intent.split("/")[0]


def parse_line(line: str, intent: str) -> Example:
    """'- tra cứu [PC05TK0000123](request_code)' → text without markup and entity spans."""
    text, entities, pos = "", [], 0
    for m in ANNOTATION.finditer(line):
        text += line[pos : m.start()]
        start = len(text)
        text += m.group("text")
        entities.append((m.group("entity"), start, len(text)))
        pos = m.end()
    text += line[pos:]
    return Example(text, intent, entities)


def load_examples(path: Path = HELDOUT) -> list[Example]:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    examples = []
    for block in data["nlu"]:
        if "intent" not in block:
            continue
        for raw in block["examples"].splitlines():
            raw = raw.strip()
            if raw.startswith("- "):
                examples.append(parse_line(raw[2:].strip(), block["intent"]))
    return examples


def strip_example(example: Example) -> Example:
    """Diacritics removed (đ → d). Vietnamese letters are one code point in NFC, so spans stay put."""
    stripped = fold(example.text)
    assert len(stripped) == len(example.text), example.text
    return Example(stripped, example.intent, list(example.entities))


def label_f1(gold: list[str], predicted: list[str]) -> dict[str, float]:
    """F1 of each gold label."""
    scores = {}
    for label in sorted(set(gold)):
        tp = sum(1 for g, p in zip(gold, predicted, strict=False) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, predicted, strict=False) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, predicted, strict=False) if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores[label] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return scores


def macro_f1(gold: list[str], predicted: list[str]) -> float:
    scores = list(label_f1(gold, predicted).values())
    return sum(scores) / len(scores) if scores else 0.0


def min_f1(gold: list[str], predicted: list[str]) -> float:
    """The worst intent's F1 (the floor: no intent below it)."""
    return min(label_f1(gold, predicted).values(), default=0.0)


def entity_f1(gold: list[set[tuple[str, int, int]]], predicted: list[set[tuple[str, int, int]]]) -> float:
    tp = sum(len(g & p) for g, p in zip(gold, predicted, strict=False))
    fp = sum(len(p - g) for g, p in zip(gold, predicted, strict=False))
    fn = sum(len(g - p) for g, p in zip(gold, predicted, strict=False))
    if tp == 0:
        return 1.0 if fp == fn == 0 else 0.0
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return 2 * precision * recall / (precision + recall)


async def score(agent: Any, examples: list[Example]) -> dict[str, Any]:
    gold_i, pred_i, gold_e, pred_e, errors = [], [], [], [], []
    confidences: list[tuple[str, str, float]] = []  # gold, top intent before the fallback, its confidence
    faq_total = faq_right = selector_elsewhere = 0
    for ex in examples:
        parsed = await agent.parse_message(ex.text)
        intent = (parsed.get("intent") or {}).get("name") or ""
        raw = [r for r in parsed.get("intent_ranking", []) if r.get("name") != "nlu_fallback"]
        confidences.append(
            (ex.base_intent, raw[0]["name"] if raw else "", raw[0]["confidence"] if raw else 0.0)
        )
        gold_i.append(ex.base_intent)
        pred_i.append(intent)
        # A request code counts only when it comes back normalised (PC05HA0003391).
        predicted_entities = {
            (e["entity"], e["start"], e["end"])
            for e in parsed.get("entities", [])
            if e["entity"] != "request_code" or normalize_request_code(e.get("value")) == e.get("value")
        }
        gold_e.append(set(ex.entities))
        pred_e.append(predicted_entities)
        # The FAQ selector runs only for `faq` (bot/components/faq_selector.py), as DIET ranked it:
        # the fallback classifier runs after it and may then replace a low-confidence `faq`.
        classified = raw[0]["name"] if raw else intent
        selector_elsewhere += int(classified != "faq" and bool(parsed.get("response_selector")))
        if ex.base_intent == "faq":
            faq_total += 1
            key = (
                parsed.get("response_selector", {})
                .get("faq", {})
                .get("response", {})
                .get("intent_response_key")
            )
            faq_right += int(key == ex.intent and intent == "faq")
        if intent != ex.base_intent or predicted_entities != set(ex.entities):
            errors.append(
                {
                    "text": ex.text,
                    "gold": ex.intent,
                    "predicted": intent,
                    "entities": sorted(predicted_entities),
                }
            )
    n = len(examples)
    return {
        "examples": n,
        "intent_accuracy": round(sum(g == p for g, p in zip(gold_i, pred_i, strict=False)) / n, 4),
        "intent_macro_f1": round(macro_f1(gold_i, pred_i), 4),
        "intent_min_f1": round(min_f1(gold_i, pred_i), 4),
        "entity_f1": round(entity_f1(gold_e, pred_e), 4),
        "faq_answer_accuracy": round(faq_right / faq_total, 4) if faq_total else None,
        "selector_runs_outside_faq": selector_elsewhere,
        "errors": errors,
        "confidences": confidences,
    }


async def evaluate(model: Path, sets: tuple[str, ...] = ("heldout",)) -> dict[str, Any]:
    """Scores per set (a file `tests/nlu/<name>.yml`) and per diacritic-free copy (`<name>_stripped`)."""
    from rasa.core.agent import Agent

    from deploy import rasa_fast_start, rasa_patches

    logging.getLogger("rasa").setLevel(logging.WARNING)
    # Loaded as the Rasa server loads it (no training step; tests/test_rasa_fast_start.py: same parses).
    rasa_patches.install(rasa_fast_start.PATCHES)
    agent = Agent.load(str(model))
    report: dict[str, Any] = {"model": model.name}
    for name in sets:
        examples = load_examples(HERE / f"{name}.yml")
        report[name] = await score(agent, examples)
        report[f"{name}_stripped"] = await score(agent, [strip_example(e) for e in examples])
    return report


def main() -> int:
    from devstack import model as devmodel

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the full report here")
    args = parser.parse_args()
    model = args.model or devmodel.ensure_model()
    report = asyncio.run(evaluate(model))
    for name in ("heldout", "heldout_stripped"):
        r = report[name]
        print(
            f"{name:17s} n={r['examples']} intent_acc={r['intent_accuracy']:.3f} "
            f"macro_f1={r['intent_macro_f1']:.3f} entity_f1={r['entity_f1']:.3f} "
            f"faq_answer_acc={r['faq_answer_accuracy']}"
        )
        for err in r["errors"]:
            print("   ✗", json.dumps(err, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
