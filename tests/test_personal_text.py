"""Personal data in free text is masked the same way in every process (common/personal_text.py)."""

from __future__ import annotations

import pytest

from common.personal_text import OTP_IN_TEXT, mask_personal


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
        # Every grouping the bot accepts as a code (bot/actions/otp_input.py) is masked too.
        ("ma 48 29 13 a", "48 29 13"),
        ("1 2 3 4 5 6", "1 2 3 4 5 6"),
        ("48-29-13", "48-29-13"),
        ("48.29.13", "48.29.13"),
        ("otp482913", "482913"),
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
        "phí 2.350.000 đ",
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


@pytest.mark.parametrize(
    "typed",
    ["482913", "482 913", "48 29 13", "4 8 2 9 1 3", "48-29-13", "48.29.13", "mã:482913", "otp482913"],
)
def test_what_the_bot_takes_as_a_code_never_reaches_staff(typed: str) -> None:
    """The bot's acceptance and the staff masking share one pattern: a code the bot would take is
    never shown (a customer may type it while an agent has the conversation)."""
    assert OTP_IN_TEXT.search(typed)
    shown = mask_personal(typed)
    assert "482913" not in shown.replace(" ", "").replace("-", "").replace(".", "").replace(":", "")
