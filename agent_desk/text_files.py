"""Staff- and visitor-facing texts kept in YAML files under agent_desk/texts/, not in Python.

A file is read once and checked against the keys the code uses, so a missing or misspelt text stops
the desk at start-up with the file and key named, not in front of an agent.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from common import yaml_files

TEXTS_DIR = Path(__file__).resolve().parent / "texts"


class TextFileError(Exception):
    """A texts file is missing, unreadable or lacks a text the code needs."""


def read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml_files.safe_load(fh)
    except OSError as exc:
        raise TextFileError(f"{path}: cannot be read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise TextFileError(f"{path}: not valid YAML ({exc})") from exc


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


class Texts:
    """Named texts of one file; `get(key, **values)` fills its `{placeholders}`."""

    def __init__(self, source: str, texts: Mapping[str, str]) -> None:
        self.source = source
        self._texts = dict(texts)

    def get(self, key: str, **values: Any) -> str:
        return self._texts[key].format(**values)

    def __contains__(self, key: str) -> bool:
        return key in self._texts


def load_texts(path: Path, required: Mapping[str, Iterable[str]], section: str | None = None) -> Texts:
    """The texts of `path` (or of its mapping `section`), each key of `required` present as a
    non-empty string using exactly the placeholders listed for it: an unknown one would fail when
    filled, a dropped one would hide what the code fills in (an agent's name, an error)."""
    data = read_yaml(path)
    if section is not None:
        data = data.get(section) if isinstance(data, dict) else None
    where = f"{path}" + (f" [{section}]" if section else "")
    if not isinstance(data, dict):
        raise TextFileError(f"{where}: expected a mapping of text names to texts")
    texts: dict[str, str] = {}
    for key, allowed in required.items():
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise TextFileError(f"{where}: text {key!r} is missing or empty")
        used = _fields(value)
        unknown = used - set(allowed)
        if unknown:
            raise TextFileError(f"{where}: text {key!r} uses unknown placeholders {sorted(unknown)}")
        dropped = set(allowed) - used
        if dropped:
            raise TextFileError(f"{where}: text {key!r} does not use its placeholders {sorted(dropped)}")
        texts[key] = value.strip()
    extra = sorted(set(data) - set(required))
    if extra:
        raise TextFileError(f"{where}: unknown texts {extra} (misspelt?)")
    return Texts(where, texts)


def load_labels(path: Path, section: str, keys: Iterable[str]) -> dict[str, str]:
    """A mapping section of fixed keys (stored in the database) to their labels, in file order."""
    data = read_yaml(path)
    labels = data.get(section) if isinstance(data, dict) else None
    where = f"{path} [{section}]"
    if not isinstance(labels, dict) or set(labels) != set(keys):
        raise TextFileError(f"{where}: expected exactly the keys {sorted(keys)}")
    bad = [k for k, v in labels.items() if not isinstance(v, str) or not v.strip()]
    if bad:
        raise TextFileError(f"{where}: empty labels for {bad}")
    return {str(k): str(v).strip() for k, v in labels.items()}
