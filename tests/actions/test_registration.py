"""The action server can load bot.actions and serves every custom action the domain names."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk.executor import ActionExecutor

ROOT = Path(__file__).parents[2]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text("utf-8"))


@cache
def registered_actions() -> dict[str, Callable[..., Any]]:
    """What the action server serves: action name -> its `run`."""
    executor = ActionExecutor()
    executor.register_package("bot.actions")  # raises if a base class is mistaken for an action
    return dict(executor.actions)


def test_every_domain_action_is_registered() -> None:
    actions = registered_actions()
    # An entry is a name, or {name: {send_domain: true}} for an action that reads the domain.
    names = [a if isinstance(a, str) else next(iter(a)) for a in DOMAIN["actions"]]
    custom = {a for a in names if not a.startswith("utter_")}
    assert custom, "the domain names no custom action"
    assert custom <= set(actions), custom - set(actions)


def _actions_reading_the_domain() -> set[str]:
    """Names of the custom actions whose `run` (own or inherited) uses its `domain` argument."""
    import ast
    import inspect
    import textwrap

    found = set()
    for name, run in registered_actions().items():
        function = getattr(run, "__func__", run)
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        if any(isinstance(n, ast.Name) and n.id == "domain" for n in ast.walk(tree.body[0])):
            found.add(name)
    return found


def test_every_action_that_reads_the_domain_gets_it() -> None:
    """endpoints.yml sends the domain selectively: an action that reads it must be a validate_*
    action or marked `send_domain: true`, else it silently receives {} (no buttons, no labels)."""
    from rasa.shared.core.domain import Domain

    domain = Domain.load(str(ROOT / "domain.yml"))
    readers = _actions_reading_the_domain()
    assert "action_nlu_fallback" in readers  # the check sees the one we know of
    missing = {a for a in readers if not domain.does_custom_action_explicitly_need_domain(a)}
    assert not missing, f"mark them `send_domain: true` in domain.yml: {sorted(missing)}"
    for path in ("endpoints.yml", "deploy/endpoints.scaled.yml"):
        endpoints = yaml.safe_load((ROOT / path).read_text("utf-8"))
        assert endpoints["action_endpoint"]["enable_selective_domain"] is True, path


def test_the_form_validations_read_no_responses_from_the_domain() -> None:
    """deploy/rasa_speedups.py sends the validate_* form actions the domain without its responses
    (rasa_sdk's form validation reads `slots` and `forms`): none of ours may read them."""
    import inspect

    checked = 0
    for name, run in registered_actions().items():
        if not name.startswith("validate_"):
            continue
        for cls in type(getattr(run, "__self__", None)).__mro__:
            if cls.__module__.startswith("bot."):
                assert '"responses"' not in inspect.getsource(cls), (name, cls)
                checked += 1
    assert checked >= 4
