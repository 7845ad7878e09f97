"""bench/side_by_side.py's verdict: per-round CPU of B against A and the medians it prints."""

from __future__ import annotations

import pytest

from bench import side_by_side


def rounds(*cpu: float, errors: int = 0) -> list[dict[str, float]]:
    return [{"round": n, "rate": 100.0 / c, "cpu_ms": c, "errors": errors} for n, c in enumerate(cpu)]


def test_summary_compares_round_by_round_and_gives_medians() -> None:
    lines = side_by_side.summary(rounds(20.0, 22.0, 21.0), rounds(19.0, 20.9, 23.1))
    assert lines[2].split("|")[6].strip() == "0.950"  # 19 / 20, the same minute
    assert lines[-1] == "median: A 21.00 ms, B 20.90 ms CPU per turn; B / A 0.950"
    assert not any("WARNING" in line for line in lines)


def test_failed_turns_are_flagged() -> None:
    lines = side_by_side.summary(rounds(20.0), rounds(19.0, errors=2))
    assert lines[-1].startswith("WARNING: 2 failed turns")


def test_environment_pairs_are_checked() -> None:
    assert side_by_side._env(["TF_X=0", "EMPTY="]) == {"TF_X": "0", "EMPTY": ""}
    with pytest.raises(SystemExit):
        side_by_side._env(["NOEQUALS"])
