"""Vietnamese text without diacritics, for matching: "Nguyễn Văn Đức" and "nguyen van duc" are the same.

One definition for every process: the bot's NLU normalizer and the trainer (`strip_diacritics`), the
signing service's and the desk's name matching (`fold`). The NLU model was trained on these outputs,
so they must not change.
"""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def strip_diacritics(text: str) -> str:
    """Combining marks removed and đ → d, Đ → D ("đ" has no decomposition); NFC; case and spaces kept."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def fold(text: str) -> str:
    """Lower case, no diacritics, single spaces, trimmed: "  Nguyễn   Văn Đức" → "nguyen van duc".

    Every non-spacing mark goes (category Mn, also joiners and variation selectors) and there is no
    final NFC: the names already folded into the service's and the desk's indexes were made so."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return _SPACES.sub(" ", stripped.lower()).strip()
