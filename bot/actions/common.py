"""Small helpers shared by the actions: code normalisation, dates, choices, buttons."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from rasa_sdk import Tracker

from bot.actions.signing_api import ChatUser
from bot.components.normalizer import fold_text
from common.chat_identity import CHAT_CHANNELS

REQUEST_CODE_RE = re.compile(r"^PC\d{2}[A-Z]{2}\d{7}$")
# A code inside free text: unit code + 7 digits, separators typed by customers allowed.
REQUEST_CODE_IN_TEXT = re.compile(
    r"pc[\s\-.]?\d{2}[\s\-.]?[a-z]{2}[\s\-.]?\d(?:[\s\-.]?\d){6}", re.IGNORECASE
)
UNIT_CODE_RE = re.compile(r"^PC\d{2}[A-Z]{2}$")
ALL_WORDS = frozenset(
    {"tat ca", "ca hai", "ca 2", "all", "het", "tat", "ky het", "ky tat ca", "toan bo", "ca"}
)


def normalize_request_code(raw: str | None) -> str | None:
    """'pc05-tk 0000123' → 'PC05TK0000123'; None when it cannot be a request code."""
    if not raw or not isinstance(raw, str):  # a payload entity may be a number or a dict
        return None
    code = re.sub(r"[\s\-._]", "", raw.strip()[:40]).upper()
    return code if REQUEST_CODE_RE.match(code) else None


def find_request_code(text: str | None) -> str | None:
    """First well-formed request code inside a free text."""
    match = REQUEST_CODE_IN_TEXT.search(text if isinstance(text, str) else "")
    return normalize_request_code(match.group(0)) if match else None


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


def parse_choices(text: str | None, titles: list[str], allow_many: bool) -> list[int] | None:
    """Indices (0-based) chosen by a reply: '2', '1, 2', '1 va 2', 'tất cả', or words of a title.

    None when nothing could be understood, or when several are given and only one is allowed.
    """
    folded = fold_text(text or "").strip(" .!?")
    if not folded or not titles:
        return None
    if allow_many and (folded in ALL_WORDS or re.search(r"\b(tat ca|ca hai|toan bo)\b", folded)):
        return list(range(len(titles)))
    numbers = [int(n) for n in re.findall(r"\b\d{1,2}\b", folded)]
    if numbers and all(1 <= n <= len(titles) for n in numbers):
        picked = sorted(set(n - 1 for n in numbers))
        return picked if allow_many or len(picked) == 1 else None
    # Words of a title ("hop dong", "thoa thuan dau noi"): pick the titles that contain them all.
    words = [
        w for w in re.findall(r"\w+", folded) if len(w) > 1 and w not in {"ky", "van", "ban", "giay", "to"}
    ]
    if words:
        hits = [i for i, t in enumerate(titles) if all(w in fold_text(t) for w in words)]
        if len(hits) == 1 or (allow_many and hits):
            return hits
    return None


def chat_channel(tracker: Tracker) -> str:
    """The customer's channel name as the signing service expects it."""
    name = (tracker.get_latest_input_channel() or "rest").lower()
    return name if name in CHAT_CHANNELS else "rest"


def chat_user(tracker: Tracker) -> ChatUser:
    """The customer as the signing service checks their verification: channel + sender id."""
    return ChatUser(chat_channel(tracker), tracker.sender_id)


def mask_code(code: str) -> str:
    """'PC05TK0000123' → 'PC05TK****123': a request found by name is not handed its code before
    the customer is verified."""
    return code[:6] + "****" + code[-3:] if len(code) > 9 else "****"
