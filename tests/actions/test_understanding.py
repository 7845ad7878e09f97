"""Dialogue fixes of the understanding issue, on the real signing service: follow-ups about the
request already shown, candidates picked by typing, the two-stage fallback, handoff while waiting,
a completed request that says whether it was on time."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.general import ActionNluFallback, ActionRequestHandoff, intent_choices
from bot.actions.lookup import (
    CANDIDATES_SLOT,
    ActionFindRequest,
    ActionHandleInform,
    ValidateFindRequestForm,
    reset_lookup,
    show_request,
)
from tests.actions.conftest import make_tracker, responses, slot_events

pytestmark = pytest.mark.usefixtures("verified_sender")

NAMESAKES = {"power_unit": "PC05TK", "power_unit_name": "Điện lực Tam Kỳ", "customer_name": "nguyen van an"}


# Name lookups are limited per conversation: each test lists and picks in a conversation of its own.
SENDER = "test-understanding"


@pytest.fixture(autouse=True)
def own_conversation() -> None:
    global SENDER
    SENDER = f"test-understanding-{uuid.uuid4().hex[:8]}"


async def listed_candidates() -> list[dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await ActionFindRequest().run(dispatcher, make_tracker(NAMESAKES, sender_id=SENDER), {})
    choices = slot_events(events)[CANDIDATES_SLOT]
    assert [c["title"] for c in choices] == [b["title"] for b in dispatcher.messages[0]["buttons"]]
    assert "PC05" not in str(choices)  # opaque refs and masked titles only
    return list(choices)


async def pick(text: str, choices: list[dict[str, Any]]) -> tuple[CollectingDispatcher, dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({CANDIDATES_SLOT: choices}, text=text, intent="inform", sender_id=SENDER)
    events = await ActionHandleInform().run(dispatcher, tracker, {})
    return dispatcher, slot_events(events)


@pytest.mark.parametrize("typed", ["2", "cai thu hai", "chọn cái cuối nhé"])
async def test_a_candidate_is_picked_by_its_position_typed(typed: str) -> None:
    choices = await listed_candidates()
    dispatcher, slots = await pick(typed, choices)
    assert dispatcher.messages[0]["response"] == "utter_request_status"
    assert "****" in dispatcher.messages[0]["code"]
    assert slots[CANDIDATES_SLOT] is None
    first, _ = await pick("1", choices)
    assert first.messages[0]["code"] != dispatcher.messages[0]["code"] or len(choices) == 1


async def test_a_candidate_is_picked_by_the_last_digits_of_its_phone() -> None:
    choices = await listed_candidates()
    digits = [c["title"].split("·")[2].strip()[-3:] for c in choices]
    assert len(set(digits)) == len(digits)
    dispatcher, slots = await pick(f"cái có số đuôi {digits[1]} a", choices)
    assert dispatcher.messages[0]["response"] == "utter_request_status"
    assert slots["request_code"] == "PC05TK0000456" or slots["request_code"] == "PC05TK0000123"
    again, _ = await pick(f"đuôi {digits[0]}", choices)
    assert again.messages[0]["code"] != dispatcher.messages[0]["code"]


async def test_an_unclear_choice_explains_how_to_pick() -> None:
    choices = await listed_candidates()
    dispatcher, slots = await pick("hmm không biết nữa", choices)
    assert responses(dispatcher) == ["utter_candidate_not_understood"]
    assert CANDIDATES_SLOT not in slots  # the list stays for the next try


async def test_a_unit_typed_outside_a_form_starts_the_lookup() -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"power_unit": "hội an"}, text="ở hội an", intent="inform")
    events = await ActionHandleInform().run(dispatcher, tracker, {})
    assert events == [{"event": "followup", "name": "find_request_form", "timestamp": None}]


def follow_up(text: str, entities: list[dict[str, Any]] | None = None, **slots: Any) -> Any:
    return make_tracker(
        {"request_code": "PC05HA0000789", **slots}, text=text, intent="track_request", entities=entities
    )


async def test_a_follow_up_about_the_shown_request_does_not_ask_for_a_code_again() -> None:
    form = ValidateFindRequestForm()
    assert await form.required_slots([], CollectingDispatcher(), follow_up("tre may ngay roi?"), {}) == []
    dispatcher = CollectingDispatcher()
    events = await ActionFindRequest().run(dispatcher, follow_up("khi nào mới xong vậy em"), {})
    assert responses(dispatcher)[0] == "utter_request_status"
    assert "utter_request_late" in responses(dispatcher)
    assert dispatcher.messages[0]["code"] == "PC05HA****789"  # maybe found by name: masked
    assert slot_events(events)["request_code"] == "PC05HA0000789"


@pytest.mark.parametrize(
    ("text", "entities"),
    [
        ("tra cứu hồ sơ khác", None),
        ("còn hồ sơ ở hội an thì sao", [{"entity": "power_unit", "value": "hội an"}]),
    ],
)
async def test_another_request_is_asked_for_not_the_shown_one(text: str, entities: Any) -> None:
    form = ValidateFindRequestForm()
    tracker = follow_up(text, entities)
    assert await form.required_slots([], CollectingDispatcher(), tracker, {}) == [
        "power_unit",
        "customer_name",
    ]


async def test_completed_request_says_whether_it_was_on_time() -> None:
    dispatcher = CollectingDispatcher()
    await ActionFindRequest().run(dispatcher, make_tracker({"lookup_code": "PC04HC0004567"}), {})
    done = next(m for m in dispatcher.messages if m["response"].startswith("utter_request_completed"))
    assert done["completed"] and done["due"]
    assert (done["response"] == "utter_request_completed_late") == (int(done["late_days"]) > 0)


def ranked(*pairs: tuple[str, float]) -> dict[str, Any]:
    return {
        "text": "x",
        "intent": {"name": "nlu_fallback", "confidence": 0.5},
        "intent_ranking": [{"name": n, "confidence": c} for n, c in pairs],
    }


def test_two_stage_fallback_offers_the_two_likeliest_actionable_meanings(domain: dict[str, Any]) -> None:
    message = ranked(
        ("nlu_fallback", 0.5),
        ("affirm", 0.3),
        ("view_documents", 0.28),
        ("sign_documents", 0.25),
        ("report_outage", 0.1),
    )
    buttons = intent_choices(message, domain)
    assert [b["payload"] for b in buttons] == ["/view_documents", "/sign_documents", "/help"]
    assert buttons[0]["title"] == domain["responses"]["utter_intent_label_view_documents"][0]["text"]
    assert intent_choices(ranked(("greet", 0.6), ("thank", 0.3)), domain) == []
    assert intent_choices(ranked(("track_request", 0.05)), domain) == []


async def test_first_miss_asks_with_buttons_second_offers_a_human(domain: dict[str, Any]) -> None:
    tracker = make_tracker(text="cái đó", intent="nlu_fallback")
    tracker.latest_message = ranked(("track_request", 0.4), ("report_outage", 0.35))
    dispatcher = CollectingDispatcher()
    await ActionNluFallback().run(dispatcher, tracker, domain)
    assert responses(dispatcher) == ["utter_ask_which_intent"]
    assert len(dispatcher.messages[0]["buttons"]) == 3
    tracker.events.insert(
        0, {"event": "user", "text": "??", "parse_data": {"intent": {"name": "nlu_fallback"}}}
    )
    again = CollectingDispatcher()
    events = await ActionNluFallback().run(again, tracker, domain)
    assert responses(again) == ["utter_offer_handoff"]
    assert slot_events(events)["handoff_offered"] is True


async def test_asking_for_a_person_while_queued_keeps_the_place() -> None:
    first = CollectingDispatcher()
    events = await ActionRequestHandoff().run(first, make_tracker(intent="human_handoff"), {})
    assert responses(first) == ["utter_handoff_queued"]
    assert slot_events(events)["handoff_requested"] is True
    again = CollectingDispatcher()
    waiting = make_tracker({"handoff_requested": True}, text="co ai o do ko", intent="human_handoff")
    events = await ActionRequestHandoff().run(again, waiting, {})
    assert responses(again) == ["utter_handoff_still_waiting"]
    assert "handoff_requested" not in slot_events(events)


async def test_two_codes_in_one_message_are_both_answered() -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        {"lookup_code": "PC05TK0000123"}, text="xem giup 2 ho so pc05tk0000123 voi PC05-HA-0000789 nha"
    )
    events = await ActionFindRequest().run(dispatcher, tracker, {})
    shown = [m["code"] for m in dispatcher.messages if m["response"] == "utter_request_status"]
    assert shown == ["PC05HA0000789", "PC05TK0000123"]
    assert responses(dispatcher)[-1] == "utter_several_requests"
    assert dispatcher.messages[-1]["count"] == 2
    assert slot_events(events)["request_code"] == "PC05TK0000123"


async def test_a_sentence_with_a_number_or_a_code_is_no_choice_from_an_old_list() -> None:
    choices = await listed_candidates()
    for text in ("tôi đợi 2 tuần rồi mà chưa thấy ai xuống nhà", "ba tôi hỏi giùm", "PC05HA0000789 số 2"):
        dispatcher, slots = await pick(text, choices)
        assert "utter_request_status" not in responses(dispatcher), text
    # Any new lookup forgets the list.
    assert CANDIDATES_SLOT in {e["name"] for e in reset_lookup()}


async def test_an_unknown_current_request_is_named_masked_in_the_error() -> None:
    dispatcher = CollectingDispatcher()
    await show_request(dispatcher, make_tracker({}), "PC05TK9999999", mask=True)
    assert responses(dispatcher) == ["utter_request_not_found"]
    assert dispatcher.messages[0]["code"] == "PC05TK****999"


WARD_TITLES = [
    "Nguyễn V** A* · P. An Mỹ, TP. Tam Kỳ · 090****456 · 12/11/2026",
    "Nguyễn V** A* · P. Tân Thạnh, TP. Tam Kỳ · 091****456 · 20/11/2026",
    "Nguyễn V** A* · X. Tam Thăng, TP. Tam Kỳ · 093****789 · 02/12/2026",
]


@pytest.mark.parametrize(
    ("typed", "picked"),
    [
        ("cai nha o phuong tan thanh do chau, so dt duoi 456 do", [1]),
        ("phường An Mỹ", [0]),
        ("an my", [0]),
        ("tan thanh", [1]),
        ("hồ sơ ở xã Tam Thăng nộp hôm 2/12 đó em", [2]),
        ("cái thứ hai", [1]),  # an ordinal, not the "hai" of a ward
    ],
)
def test_a_candidate_described_in_a_sentence_is_picked(typed: str, picked: list[int]) -> None:
    from bot.actions.common import parse_choices

    assert parse_choices(typed, WARD_TITLES, allow_many=False) == picked


@pytest.mark.parametrize(
    "typed", ["số đuôi 456", "ở Tam Kỳ", "không biết nữa", "nhà ở phường đó đó em, cái số đuôi 456 á"]
)
def test_a_description_that_fits_several_candidates_picks_none(typed: str) -> None:
    from bot.actions.common import parse_choices

    assert parse_choices(typed, WARD_TITLES, allow_many=False) is None


def test_a_sentence_never_picks_documents_to_sign() -> None:
    from bot.actions.common import parse_choices

    titles = ["Hợp đồng mua bán điện sinh hoạt", "Thỏa thuận đấu nối", "Biên bản nghiệm thu"]
    assert parse_choices("không ký hợp đồng đâu em ạ", titles, allow_many=True) is None
    assert parse_choices(
        "Hợp đồng đầu tư công trình như tôi đã nói", titles + ["Hợp đồng đầu tư công trình"], allow_many=False
    ) == [3]


async def test_a_real_candidate_is_picked_by_an_elderly_customers_description() -> None:
    """The demo namesakes of Tam Kỳ (P. An Mỹ and P. Tân Thạnh), then a sentence of 10+ words that
    names the ward of one: the same request as typing its number."""
    choices = await listed_candidates()
    (index,) = [i for i, c in enumerate(choices) if "Tân Thạnh" in c["title"]]
    text = "dạ cái hồ sơ nhà tui ở phường tân thạnh đó cháu, cháu coi giùm bác với nghe"
    assert len(text.split()) > 8
    dispatcher, slots = await pick(text, choices)
    assert dispatcher.messages[0]["response"] == "utter_request_status"
    assert slots[CANDIDATES_SLOT] is None
    _, by_number = await pick(str(index + 1), choices)
    assert slots["request_code"] == by_number["request_code"]
