"""The Vietnamese normaliser and tokenizer: same features with or without diacritics."""

from __future__ import annotations

import unicodedata

import pytest
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.components.normalizer import TEENCODE, expand_teencode, fold, fold_text, nfc, normalize, tone_style
from bot.components.vietnamese_tokenizer import VietnameseTokenizer


def test_nfc_composes_combining_marks_and_fixes_eth() -> None:
    decomposed = unicodedata.normalize("NFD", "hồ sơ")
    assert len(decomposed) > len("hồ sơ")
    assert nfc(decomposed) == "hồ sơ"
    assert nfc("ðiện lực") == "điện lực"


@pytest.mark.parametrize(
    ("new_style", "old_style"),
    [("hoà", "hòa"), ("thuỷ", "thủy"), ("khoẻ", "khỏe"), ("Thanh Hoá", "Thanh Hóa"), ("quý", "quý")],
)
def test_tone_placement_is_old_style(new_style: str, old_style: str) -> None:
    assert tone_style(new_style) == old_style


def test_tone_style_leaves_closed_syllables() -> None:
    assert tone_style("hoàng") == "hoàng"
    assert tone_style("toán") == "toán"


def test_fold_maps_d_bar_and_removes_marks() -> None:
    assert fold("Đặng Thị Hồng Được") == "Dang Thi Hong Duoc"
    assert fold("tra cứu hồ sơ") == "tra cuu ho so"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("ko", "không"),
        ("k", "không"),
        ("hok", "không"),
        ("dc", "được"),
        ("đc", "được"),
        ("hd", "hợp đồng"),
        ("mk", "mình"),
        ("mik", "mình"),
        ("j", "gì"),
        ("ko?", "không?"),
    ],
)
def test_teencode_whole_tokens(typed: str, expected: str) -> None:
    assert expand_teencode(typed) == expected


@pytest.mark.parametrize("kept", ["50k", "kon", "okie", "ok", "hdx", "pc05tk0000123", "k2"])
def test_teencode_leaves_other_tokens(kept: str) -> None:
    assert expand_teencode(kept) == kept


def test_teencode_map_is_reviewed() -> None:
    # Ambiguous forms stay out of the map: "ok" is an answer, "hong" may be "hỏng", "ty" may be "công ty".
    for risky in ("ok", "hong", "ty", "bt", "50k"):
        assert risky not in TEENCODE
    assert all(k == k.lower() and " " not in k for k in TEENCODE)


def test_normalize_pipeline() -> None:
    assert normalize("E muốn KÝ hđ dc KO") == "em muốn ký hợp đồng được không"
    assert fold_text("Tra cứu HỒ SƠ") == fold_text("tra cuu ho so") == "tra cuu ho so"
    assert fold_text("Thanh Hoá") == fold_text("Thanh Hóa") == "thanh hoa"


def _tokens(text: str) -> list[tuple[str, str, int, int]]:
    message = Message(data={TEXT: text})
    tok = VietnameseTokenizer(VietnameseTokenizer.get_default_config())
    tok.process([message])
    return [(t.text, t.lemma, t.start, t.end) for t in message.get("text_tokens")]


def test_tokenizer_lemmas_equal_with_and_without_diacritics() -> None:
    with_marks = [lemma for _, lemma, _, _ in _tokens("Tra cứu hồ sơ ĐƯỢC không")]
    without = [lemma for _, lemma, _, _ in _tokens("tra cuu ho so dc ko")]
    assert with_marks == without == ["tra", "cuu", "ho", "so", "duoc", "khong"]


def test_tokenizer_keeps_original_text_and_offsets() -> None:
    text = "Mã PC05TK0000123 của Nguyễn Văn An"
    tokens = _tokens(text)
    for original, _, start, end in tokens:
        assert text[start:end] == original
    assert ("PC05TK0000123", "pc05tk0000123") in [(t, lemma) for t, lemma, _, _ in tokens]
    assert ("Nguyễn", "nguyen") in [(t, lemma) for t, lemma, _, _ in tokens]


def test_tokenizer_expands_teencode_in_lemma_only() -> None:
    tokens = _tokens("ký hd dc ko")
    assert [t for t, _, _, _ in tokens] == ["ký", "hd", "dc", "ko"]
    assert [lemma for _, lemma, _, _ in tokens] == ["ky", "hop dong", "duoc", "khong"]


def test_tokenizer_composes_decomposed_input() -> None:
    message = Message(data={TEXT: unicodedata.normalize("NFD", "tra cứu hồ sơ")})
    VietnameseTokenizer(VietnameseTokenizer.get_default_config()).process([message])
    assert message.get(TEXT) == "tra cứu hồ sơ"
    assert [t.lemma for t in message.get("text_tokens")] == ["tra", "cuu", "ho", "so"]
