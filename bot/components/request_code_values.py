"""Request-code entities come out of the NLU normalised: "pc05-ha 0003391" → "PC05HA0003391".

The regex extractor reports the span as typed; every consumer (slots, the agent desk, the service)
wants the one form defined in `common.request_code`, so the value is rewritten once, here.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import ENTITIES, ENTITY_ATTRIBUTE_TYPE, ENTITY_ATTRIBUTE_VALUE
from rasa.shared.nlu.training_data.message import Message

from bot.components.stateless import StatelessComponent
from common.request_code import normalize_request_code

REQUEST_CODE = "request_code"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class RequestCodeNormalizer(StatelessComponent):
    """Rewrites the value of each `request_code` entity to its normalised form."""

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            entities = message.get(ENTITIES) or []
            if any(e.get(ENTITY_ATTRIBUTE_TYPE) == REQUEST_CODE for e in entities):
                message.set(ENTITIES, normalise_codes(entities), add_to_output=True)
        return messages


def normalise_codes(entities: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Entities with normalised request-code values; a span that is no code keeps its text."""
    out = []
    for e in entities:
        if e.get(ENTITY_ATTRIBUTE_TYPE) == REQUEST_CODE:
            code = normalize_request_code(e.get(ENTITY_ATTRIBUTE_VALUE))
            if code:
                e = {**e, ENTITY_ATTRIBUTE_VALUE: code}
        out.append(e)
    return out
