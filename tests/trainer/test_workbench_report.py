"""The workbench's report (agent_desk/training/evaluation.py) on every set of the project's tests/nlu,
with a stand-in parser: each set twice (as typed, without diacritics), figures for all, and no message
of the report-only set in the predictions. The real models are scored by the browser journey
(tests/browser/test_training_workbench.py), on the held-out set only for time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent_desk.training import evaluation
from trainer import evaluate, report

ROOT = Path(__file__).resolve().parents[2]


def test_every_set_is_scored_twice_and_report_only_messages_stay_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model = tmp_path / "m.tar.gz"
    model.write_bytes(b"not a model: the parser is stood in for")
    seen: list[list[str]] = []

    def parse_texts(path: Path, batches: list[list[str]]) -> list[list[dict[str, Any]]]:
        assert path == model
        seen.extend(batches)
        # Every message read as "greet" with 0.9: accuracy is the share of greet examples.
        return [
            [{"text": t, "intent": {"name": "greet", "confidence": 0.9}, "entities": []} for t in b]
            for b in batches
        ]

    monkeypatch.setattr(evaluate, "parse_texts", parse_texts)
    built = evaluation.build_report(model, ROOT)

    stems = sorted(f.stem for f in (ROOT / "tests" / "nlu").glob("*.yml"))
    sets = {s["name"]: s for s in built["sets"]}
    assert sorted({s["stem"] for s in built["sets"]}) == stems
    assert len(sets) == 2 * len(stems) == len(seen)
    for stem in stems:
        typed, plain = sets[report.run_name(stem, report.WITH)], sets[report.run_name(stem, report.WITHOUT)]
        assert (
            typed["examples"] == plain["examples"] > 0
            and plain["no_diacritics"]
            and not typed["no_diacritics"]
        )
        assert typed["report_only"] == plain["report_only"] == (stem == report.REPORT_ONLY_STEM)
        assert 0 <= typed["accuracy"] < 1  # not every example is a greeting
    only = [n for n, s in sets.items() if s["report_only"]]
    assert only and not set(only) & set(built["predictions"])
    names = list(sets)
    elsewhere = {t for i, batch in enumerate(seen) if names[i] not in only for t in batch}
    report_only_texts = {t for i, batch in enumerate(seen) if names[i] in only for t in batch} - elsewhere
    predicted = {t for p in built["predictions"].values() for t in p}
    assert len(report_only_texts) > 100 and not report_only_texts & predicted
    assert built["model"] == model.name and built["tests"] == evaluation.tests_hash(ROOT)
