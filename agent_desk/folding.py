"""Kept for bench/bench_desk_search.py only: the one definition is common/folding.py."""

from __future__ import annotations

from common.folding import fold

__all__ = ["fold"]
