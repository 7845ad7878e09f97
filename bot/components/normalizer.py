"""Vietnamese text normalisation shared by the NLU pipeline, the actions and the tests.

Customers type with or without diacritics, with old- or new-style tone placement, in teencode
("ko", "dc", "hd"), sometimes with combining marks from an IME. Everything the model sees goes
through the same steps, in this order:

1. NFC (combining marks → precomposed letters; ð typed for đ is fixed),
2. one tone-placement style (old style: "hoà" → "hòa", "thuỷ" → "thủy"),
3. lower case,
4. teencode expansion of whole tokens from a reviewed map,
5. folding: diacritics removed and đ → d, so "tra cuu ho so" == "tra cứu hồ sơ".
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from common.folding import strip_diacritics

# Whole-token teencode. Reviewed: only forms that are unambiguous in a power-company chat.
# Deliberately absent: "ok" (an affirmation, keep it), "r" alone is kept for "rồi" only as a token,
# "k" is expanded only as a whole token (so "50k" is untouched).
TEENCODE: Final[dict[str, str]] = {
    "ko": "không",
    "k": "không",
    "kh": "không",
    "khg": "không",
    "kg": "không",
    "hok": "không",
    "hem": "không",
    "hông": "không",
    "dc": "được",
    "đc": "được",
    "dk": "được",
    "đk": "được",
    "duoc": "được",
    "hd": "hợp đồng",
    "hđ": "hợp đồng",
    "hdmbd": "hợp đồng mua bán điện",
    "hđmbđ": "hợp đồng mua bán điện",
    "mk": "mình",
    "mik": "mình",
    "mh": "mình",
    "j": "gì",
    "gi": "gì",
    "z": "vậy",
    "v": "vậy",
    "vs": "với",
    "r": "rồi",
    "cx": "cũng",
    "ntn": "như thế nào",
    "bn": "bao nhiêu",
    "bnh": "bao nhiêu",
    "tks": "cảm ơn",
    "thks": "cảm ơn",
    "thanks": "cảm ơn",
    "thank": "cảm ơn",
    "ad": "admin",
    "sdt": "số điện thoại",
    "sđt": "số điện thoại",
    "đt": "điện thoại",
    "dt": "điện thoại",
    "ns": "nói",
    "trl": "trả lời",
    "nv": "nhân viên",
    "ng": "người",
    "nguoi": "người",
    "b": "bạn",
    "đl": "điện lực",
    "dl": "điện lực",
    "e": "em",
    "a": "anh",
    "c": "chị",
    # Added with the real-chat sets (issue 15): Gen-Z and Zalo shorthand.
    "khum": "không",
    "hk": "không",
    "bik": "biết",
    "bít": "biết",
    "mún": "muốn",
    "cj": "chị",
    "hs": "hồ sơ",
    "yc": "yêu cầu",
    "lm": "làm",
    "trc": "trước",
    "thui": "thôi",
    "zậy": "vậy",
    "dzậy": "vậy",
}

# New-style (modern) tone placement → old style, the style most customers and the seeds use.
_TONE_OLD_STYLE: Final[dict[str, str]] = {
    "oà": "òa",
    "oá": "óa",
    "oả": "ỏa",
    "oã": "õa",
    "oạ": "ọa",
    "oè": "òe",
    "oé": "óe",
    "oẻ": "ỏe",
    "oẽ": "õe",
    "oẹ": "ọe",
    "uỳ": "ùy",
    "uý": "úy",
    "uỷ": "ủy",
    "uỹ": "ũy",
    "uỵ": "ụy",
}
_TONE_RE: Final = re.compile("|".join(map(re.escape, _TONE_OLD_STYLE)))
# Only at the end of a syllable ("hoàng" keeps its tone on a) and not after q ("quý": qu is a consonant).
_TONE_SYLLABLE_RE: Final = re.compile(r"(?<![qQ])(?:" + _TONE_RE.pattern + r")(?!\w)", re.UNICODE)

_TOKEN_RE: Final = re.compile(r"\S+")
_PUNCT_EDGES: Final = re.compile(r"^[^\w]+|[^\w]+$", re.UNICODE)


def nfc(text: str) -> str:
    """Unicode NFC; also maps ð/Ð (eth, often typed for đ) to đ/Đ."""
    return unicodedata.normalize("NFC", text).replace("ð", "đ").replace("Ð", "Đ")


def tone_style(text: str) -> str:
    """Move the tone mark of open syllables to the old-style position (hoà → hòa)."""
    return _TONE_SYLLABLE_RE.sub(lambda m: _TONE_OLD_STYLE[m.group(0)], text)


def fold(text: str) -> str:
    """Remove diacritics and map đ → d (Đ → D); the result is plain ASCII letters for Vietnamese.

    Case and spaces are kept (common.folding.strip_diacritics, the one definition)."""
    return strip_diacritics(text)


def expand_teencode(token: str) -> str:
    """Expand one lower-case token when it is a whole teencode word; punctuation around it is kept."""
    core = _PUNCT_EDGES.sub("", token)
    expansion = TEENCODE.get(core)
    if expansion is None or not core:
        return token
    return token.replace(core, expansion, 1)


def normalize(text: str) -> str:
    """NFC → tone style → lower case → teencode; keeps diacritics (for display and matching)."""
    text = tone_style(nfc(text)).lower()
    return " ".join(expand_teencode(t) for t in _TOKEN_RE.findall(text))


def normalize_token(token: str) -> str:
    """Normalised, diacritic-free form of one token (what the featurizers count)."""
    return fold(normalize(token))


def fold_text(text: str) -> str:
    """Normalised and folded form of a whole text ("Tra cứu HĐ ko?" → "tra cuu hop dong khong?")."""
    return fold(normalize(text))
