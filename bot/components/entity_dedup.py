"""Keep one entity per span (regex and lookup matches win over DIET's guesses), units only from the
lookup, and one full name.

RegexEntityExtractor and DIETClassifier both report `request_code` and `otp_code` (DIET learns them
from the same annotations). DIET sometimes cuts "789 012" into "789" and "012" next to the regex's
"789 012"; the regex is the authority for these codes, so overlapping DIET entities are dropped.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import ENTITIES
from rasa.shared.nlu.training_data.message import Message

from bot.components.stateless import StatelessComponent

REGEX_EXTRACTOR = "RegexEntityExtractor"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class EntityDeduplicator(StatelessComponent):
    """Drops entities that overlap a regex entity of the same type, and exact duplicates."""

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            entities = message.get(ENTITIES) or []
            if entities:
                message.set(ENTITIES, one_full_name(units_from_lookup(dedupe(entities))), add_to_output=True)
        return messages


def dedupe(entities: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    regex = [e for e in entities if e.get("extractor") == REGEX_EXTRACTOR]
    kept: List[Dict[str, Any]] = []
    seen: set[tuple[Any, Any, Any]] = set()
    for e in regex + [e for e in entities if e.get("extractor") != REGEX_EXTRACTOR]:
        key = (e.get("entity"), e.get("start"), e.get("end"))
        if key in seen:
            continue
        # Any DIET span overlapping a regex/lookup match is dropped, whatever its type: DIET sometimes
        # tags "PC05 HA 0000789" as a name, the regex knows it is a code.
        if e.get("extractor") != REGEX_EXTRACTOR and any(
            r["start"] < e.get("end", 0) and e.get("start", 0) < r["end"] for r in regex
        ):
            continue
        # "Quảng Nam" inside "Điện lực Quảng Nam": both are lookup matches; the longer one is meant.
        if e.get("extractor") == REGEX_EXTRACTOR and any(_inside(e, r) for r in regex):
            continue
        seen.add(key)
        kept.append(e)
    return sorted(kept, key=lambda e: (e.get("start", 0), e.get("end", 0)))


def _inside(inner: Dict[str, Any], outer: Dict[str, Any]) -> bool:
    """`inner` lies strictly within `outer` (same type, a shorter span)."""
    return (
        inner is not outer
        and inner.get("entity") == outer.get("entity")
        and outer["start"] <= inner["start"]
        and inner["end"] <= outer["end"]
        and outer["end"] - outer["start"] > inner["end"] - inner["start"]
    )


NAME = "customer_name"


def one_full_name(entities: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """At most one `customer_name`: the longest of two words or more.

    A lookup needs a full name, and the slot keeps the last value it is given: DIET tagging "lần"
    in "hỏi mấy lần rồi" after "Trần Thị Bích Ngọc" replaced the name with "lan".
    """
    names = [e for e in entities if e.get("entity") == NAME and len(str(e.get("value", "")).split()) >= 2]
    best = max(names, key=lambda e: len(str(e.get("value", ""))), default=None)
    return [e for e in entities if e.get("entity") != NAME or e is best]


UNIT = "power_unit"


def units_from_lookup(entities: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Power units only from the lookup (every unit, company and province is in it): DIET tagged
    "điện lực" in "nhờ nhân viên điện lực gọi lại" and "Tám" in a name as units."""
    return [e for e in entities if e.get("entity") != UNIT or e.get("extractor") == REGEX_EXTRACTOR]
