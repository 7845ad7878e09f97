"""Personal data in free text is masked the same way in every process (common/personal_text.py)."""

from __future__ import annotations

import pytest

from common.personal_text import mask_personal


@pytest.mark.parametrize(
    "typed, hidden",
    [
        ("số em 0905123456 ạ", "0905123456"),
        ("sdt 0905 123 456", "0905 123 456"),
        ("0905.123.456", "0905.123.456"),
        ("+84905123456", "905123456"),
        ("mail an.nguyen@gmail.com nhé", "an.nguyen@gmail.com"),
        ("cccd 049190001111", "049190001111"),
        ("mã là 482 913", "482 913"),
        ("483913.", "483913"),
    ],
)
def test_personal_data_is_masked(typed: str, hidden: str) -> None:
    shown = mask_personal(typed)
    assert hidden not in shown and "*" in shown


@pytest.mark.parametrize(
    "text",
    [
        "PC05TK0000123",
        "tiền điện 350.000 đồng",
        "1.250.000",
        "ngày 06/12/2026",
        "gọi 1900 1909",
        "3 ngày làm việc",
    ],
)
def test_what_agents_need_stays(text: str) -> None:
    assert mask_personal(text) == text


def test_long_hostile_texts_are_masked_in_linear_time() -> None:
    """A ReDoS guard: a 200,000-character message once blocked the desk's event loop for minutes
    (the e-mail pattern retried every position of a long run). Generous bound: seconds, not ms."""
    import time

    for hostile in ("x" * 200_000, "x.x" * 70_000, "0" * 200_000, "a@" * 100_000, "0905 " * 40_000):
        started = time.perf_counter()
        mask_personal(hostile)
        assert time.perf_counter() - started < 2.0, hostile[:10]
