"""Small helpers shared by the actions: code normalisation, dates, choices, buttons."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

from rasa_sdk import Tracker

from bot.actions.signing_api import ChatUser
from bot.components.normalizer import fold_text
from common.chat_identity import chat_channel_of
from common.request_code import (  # noqa: F401  (the actions import them from here)
    REQUEST_CODE_IN_TEXT,
    REQUEST_CODE_RE,
    UNIT_CODE_RE,
    find_request_code,
    normalize_request_code,
    normalize_unit_code,
)

ALL_WORDS = frozenset(
    {"tat ca", "ca hai", "ca 2", "all", "het", "tat", "ky het", "ky tat ca", "toan bo", "ca"}
)


def fmt_date(iso: str | None) -> str:
    """ISO timestamp → dd/mm/yyyy (the service sends local +07:00 times)."""
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%d/%m/%Y")
    except ValueError:
        return iso[:10]


def fmt_datetime(iso: str | None) -> str:
    """ISO timestamp → HH:MM dd/mm/yyyy."""
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%H:%M %d/%m/%Y")
    except ValueError:
        return iso


def step_lines(steps: list[Any]) -> str:
    """One line per step: ✔ done (finished date), ▶ current (start date), ○ pending."""
    lines = []
    for step in steps:
        state = step.get("state")
        name = step.get("name", "")
        if state == "done":
            when = fmt_date(step.get("finished_at") or step.get("started_at"))
            lines.append(f"✔ {name}" + (f" ({when})" if when else ""))
        elif state == "current":
            when = fmt_date(step.get("started_at"))
            lines.append(f"▶ {name}" + (f" ({when})" if when else ""))
        else:
            lines.append(f"○ {name}")
    return "\n".join(lines)


def numbered(items: list[str]) -> str:
    return "\n".join(f"{i}. {item}" for i, item in enumerate(items, start=1))


def link_button(title: str, url: str) -> dict[str, str]:
    """A button that opens a URL (channels render it as a link; payload repeats the URL)."""
    return {"title": title[:80], "payload": url, "type": "web_url", "url": url}


def choice_button(title: str, payload: str) -> dict[str, str]:
    return {"title": title[:80], "payload": payload}


# Ordinal and count words customers type instead of a number ("cái thứ hai", "cái đầu", "cả hai").
_ORDINALS: Final = {
    "dau tien": 1,
    "cai dau": 1,
    "thu nhat": 1,
    "mot": 1,
    "thu hai": 2,
    "hai": 2,
    "thu ba": 3,
    "ba": 3,
    "thu tu": 4,
    "bon": 4,
    "thu nam": 5,
    "nam": 5,
}
_ALL_RE: Final = re.compile(r"\b(tat ca|ca hai|ca 2|ca ba|ca 3|toan bo|both|all|het)\b")
_LAST_RE: Final = re.compile(r"\b(cuoi|cuoi cung|sau cung)\b")
_CHOOSING_RE: Final = re.compile(r"\b(cai|so|thu|chon|lay|dong|ban|muc|hang)\b")
# Words around a choice that say nothing about which one ("chỉ ký hợp đồng thôi nhé").
_FILLER_WORDS: Final = frozenset(
    "ky van ban giay to chi thoi cai nhe nha a em anh chi minh toi luon cho xin voi di lay chon "
    "so o cua la ma duoi co".split()
)


def _reply_words(folded: str) -> list[str]:
    """The words of a folded reply that can say which item: not one letter, not filler."""
    return [w for w in re.findall(r"\w+", folded) if len(w) > 1 and w not in _FILLER_WORDS]


def _title_words(titles: list[str]) -> list[set[str]]:
    """Each title's words, punctuation apart ("P. An Mỹ, Q. Hải Châu" has "my" and "chau")."""
    return [set(re.findall(r"\w+", fold_text(t))) for t in titles]


def parse_choices(text: str | None, titles: list[str], allow_many: bool) -> list[int] | None:
    """Indices (0-based) chosen by a reply: '2', '1, 2', 'cái thứ hai', 'tất cả', 'cả 2', the last
    digits shown in a title ('đuôi 789'), or words of a title ('chỉ hợp đồng thôi', 'Minh An').

    None when nothing could be understood, or when several are given and only one is allowed.
    """
    folded = fold_text(text or "").strip(" .!?")
    if not folded or not titles:
        return None
    if allow_many and (folded in ALL_WORDS or _ALL_RE.search(folded)):
        return list(range(len(titles)))
    numbers = [int(n) for n in re.findall(r"\b\d{1,2}\b", folded)]
    if numbers and all(1 <= n <= len(titles) for n in numbers):
        picked = sorted(set(n - 1 for n in numbers))
        return picked if allow_many or len(picked) == 1 else None
    # Last digits of a masked phone or address shown in the title ("cái số đuôi 789").
    for digits in re.findall(r"\d{3,}", folded):
        hits = [i for i, t in enumerate(titles) if re.search(digits + r"\b", fold_text(t))]
        if len(hits) == 1:
            return hits
    # Ordinal and "last" words only when the reply is about choosing ("cái cuối", not "tôi cười").
    choosing = bool(_CHOOSING_RE.search(folded)) or len(folded.split()) == 1
    if choosing and _LAST_RE.search(folded):
        return [len(titles) - 1]
    words = _reply_words(folded)
    title_words = _title_words(titles)
    # Words of a title ("hop dong", "thoa thuan dau noi"): pick the titles that contain them all.
    if words:
        hits = [i for i, tw in enumerate(title_words) if all(w in tw for w in words)]
        if len(hits) == 1 or (allow_many and hits):
            return hits
    for phrase, n in sorted(_ORDINALS.items(), key=lambda kv: -len(kv[0])):
        if choosing and re.search(rf"\b{phrase}\b", folded) and n <= len(titles):
            return [n - 1]
    # Only for a single choice: a sentence such as "không ký hợp đồng" must never pick documents.
    return None if allow_many else described_choice(text, titles)


def chosen_in_request(text: str | None, titles: list[str]) -> list[int] | None:
    """Every document, when a request to sign says so ("ký cả 2 giấy tờ", "ký hết luôn"), so the
    choice is not asked again. Titles are not matched: "ký hợp đồng" is what customers call the
    whole signing step (the status names it so), not the contract alone. "cả 3" of two documents
    says nothing."""
    folded = fold_text(text or "").strip(" .!?")
    if not folded or not titles:
        return None
    count = re.search(r"\bca (\d)\b", folded)
    if count and int(count.group(1)) != len(titles):
        return None
    return list(range(len(titles))) if _ALL_RE.search(folded) else None


def described_choice(text: str | None, titles: list[str]) -> list[int] | None:
    """The one title a description in a sentence fits ("cái nhà ở phường Tân Thạnh đó cháu, số đuôi
    456"): the title with the most words (at least two) that not every title has; None on a tie.
    One shared word is not enough: a name typed again ("nguyen van an") has the "an" of "An Mỹ"."""
    words = set(_reply_words(fold_text(text or "")))
    title_words = _title_words(titles)
    if not words or not title_words:
        return None
    shared = set.intersection(*title_words)
    scores = [len({w for w in words if w in tw and w not in shared}) for tw in title_words]
    best = max(scores)
    return [scores.index(best)] if best >= 2 and scores.count(best) == 1 else None


def chat_channel(tracker: Tracker) -> str:
    """The customer's channel name as the signing service expects it (socketio, cmdline → rest)."""
    return chat_channel_of(tracker.get_latest_input_channel())


def chat_user(tracker: Tracker) -> ChatUser:
    """The customer as the signing service checks their verification: channel + sender id."""
    return ChatUser(chat_channel(tracker), tracker.sender_id)


def mask_code(code: str) -> str:
    """'PC05TK0000123' → 'PC05TK****123': a request found by name is not handed its code before
    the customer is verified."""
    return code[:6] + "****" + code[-3:] if len(code) > 9 else "****"
