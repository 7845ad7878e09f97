"""Vietnamese full names inside a customer's reply: where the name starts and where it ends.

Customers answer "họ tên?" with more than the name: "ba e ten nguyen van an a", "mẹ tôi là Hồ Thị
Lan nhé". The name starts at a family name and ends before a closing particle. A family name typed
with diacritics is compared as typed ("Hồ" is a name, "họ" is not); without diacritics only those
that are no common word ("nguyen" yes, "ho", "le", "dang", "mai" no).
"""

from __future__ import annotations

import re
from typing import Final

from bot.components.normalizer import fold

FAMILY_NAMES: Final = frozenset(
    "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý Đinh Đoàn Lâm Mai "
    "Trương Đào Cao Lương Hà Tạ Tô Châu Lưu Trịnh Thái Phùng Quách Tăng Kiều Lã Lại Văn Triệu "
    "Hứa Mạc Thân Khúc Âu Doãn Diệp Tôn Chu Giang Nghiêm Hoàng Vương".lower().split()
)
# Folded family names that are not also an everyday word in a chat.
FAMILY_NAMES_ASCII: Final = frozenset(
    "nguyen tran pham hoang huynh phan vu vo bui ngo dinh doan dao luu trinh phung quach kieu "
    "trieu vuong nghiem doan diep".split()
)
# Words that close a reply after the name ("... Nguyễn Văn An ạ", "... nha em").
# Not "ha", "nhi": given names ("Nguyễn Thu Hà", "Lê Ngọc Nhi").
_CLOSING: Final = frozenset("a ak ah nhe nha nhen nghen em ad hen luon vay z".split())
_WORD: Final = re.compile(r"^[^\W\d_]+$")


def is_family_name(word: str) -> bool:
    lower = word.lower()
    if lower in FAMILY_NAMES:
        return True
    return lower.isascii() and lower in FAMILY_NAMES_ASCII


def trim_to_name(words: list[str]) -> list[str]:
    """The words from the first family name on, without closing particles; unchanged when no
    family name starts a name of at least two words."""
    out = list(words)
    while len(out) > 2 and fold(out[-1].lower()) in _CLOSING:
        out.pop()
    for i, w in enumerate(out):
        if is_family_name(w) and len(out) - i >= 2 and all(_WORD.match(x) for x in out[i:]):
            return out[i:]
    return out
