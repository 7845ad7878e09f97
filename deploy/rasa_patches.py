"""Installs our patches of Rasa (and of Sanic under it), each only over the functions it was written for.

Called by the process that starts Rasa (deploy/rasa_main.py), never as a side effect of an import:
a patch that depended on which tracker store endpoints.yml names was silently absent with another
one. A patch whose pinned functions changed (deploy/source_pins.py) is refused with a warning naming
them, not applied blind; deploy/rasa_main.py decides whether Rasa may start without it.

To add a patch: write its `apply` function, pin every function it replaces or whose behaviour it
reproduces, and add a `Patch` to a module's `PATCHES` list that deploy/rasa_main.py installs
(deploy/rasa_speedups.py is the example); tests/deploy/test_rasa_patches.py checks every pin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from deploy.source_pins import SourcePin

logger = logging.getLogger(__name__)
_applied: set[str] = set()


@dataclass(frozen=True)
class Patch:
    name: str
    apply: Callable[[], None]
    pins: tuple[SourcePin, ...] = ()

    def drift(self) -> list[str]:
        """Why this patch must not be applied over the installed functions (empty: it may)."""
        return [problem for pin in self.pins if (problem := pin.drift()) is not None]


def install(patches: Iterable[Patch]) -> list[str]:
    """Apply every patch not applied yet whose pinned functions are unchanged; idempotent.

    Returns one line per refused patch (also logged as a warning)."""
    refused = []
    for patch in patches:
        if patch.name in _applied:
            continue
        problems = patch.drift()
        if problems:
            refused.append(f"{patch.name} not installed: {'; '.join(problems)}")
            logger.warning("%s", refused[-1])
            continue
        patch.apply()
        _applied.add(patch.name)
    return refused


def applied() -> frozenset[str]:
    return frozenset(_applied)
