"""The search box: one line of text read into filters (no database here).

    nguyễn văn an            name words (any case, with or without diacritics; all must match)
    PC05TK0000123            a request code (spaces, dashes, dots and lower case allowed)
    567 / 0905123567         the phone's last three digits, or the whole number
    zalo, kênh:telegram      channel
    kq:resolved              result tag (key, or its label folded: kq:da-giai-quyet, kq:"đã giải quyết")
    25/12/2025, 01/12/2025-31/12/2025   a day or a range of days (Vietnamese time, both ends included)

Refusals are a `SearchError` with a code and values; the page words them (templates/search.html).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agent_desk.customer_index import mask_phone
from agent_desk.desk_texts import CLOSE_TAGS
from agent_desk.vn_time import VN_TZ
from common.chat_identity import CHAT_CHANNELS
from common.folding import fold
from common.request_code import REQUEST_CODE_IN_TEXT, normalize_request_code

MAX_QUERY = 200  # characters of the box
MAX_WORDS = 6
MAX_PAGE = 100  # 5,000 results: a search that broad needs another word, not more pages
# Tags the desk sets itself when a handoff ends without an agent's choice (agent_desk/desk.py).
SYSTEM_TAGS = ("queue_timeout", "withdrawn", "customer_restart")
TAG_KEYS = (*CLOSE_TAGS, *SYSTEM_TAGS)
FILTER_NAMES = {"kenh": "channel", "channel": "channel", "kq": "tag", "tag": "tag", "ngay": "date"}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SEPARATORS = re.compile(r"[,;]")
# "kết quả: x", "kênh : zalo" -> "kq:x", "kenh:zalo" (after folding)
_FILTER_SPACING = re.compile(r"\bket qua\s*:\s*|\s*:\s*")
# "01/12/2025 - 31/12/2025" -> one token
_DATE_RANGE_SPACING = re.compile(r"(\d{1,2}/\d{1,2}/\d{4})\s*[-–]\s*(?=\d{1,2}/\d{1,2}/\d{4})")
# "0905 123 567" -> one token (a whole number typed in groups)
_SPACED_PHONE = re.compile(r"(?<![\w/])\+?\d(?:[ .\-]?\d){9,11}(?![\w/])")
_TOKEN = re.compile(r'[a-z]+:"[^"]*"|"[^"]*"|\S+')
_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_CODE_LIKE = re.compile(r"^pc[\s\-.]?\d")
_PHONE = re.compile(r"^\+?[0-9][0-9.\-]*$")
_WORD = re.compile(r"^[a-z]+$")


class SearchError(ValueError):
    """Input the box cannot read; `code` and `values` name the message the page shows."""

    def __init__(self, code: str, **values: str | int) -> None:
        super().__init__(code)
        self.code = code
        self.values = values


@dataclass(frozen=True)
class Query:
    words: tuple[str, ...] = ()
    code: str | None = None
    phone_tail: str | None = None
    phone_masked: str | None = None  # a whole number typed, masked as the signing service masks it
    channels: frozenset[str] = field(default_factory=frozenset)
    tags: frozenset[str] = field(default_factory=frozenset)
    since: float | None = None  # epoch seconds, included
    until: float | None = None  # epoch seconds, excluded

    @property
    def empty(self) -> bool:
        return self == Query()


def _tag_aliases() -> dict[str, str]:
    """Every way a tag may be typed after folding: its key, its label with dashes or run together."""
    aliases = {key: key for key in TAG_KEYS}
    aliases.update({key.replace("_", "-"): key for key in TAG_KEYS})
    for key, label in CLOSE_TAGS.items():
        words = fold(label).split()
        aliases.update({"-".join(words): key, "".join(words): key, " ".join(words): key})
    return aliases


TAG_ALIASES = _tag_aliases()
# "kq:da giai quyet" typed without quotes: the label's words belong to the filter.
_SPACED_LABELS = "|".join(re.escape(a) for a in sorted(TAG_ALIASES, key=len, reverse=True) if " " in a)
_SPACED_TAGS = re.compile(rf"\b(?:kq|tag):({_SPACED_LABELS})\b")


def _day(token: str) -> datetime:
    match = _DATE.match(token)
    if not match:
        raise SearchError("bad_date", token=token)
    day, month, year = (int(g) for g in match.groups())
    try:
        value = datetime(year, month, day, tzinfo=VN_TZ)
    except ValueError:
        raise SearchError("bad_date", token=token) from None
    if not 2000 <= year <= 2100:
        raise SearchError("bad_date", token=token)
    return value


def _date_range(token: str) -> tuple[float, float]:
    first, _, last = token.partition("-")
    start = _day(first)
    end = _day(last) if last else start
    if end < start:
        raise SearchError("date_order", token=token)
    return start.timestamp(), (end + timedelta(days=1)).timestamp()


def _phone(token: str) -> tuple[str, str | None]:
    """(last three digits, masked whole number or None) of a typed phone number or tail."""
    digits = re.sub(r"[.\-]", "", token)
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    if len(digits) == 3 and digits.isdigit():
        return digits, None
    if re.fullmatch(r"0[0-9]{9,10}", digits):
        return digits[-3:], mask_phone(digits)
    raise SearchError("bad_phone", token=token)


class _Builder:
    def __init__(self) -> None:
        self.words: list[str] = []
        self.code: str | None = None
        self.phone: tuple[str, str | None] | None = None
        self.channels: set[str] = set()
        self.tags: set[str] = set()
        self.dates: tuple[float, float] | None = None

    def filter(self, name: str, value: str) -> None:
        kind = FILTER_NAMES.get(name)
        value = value.strip('"').strip()
        if kind == "channel":
            if value not in CHAT_CHANNELS:
                raise SearchError("bad_channel", value=value)
            self.channels.add(value)
        elif kind == "tag":
            if value not in TAG_ALIASES:
                raise SearchError("bad_tag", value=value)
            self.tags.add(TAG_ALIASES[value])
        elif kind == "date":
            self.date(value)
        else:
            raise SearchError("bad_filter", name=name)

    def date(self, token: str) -> None:
        if self.dates is not None:
            raise SearchError("two_dates")
        self.dates = _date_range(token)

    def token(self, token: str) -> None:
        name, colon, value = token.partition(":")
        if colon and _WORD.match(name):
            self.filter(name, value)
        elif token in CHAT_CHANNELS:
            self.channels.add(token)
        elif "/" in token:
            self.date(token)
        elif _CODE_LIKE.match(token):
            code = normalize_request_code(token)
            if code is None:
                raise SearchError("bad_code", token=token)
            if self.code not in (None, code):
                raise SearchError("two_codes")
            self.code = code
        elif _PHONE.match(token):
            if self.phone is not None:
                raise SearchError("two_phones")
            self.phone = _phone(token)
        elif _WORD.match(token):
            if len(self.words) == MAX_WORDS:
                raise SearchError("too_many_words", max=MAX_WORDS)
            self.words.append(token)
        else:
            raise SearchError("bad_word", token=token)

    def query(self) -> Query:
        return Query(
            words=tuple(self.words),
            code=self.code,
            phone_tail=self.phone[0] if self.phone else None,
            phone_masked=self.phone[1] if self.phone else None,
            channels=frozenset(self.channels),
            tags=frozenset(self.tags),
            since=self.dates[0] if self.dates else None,
            until=self.dates[1] if self.dates else None,
        )


def _normalise(text: str) -> str:
    """Folded, with the forms people type brought to one token each: "kết quả: đã giải quyết" ->
    "kq:resolved", "01/12/2025 - 31/12/2025" -> "01/12/2025-31/12/2025", "PC05 TK 0000123" ->
    "pc05tk0000123", "0905 123 567" -> "0905123567"."""
    folded = fold(_SEPARATORS.sub(" ", _CONTROL.sub(" ", text)))
    folded = _FILTER_SPACING.sub(lambda m: "kq:" if m.group(0).startswith("ket") else ":", folded)
    folded = _SPACED_TAGS.sub(lambda m: "kq:" + TAG_ALIASES[m.group(1)], folded)
    folded = _DATE_RANGE_SPACING.sub(r"\1-", folded)
    folded = _SPACED_PHONE.sub(lambda m: m.group(0).replace(" ", ""), folded)
    return REQUEST_CODE_IN_TEXT.sub(lambda m: (normalize_request_code(m.group(0)) or "").lower(), folded)


def parse(text: str) -> Query:
    """The box's text as filters; SearchError when some part of it cannot be read."""
    if len(text) > MAX_QUERY:
        raise SearchError("too_long", max=MAX_QUERY)
    builder = _Builder()
    for token in _TOKEN.findall(_normalise(text)):
        if token.startswith('"'):  # a name pasted in quotes: its words
            for word in token.strip('"').split():
                builder.token(word)
        else:
            builder.token(token.rstrip(".") or token)
    return builder.query()


def parse_page(raw: str | None) -> int:
    """The page number of the results (1 when absent); ASCII digits only, up to MAX_PAGE."""
    if raw is None or raw == "":
        return 1
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 4 or not 1 <= int(raw) <= MAX_PAGE:
        raise SearchError("bad_page", max=MAX_PAGE)
    return int(raw)
