"""Vietnamese full names inside a customer's reply: where the name starts and where it ends.

Customers answer "họ tên?" with more than the name: "ba e ten nguyen van an a", "mẹ tôi là Hồ Thị
Lan nhé". The name starts at a family name (`bot.components.vietnamese_names`) and ends before a closing
particle.
"""

from __future__ import annotations

import re
from typing import Final

from bot.components.normalizer import fold
from bot.components.vietnamese_names import is_family_name

# Words that close a reply after the name ("... Nguyễn Văn An ạ", "... nha em").
# Compared as typed: "nhé" closes a reply, "Nhã" ends a name. Not "ha", "nhi": given names.
_CLOSING: Final = frozenset("ạ à a ak ah nhé nha nhen nghen em ad hen luôn vậy z".split())
_CLOSING_ASCII: Final = frozenset(fold(w) for w in _CLOSING)
_WORD: Final = re.compile(r"^[^\W\d_]+$")


def _closing(word: str) -> bool:
    if word == "A":  # "Lê Văn A": a capital A is a name, a small "a" is "ạ" typed without marks
        return False
    lower = word.lower()
    return lower in (_CLOSING if not lower.isascii() else _CLOSING_ASCII)


def trim_to_name(words: list[str]) -> list[str]:
    """The words from the first family name on, without closing particles; unchanged when no
    family name starts a name of at least two words."""
    out = list(words)
    while len(out) > 2 and _closing(out[-1]):
        out.pop()
    for i, w in enumerate(out):
        if is_family_name(w) and len(out) - i >= 2 and all(_WORD.match(x) for x in out[i:]):
            return out[i:]
    return out
