"""Numbers read from environment variables, checked, with a message naming the variable.

Each service raises its own configuration error class, so the caller passes it in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

N = TypeVar("N", int, float)


def env_number(
    env: Mapping[str, str],
    name: str,
    default: N,
    parse: Callable[[str], N],
    error: type[Exception],
    lo: N | None = None,
    hi: N | None = None,
    kind: str = "a number",
) -> N:
    """`default` when unset or blank; else `parse(value)` within [lo, hi], or `error` naming `name`."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise error(f"{name} must be {kind}, got {raw!r}") from None
    if lo is not None and hi is not None and not lo <= value <= hi:
        raise error(f"{name} must be between {lo} and {hi}, got {value}")
    if lo is not None and value < lo:
        raise error(f"{name} must be at least {lo}, got {value}")
    if hi is not None and value > hi:
        raise error(f"{name} must be at most {hi}, got {value}")
    return value
