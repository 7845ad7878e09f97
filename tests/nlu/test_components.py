"""The entity de-duplicator and the unknown-words guard, run through Rasa's component API."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.components.entity_dedup import dedupe
from bot.components.unknown_words import UnknownWordsGuard
from bot.components.vietnamese_tokenizer import VietnameseTokenizer

TOKENIZER = VietnameseTokenizer(VietnameseTokenizer.get_default_config())


def tokenized(text: str, **data: object) -> Message:
    message = Message(data={TEXT: text, **data})
    TOKENIZER.process([message])
    return message


def test_regex_entities_win_over_overlapping_diet_entities() -> None:
    entities = [
        {
            "entity": "customer_name",
            "start": 0,
            "end": 15,
            "value": "PC05 HA 0000789",
            "extractor": "DIETClassifier",
        },
        {
            "entity": "request_code",
            "start": 0,
            "end": 15,
            "value": "PC05 HA 0000789",
            "extractor": "RegexEntityExtractor",
        },
        {"entity": "otp_code", "start": 20, "end": 23, "extractor": "DIETClassifier"},
        {"entity": "otp_code", "start": 20, "end": 27, "extractor": "RegexEntityExtractor"},
        {"entity": "customer_name", "start": 30, "end": 40, "extractor": "DIETClassifier"},
    ]
    kept = dedupe(entities)
    assert [(e["entity"], e["start"], e["end"]) for e in kept] == [
        ("request_code", 0, 15),
        ("otp_code", 20, 27),
        ("customer_name", 30, 40),
    ]


def test_unknown_words_guard(tmp_path: Path) -> None:
    storage = LocalModelStorage(tmp_path)
    resource = Resource("guard")
    context = ExecutionContext(graph_schema=None, model_id="m")  # type: ignore[arg-type]
    guard = UnknownWordsGuard.create({}, storage, resource, context)
    training = TrainingData(
        [tokenized("tra cứu hồ sơ", intent="track_request"), tokenized("có", intent="affirm")]
    )
    guard.train(training)

    loaded = UnknownWordsGuard.load({}, storage, resource, context)
    intent = {"name": "affirm", "confidence": 0.7}
    gibberish = tokenized("qwxz plmk", intent=intent)
    known = tokenized("tra cuu ho so PC05", intent=dict(intent))
    number = tokenized("123 456", intent=dict(intent))
    with_entity = tokenized("Tiên Phước", intent=dict(intent))
    with_entity.set(ENTITIES, [{"entity": "power_unit", "start": 0, "end": 10}])
    loaded.process([gibberish, known, number, with_entity])
    assert gibberish.get(INTENT)["confidence"] == 0.0
    assert known.get(INTENT)["confidence"] == 0.7
    assert number.get(INTENT)["confidence"] == 0.7
    assert with_entity.get(INTENT)["confidence"] == 0.7


def test_tokenizer_keeps_only_the_first_max_tokens_but_the_whole_text() -> None:
    text = "tra cứu hồ sơ " * 1_000 + "PC05HA0000789"
    message = tokenized(text)
    tokens = message.get("text_tokens")
    assert len(tokens) == VietnameseTokenizer.get_default_config()["max_tokens"] == 120
    assert [t.lemma for t in tokens[:4]] == ["tra", "cuu", "ho", "so"]
    assert message.get(TEXT).endswith("PC05HA0000789")  # regexes still see the code at the end


def test_short_messages_keep_every_token() -> None:
    assert len(tokenized("Điện lực Tam Kỳ mã PC05TK0000123").get("text_tokens")) == 6


def test_request_codes_leave_the_nlu_normalised() -> None:
    from bot.components.request_code_values import normalise_codes

    typed = [
        {"entity": "request_code", "start": 4, "end": 20, "value": "pc05-ha 0003391", "extractor": "x"},
        {"entity": "request_code", "start": 30, "end": 37, "value": "PC05 12", "extractor": "x"},
        {"entity": "customer_name", "start": 40, "end": 52, "value": "pc05 ha", "extractor": "x"},
    ]
    assert [e["value"] for e in normalise_codes(typed)] == ["PC05HA0003391", "PC05 12", "pc05 ha"]
    assert typed[0]["value"] == "pc05-ha 0003391"  # the input is not changed in place


def test_a_lookup_match_inside_a_longer_one_of_the_same_type_is_dropped() -> None:
    regex = "RegexEntityExtractor"
    entities = [
        {"entity": "power_unit", "start": 9, "end": 18, "value": "Quảng Nam", "extractor": regex},
        {"entity": "power_unit", "start": 0, "end": 18, "value": "Điện lực Quảng Nam", "extractor": regex},
        {"entity": "customer_name", "start": 25, "end": 30, "value": "Lê An", "extractor": regex},
    ]
    assert [e["value"] for e in dedupe(entities)] == ["Điện lực Quảng Nam", "Lê An"]


def test_one_full_name_is_kept_the_longest() -> None:
    from bot.components.entity_dedup import one_full_name

    entities = [
        {"entity": "customer_name", "start": 8, "end": 26, "value": "tran thi bich ngoc"},
        {"entity": "power_unit", "start": 28, "end": 45, "value": "dien luc hai chau"},
        {"entity": "customer_name", "start": 84, "end": 87, "value": "lan"},
        {"entity": "customer_name", "start": 90, "end": 96, "value": "le an"},
    ]
    assert [e["value"] for e in one_full_name(entities)] == ["tran thi bich ngoc", "dien luc hai chau"]
    assert one_full_name([{"entity": "customer_name", "value": "lan"}]) == []


@pytest.mark.parametrize(
    ("reply", "intent"),
    [
        ("ừa", "affirm"),
        ("okela", "affirm"),
        ("dạ vâng ạ", "affirm"),
        ("ok em nhé", "affirm"),
        ("khum", "deny"),
        ("dạ không ạ", "deny"),
        ("chưa em ơi", "deny"),
        ("đúng rồi", "affirm"),
        ("dừng lại", "cancel"),
        ("thôi khỏi", "cancel"),
        ("cảm ơn nha ad", "thank"),
        ("alo ad", "greet"),
        ("bb ad", "goodbye"),
        ("PC05-TK-0000123", "inform"),
        ("mã là pc05tk 0000123 nè", "inform"),
        ("uhm PC05HA0000789 ???", "inform"),
        # Particles and teencode typed without diacritics, regional and two-word forms.
        ("chua em oi", "deny"),
        ("ko phai cai do", "deny"),
        ("hổng có đâu", "deny"),
        ("da ta", "thank"),
        ("roi a", "affirm"),
        ("ko can nua", "cancel"),
    ],
)
def test_short_replies_from_the_lexicon(reply: str, intent: str) -> None:
    from bot.components.short_replies import short_reply_intent

    assert short_reply_intent(reply) == intent


@pytest.mark.parametrize(
    "text",
    ["dung", "dung lai", "cô", "tra cuu ho so", "không nhận được mã otp", "", "ký hồ sơ PC05TK0000123"],
)
def test_ambiguous_or_longer_messages_are_left_to_the_model(text: str) -> None:
    from bot.components.short_replies import short_reply_intent

    assert short_reply_intent(text) is None


def _spans(text: str, **found: str) -> list[dict[str, object]]:
    return [
        {"entity": name, "start": text.index(part), "end": text.index(part) + len(part)}
        for name, part in found.items()
    ]


@pytest.mark.parametrize(
    ("text", "found", "intent"),
    [
        ("ở Điện lực Quế Sơn chị nha", {"power_unit": "Điện lực Quế Sơn"}, "inform"),
        ("dien luc hoa vang", {"power_unit": "hoa vang"}, "inform"),
        ("chủ hộ là ông Võ Văn Tư", {"customer_name": "Võ Văn Tư"}, "inform"),
        ("ma yeu cau: PC03-LC-0009012", {"request_code": "PC03-LC-0009012"}, "inform"),
        # Words that ask something: the model decides.
        ("mất điện ở Hội An từ sáng", {"power_unit": "Hội An"}, None),
        ("tra cứu hồ sơ của Nguyễn Văn An", {"customer_name": "Nguyễn Văn An"}, None),
        ("hotline điện lực đà nẵng", {"power_unit": "đà nẵng"}, None),
        ("gặp nhân viên", {}, None),
    ],
)
def test_a_unit_or_name_with_only_framing_words_is_inform(
    text: str, found: dict[str, str], intent: str | None
) -> None:
    from bot.components.short_replies import short_reply_intent

    assert short_reply_intent(text, _spans(text, **found)) == intent


def test_the_lexicon_sets_the_intent_and_drops_a_stale_faq_answer() -> None:
    from bot.components.short_replies import ShortReplyClassifier

    message = Message(
        data={
            TEXT: "ừa",
            INTENT: {"name": "faq", "confidence": 0.6},
            "intent_ranking": [{"name": "faq", "confidence": 0.6}, {"name": "affirm", "confidence": 0.3}],
            "response_selector": {"faq": {}},
        }
    )
    ShortReplyClassifier().process([message])
    assert message.get(INTENT) == {"name": "affirm", "confidence": 1.0}
    assert [r["name"] for r in message.get("intent_ranking")] == ["affirm", "faq"]
    assert message.get("intent_ranking")[1]["confidence"] == 0.0
    assert message.get("response_selector") is None


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("tên cụ là Lê Thị Mận, đăng ký ở Điện lực Thọ Xuân", ["Lê Thị Mận"]),
        ("ba e ten nguyen van an a", ["nguyen van an"]),
        ("toi ten tran thi bich ngoc, dien luc hai chau, hoi may lan roi", ["tran thi bich ngoc"]),
        ("ký cho bà nội tui Nguyễn Thị Tý, bà dặn ký giùm", ["Nguyễn Thị Tý"]),
        ("chủ hộ là ông Võ Văn Tư", ["Võ Văn Tư"]),
        ("Mai Văn Hùng ở Hội An", ["Mai Văn Hùng"]),
        ("tra cứu hồ sơ", []),
        ("mai mốt tôi qua", []),
        ("nghi đồng hồ nhảy số ảo", []),
        ("tiền điện tăng gấp đôi", []),
        ("mất điện ở đường Hoàng Diệu", []),
        ("dang xu ly roi", []),
        # A Title-case name keeps a syllable that is also a word, and ends at a lower-case word.
        ("ghi tên ba tui là Nguyễn Văn Tư nhưng đúng là Nguyễn Văn Từ", ["Nguyễn Văn Tư", "Nguyễn Văn Từ"]),
        ("ten la Le Thi Hong Nhung", ["Le Thi Hong Nhung"]),
        ("ghi la Nguyen Van Tu nhung dung la Nguyen Van Tu", ["Nguyen Van Tu", "Nguyen Van Tu"]),
        ("hồ sơ của Võ Thị Thu Hà tới đâu rồi", ["Võ Thị Thu Hà"]),
        ("chong em ten Ho Van Dung", ["Ho Van Dung"]),
        ("ho so dien cua ho thi thu o hue", ["ho thi thu"]),
        ("ho thi noi vay", []),
        ("tên Nguyễn Văn An Mã PC05", ["Nguyễn Văn An"]),
        ("các anh lưu thông tin tôi làm gì, xóa hết", []),
        ("anh Lưu Văn Tài", ["Lưu Văn Tài"]),
    ],
)
def test_full_names_are_found_by_their_shape(text: str, names: list[str]) -> None:
    from bot.components.vietnamese_names import find_names

    assert [text[a:b] for a, b in find_names(text)] == names


def test_rule_names_replace_diets_and_leave_codes_and_units_alone() -> None:
    from bot.components.name_extractor import with_rule_names

    text = "ký hợp đồng điện cho nhà Lê Văn Tám ở Điện lực Tam Kỳ"
    diet = [
        {"entity": "customer_name", "start": 25, "end": 31, "value": "Lê Văn", "extractor": "DIETClassifier"},
        {
            "entity": "power_unit",
            "start": 38,
            "end": 53,
            "value": "Điện lực Tam Kỳ",
            "extractor": "RegexEntityExtractor",
        },
    ]
    out = with_rule_names(text, diet)
    assert [(e["entity"], e["value"]) for e in out] == [
        ("customer_name", "Lê Văn Tám"),
        ("power_unit", "Điện lực Tam Kỳ"),
    ]
    # Nothing found by rule: DIET's name stays.
    assert with_rule_names("tên là an nhiên", diet[:1]) == diet[:1]


def test_units_come_only_from_the_lookup() -> None:
    from bot.components.entity_dedup import units_from_lookup

    entities = [
        {"entity": "power_unit", "start": 14, "end": 22, "value": "điện lực", "extractor": "DIETClassifier"},
        {
            "entity": "power_unit",
            "start": 30,
            "end": 36,
            "value": "hội an",
            "extractor": "RegexEntityExtractor",
        },
    ]
    assert units_from_lookup(entities) == entities[1:]
