"""trainer.entity_markup reads entity markup exactly as Rasa 3.6 does (the desk's workbench uses it
without Rasa, in the service environment)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trainer import entity_markup

rasa_parser = pytest.importorskip("rasa.shared.nlu.training_data.entities_parser")
ROOT = Path(__file__).resolve().parents[2]
EDGE_CASES = [
    '[Đà Nẵng]{"entity": "unit", "role": "from", "group": "1", "value": "PC04"} nhé',
    '[an][{"entity": "name"}, {"entity": "person", "value": "An"}] đây',
    "[PC05TK0000123](request_code) và [Tam Kỳ](unit:PC05TK)",
    "không có thực thể",
]
BAD = ['[x]{"role": "r"}', '[x]{"entity": 1}', "[x]{2}"]


def _project_examples() -> list[str]:
    out = []
    for path in sorted((ROOT / "bot" / "data" / "nlu").glob("*.yml")):
        for item in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []:
            if "intent" not in item:  # regex and lookup items are not annotated text
                continue
            out += [line.strip()[2:] for line in str(item.get("examples") or "").splitlines() if line.strip()]
    return out


@pytest.mark.parametrize("source", ["project", "edge cases"])
def test_same_entities_and_text_as_rasa(source: str) -> None:
    examples = _project_examples() if source == "project" else EDGE_CASES
    assert examples
    for text in examples:
        assert entity_markup.replace_entities(text) == rasa_parser.replace_entities(text), text
        assert entity_markup.find_entities_in_training_example(
            text
        ) == rasa_parser.find_entities_in_training_example(text), text


@pytest.mark.parametrize("text", BAD)
def test_malformed_entity_dicts_are_refused_like_rasa(text: str) -> None:
    with pytest.raises(Exception):  # noqa: B017 (Rasa raises its own types)
        rasa_parser.find_entities_in_training_example(text)
    with pytest.raises(entity_markup.InvalidEntityFormat):
        entity_markup.find_entities_in_training_example(text)
