"""Text forms used to compare training examples.

The project's normalizer (bot/components/normalizer.py) is the single source of truth for NFC and tone
placement, and common.folding for folding, so that the trainer compares examples the way the model will
see them. The tone fallback keeps the trainer usable (and its tests runnable) if that module is moved.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from common.folding import strip_diacritics as _fold

try:  # the pipeline's own normalizer: same tone placement for training data and live input
    from bot.components.normalizer import tone_style as _tone_style
except ImportError:  # pragma: no cover - only when bot/components is absent

    def _tone_style(text: str) -> str:
        return text


_SPACES = re.compile(r"\s+")
# Characters that look like a space or nothing but are not a plain space: they make two examples
# that look identical differ for the model.
SUSPICIOUS_CHARS = {
    "\u00a0": "dấu cách không ngắt (NBSP)",
    "\u200b": "ký tự rộng 0 (zero-width space)",
    "\u200c": "ký tự rộng 0 (ZWNJ)",
    "\u200d": "ký tự rộng 0 (ZWJ)",
    "\ufeff": "BOM",
    "\t": "dấu tab",
}


def nfc(text: str) -> str:
    """Unicode NFC (combining marks → precomposed letters)."""
    return unicodedata.normalize("NFC", text)


def is_nfc(text: str) -> bool:
    return unicodedata.is_normalized("NFC", text)


def clean_example(text: str) -> str:
    """What an imported example is stored as: NFC, single spaces, no leading/trailing spaces."""
    return _SPACES.sub(" ", nfc(text)).strip()


# The keys are pure functions of the text; the workbench checks every example and test message
# (about 6,500) on each label it checks, in one long-lived desk process: computed once per text.
KEY_CACHE = 1 << 16


@functools.lru_cache(maxsize=KEY_CACHE)
def compare_key(text: str) -> str:
    """Key for duplicate detection: NFC, one tone style, lower case, no punctuation, single spaces.

    The tokenizer drops punctuation and the featurizers lower-case, so examples equal under this key
    are the same example for the model.
    """
    text = _tone_style(nfc(text)).casefold()
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text)
    return _SPACES.sub(" ", text).strip()


@functools.lru_cache(maxsize=KEY_CACHE)
def folded_key(text: str) -> str:
    """`compare_key` without diacritics (đ → d): how an example typed without accents looks."""
    return _fold(compare_key(text))


def strip_diacritics(text: str) -> str:
    """Remove diacritics character by character, so entity offsets stay valid ("Đà Nẵng" → "Da Nang")."""
    out = []
    for c in text:
        f = _fold(c)
        out.append(f if len(f) == 1 else c)
    return "".join(out)


def tone_style(text: str) -> str:
    return _tone_style(text)
