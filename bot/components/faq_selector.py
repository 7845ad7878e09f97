"""ResponseSelector that runs only when the intent classifier chose its retrieval intent.

Rasa runs the ResponseSelector (a second TensorFlow model) on every message, although its answer
is used only when the intent is `faq`: 13 % of a turn's time in bench/profile_rasa.py, spent on
"tra cứu hồ sơ", "có", OTP codes... This subclass skips it for every other intent; training,
persistence and the `response_selector` output for FAQ questions are ResponseSelector's own.
"""

from __future__ import annotations

from typing import List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.selectors.response_selector import ResponseSelector
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY
from rasa.shared.nlu.training_data.message import Message


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class FaqResponseSelector(ResponseSelector):
    """ResponseSelector that leaves messages of other intents untouched."""

    def process(self, messages: List[Message]) -> List[Message]:
        wanted = [m for m in messages if self.needs_selection(m)]
        if wanted:
            super().process(wanted)
        return messages

    def needs_selection(self, message: Message) -> bool:
        if not self.retrieval_intent:  # one selector for every retrieval intent: keep Rasa's way
            return True
        intent = message.get(INTENT) or {}
        return intent.get(INTENT_NAME_KEY) == self.retrieval_intent
