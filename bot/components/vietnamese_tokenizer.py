"""Whitespace tokenizer for Vietnamese chat text with a normalised, diacritic-free lemma.

Vietnamese is written with spaces between syllables, so Rasa's whitespace splitting is right.
What this adds: every token keeps its original characters and offsets in `token.text` (entities are
cut from them), while `token.lemma` carries the normalised, folded form (see `normalizer`).
CountVectorsFeaturizer counts lemmas by default (`use_lemma: True`, word and char_wb analyzers), so
"tra cuu ho so", "Tra cứu hồ sơ" and "tra cứu hs" reach DIET as the same features.

Only the first `max_tokens` tokens are kept: a customer message is a few dozen words, and DIET's
memory grows with the token count (a 200,000-character paste ran the server out of memory). The
text itself is untouched, so the regex extractor still sees a request code anywhere in it.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import ACTION_TEXT, RESPONSE, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.components.normalizer import nfc, normalize_token

# Attributes that hold natural language (intent/action names are split, not normalised).
_TEXT_ATTRIBUTES = frozenset({TEXT, RESPONSE, ACTION_TEXT})
MAX_TOKENS = 120


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class VietnameseTokenizer(WhitespaceTokenizer):
    """WhitespaceTokenizer + NFC text + folded, teencode-expanded lemmas."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """WhitespaceTokenizer's options plus `max_tokens`."""
        return {**WhitespaceTokenizer.get_default_config(), "max_tokens": MAX_TOKENS}

    def tokenize(self, message: Message, attribute: str) -> List[Token]:
        """Tokenize on whitespace, then attach the normalised lemma to each token."""
        if attribute in _TEXT_ATTRIBUTES:
            text = message.get(attribute)
            # NFC first: decomposed input (IME combining marks) would otherwise split words apart.
            # Changing the text here keeps every later component (regex, DIET) on the same offsets.
            if isinstance(text, str) and nfc(text) != text:
                message.set(attribute, nfc(text))
        tokens = super().tokenize(message, attribute)
        if attribute in _TEXT_ATTRIBUTES:
            tokens = tokens[: int(self._config.get("max_tokens") or MAX_TOKENS)]
            for token in tokens:
                token.lemma = normalize_token(token.text)
        return tokens
