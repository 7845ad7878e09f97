"""Short replies decided by a reviewed lexicon, not by DIET: "ừa", "khum", "okela", "thôi khỏi", a
request code, a unit or a name on its own.

A one- to four-word reply carries almost no features, so DIET guesses (or, with words it never saw,
the unknown-words guard sends it to the fallback). Yes, no, stop, thanks, hello and bye have a
closed set of forms in chat Vietnamese, regional and teencode ones included; this component looks the
whole reply up, with politeness particles around it removed, and sets the intent when it is there.

A reply typed with diacritics is looked up as typed (normalised), so "đúng" (yes) and "dừng" (stop)
stay apart; a reply without any diacritic is looked up folded, where forms that fold onto each
other ("dung") are left out on purpose and DIET decides.
"""

from __future__ import annotations

from typing import Any, Final, List, Sequence

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.components.normalizer import fold, normalize
from bot.components.stateless import StatelessComponent
from common.request_code import REQUEST_CODE_IN_TEXT

MAX_WORDS = 4
# Normalised forms (lower case, NFC, teencode expanded: "ko" → "không", "e" → "em", "ad" → "admin").
# Hesitations ("ừm", "uh", a bare "dạ") are left out: a yes here can be consent to sign.
_LEXICON: Final[dict[str, tuple[str, ...]]] = {
    "affirm": (
        "có á",
        "phải á",
        "đúng á",
        "đúng rồi á",
        "đúng luôn",
        "chuẩn luôn",
        "có luôn",
        "được luôn",
        "dạ có ạ",
        "ừa đúng rồi",
        "ờ",
        "ờ đúng rồi",
        "đúng rùi",
        "rồi",
        "dạ rồi",
        "rồi ạ",
        "nhận rồi",
        "nhận được rồi",
        "ok em",
        "oke luôn",
        "dạ đúng rồi ạ",
        "đúng người rồi",
        "đúng hồ sơ này",
        "chính nó",
        "đúng nó rồi",
        "ừ phải",
        "vâng đúng rồi",
        "xác nhận",
        "có",
        "vâng",
        "dạ",
        "dạ vâng",
        "vâng ạ",
        "dạ có",
        "có ạ",
        "ừ",
        "ừa",
        "ừm",
        "ừ đúng",
        "uh",
        "uhm",
        "um",
        "uk",
        "ukm",
        "ok",
        "oke",
        "okê",
        "okie",
        "oki",
        "okela",
        "okay",
        "okey",
        "oce",
        "yes",
        "yep",
        "đúng",
        "đúng rồi",
        "đúng vậy",
        "đúng thế",
        "đúng rồi đó",
        "dạ đúng",
        "dạ đúng rồi",
        "chuẩn",
        "chuẩn rồi",
        "chính xác",
        "được",
        "được rồi",
        "đồng ý",
        "tôi đồng ý",
        "phải",
        "dạ phải",
        "phải rồi",
        "đúng òi",
        "ok luôn",
        "chốt",
        "có chứ",
        "tất nhiên",
        "dạ được",
        "đồng ý ký",
    ),
    "deny": (
        "hông",
        "hông có",
        "hổng có",
        "hổng có đâu",
        "không có đâu",
        "không phải cái đó",
        "không phải cái này",
        "chưa đâu",
        "chưa có đâu",
        "đâu có",
        "đâu phải",
        "không luôn",
        "không nha",
        "nhầm rồi",
        "lộn rồi",
        "sai rồi đó",
        "không phải của tôi",
        "không phải tôi",
        "không phải hồ sơ này",
        "không phải á",
        "chưa nữa",
        "dạ không phải",
        "không đâu",
        "hổng đúng",
        "hông phải",
        "không phải vậy",
        "không",
        "không ạ",
        "dạ không",
        "không phải",
        "không phải đâu",
        "không đúng",
        "sai",
        "sai rồi",
        "chưa",
        "chưa ạ",
        "dạ chưa",
        "chưa có",
        "không có",
        "nope",
        "no",
        "khum",
        "hổng",
        "hổng phải",
        "không đồng ý",
        "không cần",
        "dạ không cần",
        "không muốn",
        "không phải rồi",
    ),
    "cancel": (
        "thôi khỏi đi",
        "khỏi cần",
        "thôi bỏ",
        "dẹp đi",
        "thôi dẹp",
        "không làm nữa",
        "thôi không làm nữa",
        "ngừng",
        "ngưng",
        "thôi ngưng",
        "hủy giúp",
        "hủy giùm",
        "thôi hủy",
        "bỏ đi",
        "thôi đừng",
        "khỏi đi",
        "thôi khỏi làm",
        "dừng giúp",
        "dừng giùm",
        "hủy thao tác",
        "thôi",
        "thôi khỏi",
        "khỏi",
        "hủy",
        "hủy bỏ",
        "hủy đi",
        "dừng",
        "dừng lại",
        "stop",
        "thôi bỏ đi",
        "bỏ qua",
        "thôi không cần nữa",
        "không cần nữa",
        "thôi dừng",
        "thôi để sau",
        "để sau",
    ),
    "thank": (
        "đa tạ",
        "thanks",
        "thank",
        "tks",
        "thx",
        "cảm ơn nhiều lắm",
        "dạ cảm ơn",
        "cảm ơn em nhiều",
        "cảm ơn cháu",
        "cảm ơn con",
        "cảm ơn nhá",
        "mơn",
        "cảm ơn rất nhiều",
        "cám ơn nhiều",
        "cảm ơn nhiều nha",
        "dạ cám ơn",
        "cảm ơn",
        "cám ơn",
        "cảm ơn nhiều",
        "cảm ơn nhé",
        "cảm ơn nha",
        "thank you",
        "cảm ơn em",
        "cảm ơn ạ",
        "xin cảm ơn",
        "ty",
        "cảm ơn bạn",
        "cảm ơn admin",
    ),
    "goodbye": ("bye", "bai", "bb", "bye bye", "tạm biệt", "chào nhé", "gặp lại sau", "pp", "bái bai"),
    "greet": (
        "chào",
        "xin chào",
        "hi",
        "hello",
        "helo",
        "alo",
        "a lô",
        "hey",
        "chào admin",
        "admin ơi",
        "em ơi",
        "shop ơi",
        "chào em",
        "chào bạn",
        "alo alo",
        "hi admin",
        "hello admin",
        "kính chào",
    ),
}
# Particles around a reply that change nothing ("dạ không ạ", "ok em nhé", "ừ nha admin").
_PARTICLES: Final = frozenset(
    "ạ à a ơi nhé nhá nha nhen nghe nghen ha hen né nè luôn đi em anh chị admin bạn shop "
    "bác cô chú cháu con".split()
)
_FOLDED_PARTICLES: Final = frozenset(fold(p) for p in _PARTICLES)
_EDGE_PUNCT: Final = ".,!?;:~…\"'()-*"


def _normal_key(text: str, plain: bool) -> str:
    words = [w.strip(_EDGE_PUNCT) for w in normalize(text).split()]
    words = [w for w in words if w]
    # Typed without diacritics, the particles are too ("chua em oi" is "chưa em ơi").
    particles = _FOLDED_PARTICLES if plain or fold(" ".join(words)) == " ".join(words) else _PARTICLES
    while len(words) > 1 and words[-1] in particles:
        words.pop()
    while len(words) > 1 and words[0] in {"à", "ờ", "ừ"} and " ".join(words[1:]) in _INTENT_OF:
        words.pop(0)
    return " ".join(words)


_INTENT_OF: Final[dict[str, str]] = {form: intent for intent, forms in _LEXICON.items() for form in forms}
# Folded forms: only those that no other entry folds onto ("dung" is đúng and dừng; "co" is có and cô).
_FOLDED: dict[str, set[str]] = {}
for _form, _intent in _INTENT_OF.items():
    _FOLDED.setdefault(fold(_form), set()).add(_intent)
_FOLDED_INTENT_OF: Final[dict[str, str]] = {
    k: next(iter(v)) for k, v in _FOLDED.items() if len(v) == 1 and k not in {"dung", "dung lai", "dung roi"}
}


# A request code alone, or with words that add nothing ("mã là PC05-TK-0000123 nè"), answers the
# bot's question for a code: `inform`, however the code is typed.
_CODE_FILLERS: Final = frozenset(
    "mã ma là la nè ne đây day của tôi em anh chị ạ a nha nhé số so yêu cầu hồ sơ yeu cau ho "
    # hesitations and a yes before the code ("uhm PC05HA0000789 ???", "ok mã là ...")
    "uhm um ừm ờ ừ à ờm hmm ok oke vâng dạ da".split()
)


# A unit or a name on its own, or with words that only frame it ("ở Điện lực Quế Sơn nhé", "chủ hộ
# là ông Võ Văn Tư"), answers the bot's question for it: `inform`. Without this, the few words
# around it decide ("điện lực" is also in "số điện thoại điện lực" of the hotline FAQ).
_DATA_ENTITIES: Final = frozenset({"power_unit", "customer_name", "request_code"})
_DATA_FILLERS: Final = frozenset(
    "ở o tại tai bên ben thuộc thuoc tên ten là la của cua mã ma nè ne đây day đó do em e anh a chị c "
    "ạ nha nhé nhe nghe nghen nhen admin ad ơi oi dạ da ông ong bà ba bác bac cô co chú chu cháu chau "
    "chủ hộ ho khách hàng hang tôi toi tui mình minh ba bố bo mẹ me má ma chồng chong vợ vo cái cai "
    "người nguoi đứng dung điện lực dien luc đl dl yêu cầu yeu cau số so".split()
)
MAX_DATA_REPLY_WORDS = 12


def _only_fillers(text: str, spans: Sequence[tuple[int, int]], fillers: frozenset[str]) -> bool:
    """Whether every word of `text` outside the (sorted) spans is one of `fillers`."""
    rest, at = [], 0
    for a, b in spans:
        rest.append(text[at:a])
        at = max(at, b)
    rest.append(text[at:])
    words = [w.strip(_EDGE_PUNCT) for w in " ".join(rest).lower().split()]
    return all(not w or w in fillers for w in words)


def _only_data(text: str, entities: Sequence[dict[str, Any]]) -> bool:
    spans = sorted(
        (int(e["start"]), int(e["end"]))
        for e in entities
        if e.get("entity") in _DATA_ENTITIES and "start" in e and "end" in e
    )
    if not spans or len(text.split()) > MAX_DATA_REPLY_WORDS:
        return False
    return _only_fillers(text, spans, _DATA_FILLERS)


def short_reply_intent(text: str, entities: Sequence[dict[str, Any]] = ()) -> str | None:
    """The intent of a short reply from the lexicon, or None."""
    if not text:
        return None
    if entities and _only_data(text, entities):
        return "inform"
    if len(text[:300].split()) > MAX_WORDS + 2:
        return None
    code = REQUEST_CODE_IN_TEXT.search(text)
    if code:
        return "inform" if _only_fillers(text, [code.span()], _CODE_FILLERS) else None
    plain = fold(text.lower()) == text.lower()  # typed without diacritics
    key = _normal_key(text, plain)
    if not key or len(key.split()) > MAX_WORDS:
        return None
    if plain or fold(key) == key:
        return _FOLDED_INTENT_OF.get(fold(key))
    return _INTENT_OF.get(key)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class ShortReplyClassifier(StatelessComponent):
    """Sets the intent of lexicon short replies (see the module docstring); other messages untouched."""

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            entities = message.get(ENTITIES) or []
            intent = short_reply_intent(text, entities) if isinstance(text, str) else None
            if intent is None:
                continue
            others = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") != intent]
            message.set(INTENT, {"name": intent, "confidence": 1.0}, add_to_output=True)
            message.set(
                INTENT_RANKING_KEY,
                [{"name": intent, "confidence": 1.0}] + [{**r, "confidence": 0.0} for r in others],
                add_to_output=True,
            )
            # An FAQ answer picked for DIET's guess does not belong to this intent.
            message.data.pop("response_selector", None)
        return messages
