"""Where the trainer finds the project's files, and the thresholds kept in the repo (nlu_thresholds.yml)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
THRESHOLDS_FILE = "nlu_thresholds.yml"


class SettingsError(Exception):
    """The thresholds file is missing a value or has a wrong one."""


@dataclass(frozen=True)
class Settings:
    root: Path
    min_accuracy: float = 0.85
    min_accuracy_no_diacritics: float = 0.75
    min_examples_per_intent: int = 8
    review_max_confidence: float = 0.6
    handoff_actions: tuple[str, ...] = ("action_request_handoff",)
    topic_files: dict[str, str] = field(default_factory=dict)
    # Paths, relative to root.
    nlu_dir: str = "bot/data/nlu"
    data_dir: str = "bot/data"
    test_dir: str = "tests/nlu"
    domain: str = "domain.yml"
    config: str = "config.yml"
    # Rasa's default pipeline, trained on the same data: the reference row of make nlu-report.
    reference_config: str = "trainer/reference_config.yml"
    reports_dir: str = "reports/nlu"

    def path(self, rel: str) -> Path:
        p = Path(rel)
        return p if p.is_absolute() else self.root / p

    def rel(self, path: Path) -> str:
        """Path as shown in messages: relative to the project root when inside it."""
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)


_FLOATS_0_1 = ("min_accuracy", "min_accuracy_no_diacritics", "review_max_confidence")


def load(root: Path | None = None) -> Settings:
    """Read `<root>/nlu_thresholds.yml` (all keys optional) and check every value."""
    root = (root or Path(os.environ.get("TRAINER_ROOT", ROOT))).resolve()
    path = root / THRESHOLDS_FILE
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise SettingsError(f"{path}: YAML hỏng: {exc}") from exc
        if not isinstance(raw, dict):
            raise SettingsError(f"{path}: phải là một bảng khóa: giá trị")
    known = set(Settings.__dataclass_fields__) - {"root"}
    unknown = set(raw) - known
    if unknown:
        raise SettingsError(f"{path}: khóa không biết: {', '.join(sorted(unknown))}")
    for key in _FLOATS_0_1:
        if key in raw and not (isinstance(raw[key], (int, float)) and 0 <= raw[key] <= 1):
            raise SettingsError(f"{path}: '{key}' phải là số từ 0 đến 1 (ví dụ 0.85), đang là {raw[key]!r}")
    if "min_examples_per_intent" in raw and not (
        isinstance(raw["min_examples_per_intent"], int) and 1 <= raw["min_examples_per_intent"] <= 1000
    ):
        raise SettingsError(f"{path}: 'min_examples_per_intent' phải là số nguyên từ 1 đến 1000")
    if "topic_files" in raw:
        tf = raw["topic_files"] or {}
        if not isinstance(tf, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tf.items()
        ):
            raise SettingsError(f"{path}: 'topic_files' phải là bảng ý định: tệp")
        raw["topic_files"] = tf
    if "handoff_actions" in raw:
        raw["handoff_actions"] = tuple(raw["handoff_actions"] or ())
    return Settings(root=root, **raw)
