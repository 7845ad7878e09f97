"""Vietnamese full names in free text: family names, the words that end a name, and a finder.

Used by the NLU (`CustomerNameExtractor`) and by the actions (cutting a name out of a form reply).
A name is a family name followed by one to four syllables. A family name typed with diacritics is
compared as typed ("Hồ" is a name, "hồ sơ" is not a name because "sơ" ends it); without diacritics
only the family names that are no common word count ("nguyen" yes; "vo" is also "vợ", "luu" is
"lưu"). Family names that are also everyday words ("Mai", "Cao", "Hà") need a cue before them
("tên", "chủ hộ", "bà") or a capital letter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from bot.components.normalizer import fold, nfc, tone_style

FAMILY_NAMES: Final = frozenset(
    "nguyễn trần lê phạm hoàng huỳnh phan vũ võ đặng bùi đỗ hồ ngô dương lý đinh đoàn lâm mai "
    "trương đào cao lương hà tạ tô châu lưu trịnh thái phùng quách tăng kiều lã lại triệu hứa mạc "
    "thân khúc âu doãn diệp tôn chu giang nghiêm vương nông lò".split()
)
# Also everyday words: a cue or a capital letter is needed.
AMBIGUOUS: Final = frozenset(
    "mai cao hà tô tạ lã lại thái châu lâm giang chu tôn âu thân lưu hồ tăng lý đào đỗ hứa mạc nông lò "
    "khúc doãn dương ngô lương triệu diệp kiều quách".split()
)
FAMILY_NAMES_ASCII: Final = frozenset(
    "nguyen tran pham hoang huynh doan trinh phung quach trieu vuong diep".split()
)
# The others typed without diacritics ("le", "vo", "vu"): only with a capital letter.
# Left out: folded, these are mostly other words ("la" là, "ho" họ, "do" đó, "van" văn/vẫn).
WORDLIKE_ASCII: Final = frozenset("la ta to do ho van chu than au ton lai tang ha mac khuc hua tha".split())
AMBIGUOUS_ASCII: Final = frozenset(fold(n) for n in FAMILY_NAMES) - FAMILY_NAMES_ASCII - WORDLIKE_ASCII
# Family names that are also common verbs ("lưu thông tin", "tăng giá"): after a cue only with a
# middle name next ("anh Lưu Văn Tài"), never on the cue alone.
VERBLIKE: Final = frozenset("lưu tăng".split())
MIDDLE_NAMES: Final = frozenset(
    "văn thị đức hữu ngọc minh thanh quang công đình xuân kim thu bá trọng quốc hoàng mỹ phương "
    "hồng như bảo gia khánh duy tấn tiến trung nhật thành".split()
)
# Words that end a name (compared as typed, lower case, and folded when typed without diacritics).
STOP_WORDS: Final = frozenset(
    "ở tại điện lực mã số yêu cầu của tôi tui mình ạ nhé nha với và thì không có đã đang ký hợp "
    "đồng hồ sơ giúp xem tra cứu bên thuộc là ơi rồi đó đây này kia để cho từ đến tháng ngày đăng "
    "được nhờ hỏi ghi sai chứ mà nhưng bị còn ông bà cụ đi về ra vào làm sao gì nào đâu khi nữa "
    "trễ chậm xong chưa mấy bao giờ lâu nhà hôm qua nay mai mốt thôi luôn vậy hả nhỉ ấy kìa "
    "phường xã thôn quận huyện tỉnh thành phố đường tới bản".split()
)
# Folded, a stop word may be a name syllable ("thi" is also Thị, "phuong" Phương, "tai" Tài).
STOP_WORDS_ASCII: Final = frozenset(fold(w) for w in STOP_WORDS) - frozenset(
    "minh anh chi nam lan an thi ha mai lam thanh duong huyen quan tinh phuong dong ky hoa "
    "ba cu con dao thon xa pho ngay bao nhung tu".split()
)
# A capitalised stop word still ends a Title-case name when it starts what follows ("Điện lực", "Mã").
HARD_STOPS: Final = frozenset("điện dien mã ma số so hồ pc".split())
# Streets, schools and wards are named after people: "đường Hoàng Diệu" is no customer.
PLACE_WORDS: Final = frozenset(
    "đường phố phường xã thôn quận huyện kiệt hẻm ngõ trường cầu chợ duong pho phuong thon quan "
    "huyen kiet hem ngo truong cho".split()
)
_CUE_WORDS: Final = (
    "tên là hộ ông bà anh chị cô chú bác cụ bố mẹ ba má chồng vợ con cháu em của cho khách hàng nhà"
)
CUES: Final = frozenset(_CUE_WORDS.split()) | frozenset(fold(_CUE_WORDS).split())
_TOKEN: Final = re.compile(r"[^\W\d_]+|[^\w\s]|\d+", re.UNICODE)
MAX_SYLLABLES = 5


def _lower(word: str) -> str:
    return tone_style(nfc(word)).lower()


def is_family_name(word: str, strict: bool = False) -> bool:
    """A family name; `strict` leaves out those typed without diacritics that are also words."""
    lower = _lower(word)
    if lower in FAMILY_NAMES:
        return True
    if not lower.isascii():
        return False
    return lower in FAMILY_NAMES_ASCII or (not strict and lower in AMBIGUOUS_ASCII)


def _ends_name(word: str) -> bool:
    lower = _lower(word)
    return lower in STOP_WORDS if not lower.isascii() else lower in STOP_WORDS_ASCII


def find_names(text: str) -> Iterator[tuple[int, int]]:
    """Spans (start, end) of full names in `text` (two to five syllables from a family name)."""
    tokens = list(_TOKEN.finditer(text))
    words = [t.group(0) for t in tokens]
    i = 0
    while i < len(tokens):
        if not _starts_name(words, i):
            i += 1
            continue
        j = i + 1
        while (
            j < len(tokens)
            and j - i < MAX_SYLLABLES
            and words[j][0].isalpha()
            and text[tokens[j - 1].end() : tokens[j].start()].strip() == ""
            and _continues_name(words, i, j)
        ):
            j += 1
        if j - i >= 2:
            yield tokens[i].start(), tokens[j - 1].end()
            i = j
        else:
            i += 1


def _title(word: str) -> bool:
    return word[0].isupper() and not word.isupper()


def _continues_name(words: list[str], start: int, j: int) -> bool:
    """Word j goes on the name begun at `start`: no stop word, unless the name is typed in Title
    case and so is this word ("Nguyễn Văn Từ", "Lê Thị Hồng Nhung")."""
    word = words[j]
    titled = all(_title(w) for w in words[start:j])
    if titled and j - start >= 2 and not word[0].isupper():
        return False  # "Nguyen Van Tu nhung ...": a Title-case name ends at a lower-case word
    if not _ends_name(word):
        return True
    return _title(word) and _lower(word) not in HARD_STOPS and all(_title(w) for w in words[start:j])


def _starts_name(words: list[str], i: int) -> bool:
    word = words[i]
    if not word[0].isalpha():
        return False
    lower = _lower(word)
    before = _lower(words[i - 1]) if i > 0 else ""
    if before in PLACE_WORDS:
        return False
    after = _lower(words[i + 1]) if i + 1 < len(words) else ""
    cue = before in CUES
    if not is_family_name(word):
        # "Ho Van Dung" inside a sentence: a capitalised word-like family name with two more
        # capitalised syllables; "ten ho thi thu": any family name before "thi" after a cue.
        if lower in WORDLIKE_ASCII:
            if _title(word) and i > 0 and before.isalpha() and _two_titles_after(words, i):
                return True
            return cue and after == "thi"
        return False
    # Typed without diacritics, a cue is not enough ("cho cai", "chau chi"): a capital is.
    if lower in AMBIGUOUS_ASCII and not word[0].isupper():
        return cue and after == "thi"
    if lower in AMBIGUOUS and not (cue or word[0].isupper()):
        return False
    if lower in VERBLIKE and not word[0].isupper():
        return after in MIDDLE_NAMES
    return True


def _two_titles_after(words: list[str], i: int) -> bool:
    nxt = words[i + 1 : i + 3]
    return len(nxt) == 2 and all(w[0].isalpha() and _title(w) for w in nxt)
