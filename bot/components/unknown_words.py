"""Low confidence for messages made only of words never seen in training.

DIET still spreads its probability over the known intents when a message shares nothing with the
training data ("qwxz plmk" came out as `affirm` at 0.7), so FallbackClassifier cannot catch it by
threshold alone. This component remembers the (normalised, folded) word vocabulary of the training
data and sets the intent confidence to 0 when no word of the message is in it and no entity was
found; FallbackClassifier, placed after it, then answers with `nlu_fallback`. Numbers, codes and
entity-bearing messages are left alone (they are answers to the bot's questions).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

log = logging.getLogger(__name__)
VOCABULARY_FILE = "vocabulary.json"


def message_words(message: Message) -> List[str]:
    """Folded words of a message (lemmas may hold expanded teencode: "hop dong"), digits left out."""
    tokens = message.get(TOKENS_NAMES[TEXT]) or []
    return [w for t in tokens for w in (t.lemma or t.text).split() if not any(c.isdigit() for c in w)]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class UnknownWordsGuard(GraphComponent):
    """Zeroes the intent confidence of messages with no known word (see module docstring)."""

    def __init__(self, model_storage: ModelStorage, resource: Resource, vocabulary: set[str] | None = None):
        self._model_storage = model_storage
        self._resource = resource
        self._vocabulary = vocabulary or set()

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {}

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> UnknownWordsGuard:
        return cls(model_storage, resource)

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> UnknownWordsGuard:
        try:
            with model_storage.read_from(resource) as directory:
                vocabulary = set(json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8")))
        except (ValueError, FileNotFoundError):
            log.warning("no vocabulary stored for UnknownWordsGuard; it will not change any intent")
            vocabulary = set()
        return cls(model_storage, resource, vocabulary)

    def train(self, training_data: TrainingData) -> Resource:
        vocabulary: set[str] = set()
        for example in training_data.training_examples:
            vocabulary.update(message_words(example))
        with self._model_storage.write_to(self._resource) as directory:
            (directory / VOCABULARY_FILE).write_text(json.dumps(sorted(vocabulary)), encoding="utf-8")
        self._vocabulary = vocabulary
        return self._resource

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = message.get(INTENT)
            if not self._vocabulary or not intent or message.get(ENTITIES):
                continue
            words = message_words(message)
            if words and not any(w in self._vocabulary for w in words):
                message.set(INTENT, {**intent, "confidence": 0.0}, add_to_output=True)
        return messages
