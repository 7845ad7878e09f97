"""Customer names found by rule (a family name and the syllables after it), with DIET as a fallback.

DIET learns names from the annotated examples and cuts them short or tags a stray word ("lần" as
"lan"); a Vietnamese full name has a shape a rule finds with and without diacritics, after a
relative or a title ("bố tôi là Trần Văn Hùng"). When the rule finds names they replace DIET's;
when it finds none, DIET's (one full name, see `entity_dedup`) stay.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.components.stateless import StatelessComponent
from bot.components.vietnamese_names import find_names

NAME = "customer_name"
EXTRACTOR = "CustomerNameExtractor"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class CustomerNameExtractor(StatelessComponent):
    """Adds rule-found `customer_name` entities in place of DIET's (see the module docstring)."""

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if isinstance(text, str) and text:
                entities = with_rule_names(text, message.get(ENTITIES) or [])
                message.set(ENTITIES, entities, add_to_output=True)
        return messages


def with_rule_names(text: str, entities: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    others = [e for e in entities if e.get("entity") != NAME]
    taken = [(e["start"], e["end"]) for e in others if "start" in e and "end" in e]
    found = [
        {"entity": NAME, "start": a, "end": b, "value": text[a:b], "extractor": EXTRACTOR}
        for a, b in find_names(text[:2000])
        if not any(s < b and a < e for s, e in taken)  # inside a code or a unit: not a person
    ]
    if not found:
        return entities
    return sorted(others + found, key=lambda e: (e.get("start", 0), e.get("end", 0)))
