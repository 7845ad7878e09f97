"""Held-out NLU evaluation: the set is never trained on, and the trained model meets the targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bot.components.normalizer import fold_text
from tests.nlu.evaluate import ANNOTATION, evaluate, load_examples, strip_example

ROOT = Path(__file__).resolve().parents[2]
DESIGN_INTENTS = {
    "greet",
    "goodbye",
    "thank",
    "affirm",
    "deny",
    "cancel",
    "help",
    "bot_challenge",
    "human_handoff",
    "out_of_scope",
    "track_request",
    "inform",
    "view_documents",
    "sign_documents",
    "request_amendment",
    "resend_otp",
    "sign_usb_token",
    "unlink_request",
    "delete_my_data",
    "report_outage",
    "ask_wait_time",  # issue 18: the place in the queue while waiting for a person
    "faq",
    # Issue 16: notices of progress, started and stopped by the customer.
    "notifications_on",
    "notifications_off",
}
FAQ_KEYS = {
    "hotline",
    "processing_time",
    "required_papers",
    "signing_legality",
    "change_contact",
    "bill_payment",
    "electricity_price",
    "meter_check",
    "change_holder",
}
HERE = Path(__file__).resolve().parent
# heldout.yml: the first held-out set (close to the training data's style); heldout_chats.yml:
# written apart from the training data in customers' own ways of typing; report_only.yml: written
# apart from both and looked at only to report (make nlu-report never lists its messages).
SETS = ("heldout.yml", "heldout_chats.yml", "report_only.yml")
ENTITIES = {"request_code", "customer_name", "power_unit", "otp_code"}


def training_texts() -> set[str]:
    texts = set()
    for path in (ROOT / "bot" / "data" / "nlu").glob("*.yml"):
        for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
            for line in (block.get("examples") or "").splitlines():
                line = line.strip()
                if block.get("intent") and line.startswith("- "):
                    texts.add(fold_text(ANNOTATION.sub(r"\g<text>", line[2:])).strip())
    return texts


@pytest.mark.parametrize("name", SETS)
def test_heldout_is_not_in_the_training_data(name: str) -> None:
    seen = training_texts()
    leaked = [e.text for e in load_examples(HERE / name) if fold_text(e.text).strip() in seen]
    assert leaked == []


def test_the_sets_do_not_share_messages() -> None:
    folded = {n: {fold_text(e.text).strip() for e in load_examples(HERE / n)} for n in SETS}
    assert folded["heldout_chats.yml"] & folded["report_only.yml"] == set()
    assert folded["heldout.yml"] & folded["report_only.yml"] == set()


@pytest.mark.parametrize(("name", "at_least"), [("heldout_chats.yml", 400), ("report_only.yml", 300)])
def test_the_independent_sets_are_large(name: str, at_least: int) -> None:
    assert len(load_examples(HERE / name)) >= at_least


@pytest.mark.parametrize("name", ["heldout_chats.yml", "report_only.yml"])
def test_heldout_covers_every_intent_and_entity(name: str) -> None:
    examples = load_examples(HERE / name)
    assert {e.base_intent for e in examples} == DESIGN_INTENTS
    assert {e.intent.split("/")[1] for e in examples if e.base_intent == "faq"} == FAQ_KEYS
    assert {ent for e in examples for ent, _, _ in e.entities} == ENTITIES


def test_stripped_copy_keeps_spans() -> None:
    for example in load_examples():
        stripped = strip_example(example)
        assert stripped.text.isascii() or not fold_text(stripped.text).isascii()
        for _, start, end in example.entities:
            assert fold_text(example.text[start:end]) == fold_text(stripped.text[start:end])


def test_training_data_uses_exactly_the_design_intents_and_entities() -> None:
    intents, entities = set(), set()
    for path in (ROOT / "bot" / "data" / "nlu").glob("*.yml"):
        for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
            if "intent" in block:
                intents.add(block["intent"].split("/")[0])
                for m in ANNOTATION.finditer(block["examples"]):
                    entities.add(m.group("entity"))
    assert intents == DESIGN_INTENTS
    assert entities == ENTITIES


# What the model must keep on the independent held-out set (measured 2026-12-06 over four trainings
# of nearly the same data: intent accuracy 0.951-0.962 with and without diacritics, entity F1 0.97 /
# 0.96, worst intent F1 0.83-0.90: one class of 30 moves it by 0.05); a drop below these fails.
# The targets are 0.95 / 0.94 / 0.95 / 0.85. The report-only set has no floor here on
# purpose: a floor invites tuning on it.
CHATS_FLOORS = {"intent_accuracy": 0.935, "entity_f1": 0.94, "intent_min_f1": 0.8}
CHATS_FLOORS_STRIPPED = {"intent_accuracy": 0.935, "entity_f1": 0.93, "intent_min_f1": 0.8}


@pytest.mark.e2e
@pytest.mark.slow
async def test_model_meets_the_targets(trained_model: Path, tmp_path: Path) -> None:
    report = await evaluate(trained_model, sets=("heldout", "heldout_chats"))
    (tmp_path / "nlu_report.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    heldout, stripped = report["heldout"], report["heldout_stripped"]
    assert heldout["intent_accuracy"] >= 0.95, heldout["errors"]
    assert heldout["intent_macro_f1"] >= 0.95, heldout["errors"]
    assert heldout["entity_f1"] >= 0.95, heldout["errors"]
    assert stripped["intent_accuracy"] >= 0.93, stripped["errors"]
    assert stripped["intent_macro_f1"] >= 0.93, stripped["errors"]
    assert stripped["entity_f1"] >= 0.93, stripped["errors"]
    # FAQ answers still come from the selector, which now runs for `faq` questions only.
    assert heldout["faq_answer_accuracy"] >= 0.9
    assert heldout["selector_runs_outside_faq"] == 0
    for name, floors in (("heldout_chats", CHATS_FLOORS), ("heldout_chats_stripped", CHATS_FLOORS_STRIPPED)):
        for figure, floor in floors.items():
            assert report[name][figure] >= floor, (name, figure, report[name][figure])
