"""The text and buttons of each notice: the `utter_notice_<kind>` responses of `domain.yml`, filled
with the notice's values (`{code}`, `{step}`, ...). Bot text stays in the domain, where trainers and
reviewers read it with the rest of the bot's answers."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import yaml_files
from signing_service import events

DOMAIN = Path(__file__).resolve().parent.parent / "domain.yml"
PREFIX = "utter_notice_"
_FIELD = re.compile(r"\{([a-z_]+)\}")
PAYLOAD_LIMIT = 64  # Telegram's callback_data: the notifier cannot keep a map of longer ones
CODE_LENGTH = 13  # PC05TK0000123


@dataclass(frozen=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True)
class Notice:
    text: str
    buttons: tuple[Button, ...]


def _fill(template: str, values: dict[str, str]) -> str:
    return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), template)


class Messages:
    def __init__(self, responses: dict[str, Any]) -> None:
        self._templates: dict[str, dict[str, Any]] = {}
        missing = []
        for kind in sorted(events.KINDS):
            variants = responses.get(PREFIX + kind) or []
            if not variants or not variants[0].get("text"):
                missing.append(PREFIX + kind)
                continue
            for b in variants[0].get("buttons") or []:
                longest = str(b.get("payload", "")).replace("{code}", "X" * CODE_LENGTH)
                if len(longest.encode()) > PAYLOAD_LIMIT:
                    raise ValueError(f"{PREFIX + kind}: button payload over {PAYLOAD_LIMIT} bytes")
            self._templates[kind] = variants[0]
        if missing:
            raise ValueError(f"domain.yml has no response for: {', '.join(missing)}")

    @classmethod
    def from_domain(cls, path: Path = DOMAIN) -> Messages:
        data = yaml_files.safe_load(path.read_text(encoding="utf-8")) or {}
        return cls(data.get("responses") or {})

    def render(self, kind: str, values: dict[str, str]) -> Notice:
        t = self._templates[kind]
        buttons = tuple(
            # Payloads carry the request ({code}): a tap acts on this notice's request.
            Button(_fill(str(b["title"]), values), _fill(str(b["payload"]), values))
            for b in t.get("buttons") or []
        )
        return Notice(_fill(str(t["text"]), values), buttons)

    def plain(self, kind: str, values: dict[str, str]) -> str:
        """For SMS: the text without buttons or emoji (an emoji turns the SMS into a costlier
        Unicode one and shows as a box on older phones)."""
        text = "".join(ch for ch in self.render(kind, values).text if unicodedata.category(ch) != "So")
        return "EVNCPC: " + " ".join(text.replace("\ufe0f", "").split())
