"""Rasa's entity markup in NLU examples (`[text](entity)`, `[text](entity:value)`, `[text]{...}`),
read without importing Rasa, so the desk's workbench runs in the service environment (Python 3.12,
docs/deploy.md "Supported runtimes"). Same results as rasa.shared.nlu.training_data.entities_parser
of Rasa 3.6 (tests/trainer/test_entity_markup.py compares them where Rasa is installed).
"""

from __future__ import annotations

import json
import re
from typing import Any

# Rasa's ENTITY_REGEX (entities_parser.py), unchanged.
ENTITY_REGEX = re.compile(
    r"\[(?P<entity_text>[^\]]+?)\](\((?P<entity>[^:)]+?)(?:\:(?P<value>[^)]+))?\)"
    r"|\{(?P<entity_dict>[^}]+?)\}|\[(?P<list_entity_dicts>.*?)\])"
)
SINGLE_ENTITY_DICT = re.compile(r"{(?P<entity_dict>[^}]+?)\}")


class InvalidEntityFormat(ValueError):
    """An entity dict that is not JSON or lacks a string `entity` (Rasa raises too)."""


def _entity_dict(json_str: str) -> dict[str, Any]:
    try:
        data = json.loads(f"{{{json_str}}}")
    except json.JSONDecodeError as exc:
        raise InvalidEntityFormat(f"Incorrect training data format ('{{{json_str}}}')") from exc
    if not isinstance(data.get("entity"), str):
        raise InvalidEntityFormat(f"an entity dict needs a string 'entity': {{{json_str}}}")
    for key in ("role", "group"):
        if key in data and not isinstance(data[key], str):
            raise InvalidEntityFormat(f"'{key}' must be a string: {{{json_str}}}")
    if "value" in data and not isinstance(data["value"], str | int | float):
        raise InvalidEntityFormat(f"'value' must be a string or a number: {{{json_str}}}")
    return data


def _entity(start: int, end: int, value: Any, kind: Any, role: Any, group: Any) -> dict[str, Any]:
    entity: dict[str, Any] = {"start": start, "end": end, "value": value, "entity": kind}
    if role:
        entity["role"] = role
    if group:
        entity["group"] = group
    return entity


def find_entities_in_training_example(example: str) -> list[dict[str, Any]]:
    """The entities annotated in `example`, with offsets into the example without markup."""
    entities = []
    offset = 0
    for match in ENTITY_REGEX.finditer(example):
        groups = match.groupdict()
        text = groups["entity_text"]
        start = match.start() - offset
        end = start + len(text)
        offset += len(match.group(0)) - len(text)
        if groups["entity_dict"]:
            d = _entity_dict(groups["entity_dict"])
            entities.append(
                _entity(start, end, d.get("value", text), d["entity"], d.get("role"), d.get("group"))
            )
        elif groups["entity"]:
            entities.append(_entity(start, end, groups["value"] or text, groups["entity"], None, None))
        else:
            for inner in SINGLE_ENTITY_DICT.finditer(groups["list_entity_dicts"]):
                d = _entity_dict(inner.group("entity_dict"))
                entities.append(
                    _entity(start, end, d.get("value", text), d["entity"], d.get("role"), d.get("group"))
                )
    return entities


def replace_entities(training_example: str) -> str:
    """The example's text with the markup removed."""
    return ENTITY_REGEX.sub(lambda m: m.group("entity_text"), training_example)
