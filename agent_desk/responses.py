"""Customer-facing handoff texts, read from the bot's domain.yml (they live there, not in Python)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from common import yaml_files

log = logging.getLogger(__name__)

HANDOFF_RESPONSES = (
    "utter_handoff_queued",
    "utter_handoff_agent_joined",
    "utter_handoff_returned",
    "utter_handoff_timeout",
)


class MissingResponse(RuntimeError):
    pass


class DomainResponses:
    """Texts of domain.yml responses, reloaded when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: float | None = None
        self._responses: dict[str, Any] = {}
        self._slots: dict[str, Any] = {}

    def _load(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except OSError as exc:
            raise MissingResponse(f"không đọc được {self.path}") from exc
        if mtime == self._mtime:
            return
        with self.path.open(encoding="utf-8") as fh:
            data = yaml_files.safe_load(fh) or {}
        self._responses = data.get("responses") or {}
        self._slots = data.get("slots") or {}
        self._mtime = mtime

    def missing(self) -> list[str]:
        try:
            self._load()
        except MissingResponse:
            return list(HANDOFF_RESPONSES)
        return [name for name in HANDOFF_RESPONSES if not self._first_text(name)]

    def has_slot(self, name: str) -> bool:
        try:
            self._load()
        except MissingResponse:
            return False
        return name in self._slots

    def _first_text(self, name: str) -> str | None:
        variations = self._responses.get(name) or []
        for variation in variations:
            # Prefer the channel-independent variation.
            if isinstance(variation, dict) and variation.get("text") and not variation.get("channel"):
                return str(variation["text"])
        return None

    def buttons(self, name: str) -> list[dict[str, str]]:
        """The `{title, payload}` buttons of the variation `text` uses ([] if it has none)."""
        self._load()
        for variation in self._responses.get(name) or []:
            if isinstance(variation, dict) and variation.get("text") and not variation.get("channel"):
                return [
                    {"title": str(b["title"]), "payload": str(b["payload"])}
                    for b in variation.get("buttons") or []
                    if isinstance(b, dict) and b.get("title") and b.get("payload")
                ]
        return []

    def text(self, name: str, **values: str) -> str:
        self._load()
        text = self._first_text(name)
        if text is None:
            raise MissingResponse(f"domain.yml chưa có response {name}")
        for key, value in values.items():
            # Plain replacement, not str.format: a display name with braces cannot break it.
            text = text.replace("{" + key + "}", value)
        return text
