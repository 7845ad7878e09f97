"""The action server can load bot.actions and serves every custom action the domain names."""

from __future__ import annotations

from pathlib import Path

import yaml
from rasa_sdk.executor import ActionExecutor

DOMAIN = yaml.safe_load((Path(__file__).parents[2] / "domain.yml").read_text("utf-8"))


def test_every_domain_action_is_registered() -> None:
    executor = ActionExecutor()
    executor.register_package("bot.actions")  # raises if a base class is mistaken for an action
    custom = {a for a in DOMAIN["actions"] if not a.startswith("utter_")}
    assert custom, "the domain names no custom action"
    assert custom <= set(executor.actions), custom - set(executor.actions)
