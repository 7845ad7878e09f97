"""Lookup actions against a real signing service: by code, by unit + name, unknown, late, down."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import signing_api
from bot.actions.lookup import (
    LOOKUP_SLOTS,
    ActionChooseCandidate,
    ActionFindRequest,
    ValidateFindRequestForm,
    clean_name,
)
from devstack.processes import free_port
from tests.actions.conftest import make_tracker, responses, slot_events

# These tests play the real customer, verified for the demo requests (tests/actions/conftest.py).
pytestmark = pytest.mark.usefixtures("verified_sender")


async def find(slots: dict, text: str = "") -> tuple[CollectingDispatcher, dict]:
    dispatcher = CollectingDispatcher()
    events = await ActionFindRequest().run(dispatcher, make_tracker(slots, text=text), {})
    return dispatcher, slot_events(events)


async def test_find_by_code_reports_steps_and_next_actions() -> None:
    dispatcher, slots = await find({"lookup_code": "PC05TK0000123"})
    assert slots["request_code"] == "PC05TK0000123"
    assert slots["lookup_code"] is None
    status = dispatcher.messages[0]
    assert status["response"] == "utter_request_status"
    assert status["code"] == "PC05TK0000123"
    assert status["unit_name"] == "Điện lực Tam Kỳ"
    assert "▶ Ký hợp đồng" in status["steps"]
    assert status["current_step"] == "Ký hợp đồng"
    assert "utter_request_late" not in responses(dispatcher)
    assert responses(dispatcher)[-1] == "utter_request_next_sign"
    assert dispatcher.messages[-1]["count"] == 2


@pytest.mark.parametrize("typed", ["pc05tk0000123", "PC05 TK 0000123", "pc05-tk-000-0123", " Pc05Tk0000123 "])
async def test_find_by_code_normalises_what_customers_type(typed: str) -> None:
    _, slots = await find({"lookup_code": typed})
    assert slots["request_code"] == "PC05TK0000123"


async def test_unknown_code_says_not_found_and_offers_retry() -> None:
    dispatcher, slots = await find({"lookup_code": "PC05TK9999999"})
    assert responses(dispatcher) == ["utter_request_not_found"]
    assert dispatcher.messages[0]["code"] == "PC05TK9999999"
    assert "request_code" not in slots


async def test_malformed_code_is_refused_without_calling_the_service() -> None:
    dispatcher, _ = await find({"lookup_code": "PC5TK123"})
    assert responses(dispatcher) == ["utter_request_code_invalid"]


async def test_late_request_is_flagged() -> None:
    dispatcher, _ = await find({"lookup_code": "PC05HA0000789"})
    assert "utter_request_late" in responses(dispatcher)
    late = next(m for m in dispatcher.messages if m["response"] == "utter_request_late")
    assert int(late["late_days"]) > 0
    assert "▶ Thi công" in dispatcher.messages[0]["steps"]


async def test_completed_request() -> None:
    dispatcher, _ = await find({"lookup_code": "PC04HC0004567"})
    assert "utter_request_completed" in responses(dispatcher)


async def test_same_name_gives_masked_candidates_as_buttons() -> None:
    dispatcher, slots = await find(
        {"power_unit": "PC05TK", "power_unit_name": "Điện lực Tam Kỳ", "customer_name": "nguyen van an"}
    )
    msg = dispatcher.messages[0]
    assert msg["response"] == "utter_choose_candidate"
    assert msg["count"] == 2
    payloads = [b["payload"] for b in msg["buttons"]]
    assert "PC05" not in " ".join(payloads)  # opaque refs, never request codes
    refs = [json.loads(p[len("/inform") :])["candidate_ref"] for p in payloads]
    # Picking a button shows that request's status, with its code masked.
    codes = set()
    for ref in refs:
        picked = CollectingDispatcher()
        events = await ActionChooseCandidate().run(picked, make_tracker({"candidate_ref": ref}), {})
        codes.add(slot_events(events)["request_code"])
        assert picked.messages[0]["response"] == "utter_request_status"
        assert "****" in picked.messages[0]["code"]
    assert codes == {"PC05TK0000123", "PC05TK0000456"}
    # A ref offered to one conversation does nothing in another one.
    other = CollectingDispatcher()
    await ActionChooseCandidate().run(
        other, make_tracker({"candidate_ref": refs[0]}, sender_id="someone-else"), {}
    )
    assert responses(other) == ["utter_candidate_expired"]
    titles = " ".join(b["title"] for b in msg["buttons"])
    assert "Nguyễn Văn An" not in titles and "*" in titles  # personal data masked
    assert slots["power_unit"] is None and slots["customer_name"] is None


async def test_single_match_shows_status_directly() -> None:
    dispatcher, slots = await find({"power_unit": "PC04HC", "customer_name": "Tran Thi Bich Ngoc"})
    assert slots["request_code"] == "PC04HC0004567"
    assert responses(dispatcher)[0] == "utter_request_status"


async def test_no_match_offers_retry() -> None:
    dispatcher, _ = await find(
        {"power_unit": "PC05TK", "power_unit_name": "Điện lực Tam Kỳ", "customer_name": "Zzz Yyy"}
    )
    assert responses(dispatcher) == ["utter_no_match"]


async def test_pending_documents_task_continues_after_lookup() -> None:
    dispatcher, slots = await find({"lookup_code": "PC05TK0000123", "pending_task": "documents"})
    assert responses(dispatcher)[-1] == "utter_documents"
    assert slots["pending_task"] is None


@pytest.mark.parametrize(
    ("typed", "unit"),
    [
        ("Điện lực Tam Kỳ", "PC05TK"),
        ("dien luc tam ky", "PC05TK"),
        ("tam ky", "PC05TK"),
        ("ở điện lực Hội An ạ", "PC05HA"),
        ("PC04HC", "PC04HC"),
        ("dl hai chau", "PC04HC"),
    ],
)
async def test_unit_is_resolved_from_free_text(typed: str, unit: str) -> None:
    dispatcher = CollectingDispatcher()
    result = await ValidateFindRequestForm().validate_power_unit(
        typed, dispatcher, make_tracker(text=typed), {}
    )
    assert result["power_unit"] == unit, dispatcher.messages


@pytest.mark.parametrize(
    ("places", "unit"),
    [
        (["sam son", "thanh hoa"], "PC10SS"),  # "e o sam son thanh hoa": a town and its province
        (["Hải Châu", "Đà Nẵng"], "PC04HC"),
        (["da nang", "hoa vang"], "PC04HV"),
        (["hoi an", "sao hỏa"], "PC05HA"),  # a place that is no unit is left aside
    ],
)
async def test_a_town_and_its_province_in_one_message_give_the_town(places: list[str], unit: str) -> None:
    """Two power_unit entities reach the form as a list; the province alone lists all its units."""
    dispatcher = CollectingDispatcher()
    result = await ValidateFindRequestForm().validate_power_unit(
        places, dispatcher, make_tracker(text=" ".join(places)), {}
    )
    assert result["power_unit"] == unit, dispatcher.messages


async def test_two_provinces_in_one_message_offer_the_choice() -> None:
    dispatcher = CollectingDispatcher()
    result = await ValidateFindRequestForm().validate_power_unit(
        ["Đà Nẵng", "Quảng Nam"], dispatcher, make_tracker(text="đà nẵng hay quảng nam"), {}
    )
    assert result == {"power_unit": None}
    assert responses(dispatcher) == ["utter_choose_unit"]


async def test_unknown_unit_is_explained() -> None:
    dispatcher = CollectingDispatcher()
    result = await ValidateFindRequestForm().validate_power_unit(
        "điện lực sao hỏa", dispatcher, make_tracker(), {}
    )
    assert result == {"power_unit": None}
    assert responses(dispatcher) == ["utter_unit_not_found"]


async def test_a_code_typed_instead_of_a_unit_ends_the_form() -> None:
    form = ValidateFindRequestForm()
    result = await form.validate_power_unit(
        "mã là pc05tk 0000123", CollectingDispatcher(), make_tracker(), {}
    )
    assert result == {"power_unit": None, "lookup_code": "PC05TK0000123"}
    tracker = make_tracker({"lookup_code": "PC05TK0000123"})
    assert (
        await form.required_slots(["power_unit", "customer_name"], CollectingDispatcher(), tracker, {}) == []
    )


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ("Nguyễn Văn An", "Nguyễn Văn An"),
        ("tên tôi là nguyen van an", "nguyen van an"),
        ("Ten toi la Le Minh Tuan.", "Le Minh Tuan"),
        ("mình là Trần Thị Bích Ngọc", "Trần Thị Bích Ngọc"),
    ],
)
def test_names_are_cleaned(typed: str, name: str) -> None:
    assert clean_name(typed) == name


@pytest.mark.parametrize("typed", ["123", "An", "nguyen van an 0905123456", "a b c d e f g h", "x" * 150])
def test_implausible_names_are_refused(typed: str) -> None:
    assert clean_name(typed) is None


async def test_one_word_name_from_the_service_asks_for_the_full_name() -> None:
    """The service refuses one word (400 name_too_short): ask for the full name, keep the unit."""
    dispatcher = CollectingDispatcher()
    slots = {"power_unit": "PC05TK", "power_unit_name": "Điện lực Tam Kỳ", "customer_name": "An"}
    tracker = make_tracker(slots, sender_id=f"one-word-{uuid.uuid4().hex[:8]}")
    events = await ActionFindRequest().run(dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_name_too_short"]
    assert slot_events(events) == {"lookup_code": None, "customer_name": None}  # unit kept
    assert events[-1] == {"event": "followup", "name": "find_request_form", "timestamp": None}


async def test_too_many_name_lookups_in_a_conversation_say_wait_or_use_the_code() -> None:
    """The sixth name lookup of one conversation within 10 minutes is refused (429) by the service."""
    sender = f"walker-{uuid.uuid4().hex[:8]}"
    slots = {"power_unit": "PC05TK", "power_unit_name": "Điện lực Tam Kỳ", "customer_name": "Zzz Yyy"}
    for _ in range(5):
        dispatcher = CollectingDispatcher()
        await ActionFindRequest().run(dispatcher, make_tracker(slots, sender_id=sender), {})
        assert responses(dispatcher) == ["utter_no_match"]
    dispatcher = CollectingDispatcher()
    events = await ActionFindRequest().run(dispatcher, make_tracker(slots, sender_id=sender), {})
    assert responses(dispatcher) == ["utter_too_many_lookups"]
    assert slot_events(events) == {name: None for name in LOOKUP_SLOTS}
    # The client reports it as a typed error with the wait; another conversation is not affected.
    with pytest.raises(signing_api.TooManyLookups) as refused:
        await signing_api.get_api().search("PC05TK", "Zzz Yyy", sender)
    assert refused.value.status == 429 and 0 < (refused.value.retry_after or 0) <= 600
    dispatcher = CollectingDispatcher()
    await ActionFindRequest().run(dispatcher, make_tracker(slots, sender_id=sender + "-other"), {})
    assert responses(dispatcher) == ["utter_no_match"]


async def test_client_reports_one_word_names_as_a_typed_error() -> None:
    with pytest.raises(signing_api.NameTooShort) as refused:
        await signing_api.get_api().search("PC05TK", "nguyen", "typed-error-test")
    assert (refused.value.status, refused.value.code) == (400, "name_too_short")
    assert isinstance(refused.value, signing_api.ApiError)


@pytest.mark.parametrize(
    ("typed", "response"),
    [
        ("An", "utter_name_too_short"),
        ("tên tôi là Nguyễn", "utter_name_too_short"),
        ("123", "utter_name_invalid"),
    ],
)
async def test_form_asks_again_for_a_full_name(typed: str, response: str) -> None:
    dispatcher = CollectingDispatcher()
    result = await ValidateFindRequestForm().validate_customer_name(typed, dispatcher, make_tracker(), {})
    assert result == {"customer_name": None}
    assert responses(dispatcher) == [response]


def test_new_responses_are_in_the_domain(domain: dict) -> None:
    for name in ("utter_name_too_short", "utter_too_many_lookups"):
        text = domain["responses"][name][0]["text"]
        assert "anh/chị" in text.lower(), name
    assert "Nguyễn Văn An" in domain["responses"]["utter_name_too_short"][0]["text"]
    assert "19001909" in domain["responses"]["utter_too_many_lookups"][0]["text"]


@pytest.fixture
async def slow_service() -> AsyncIterator[str]:
    """A server that answers too late: stands in for a hung signing service."""

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/{tail:.*}", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_slow_service_gives_a_polite_message_within_the_timeout(
    slow_service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signing_api, "_api", signing_api.SigningApi(slow_service, "t", timeout_s=0.5))
    loop = asyncio.get_running_loop()
    started = loop.time()
    dispatcher, _ = await find({"lookup_code": "PC05TK0000123"})
    assert responses(dispatcher) == ["utter_service_unavailable"]
    assert loop.time() - started < 3


async def test_service_down_gives_a_polite_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signing_api, "_api", signing_api.SigningApi(f"http://127.0.0.1:{free_port()}", "t"))
    dispatcher, _ = await find({"power_unit": "PC05TK", "customer_name": "Nguyen Van An"})
    assert responses(dispatcher) == ["utter_service_unavailable"]
    dispatcher = CollectingDispatcher()
    await ValidateFindRequestForm().validate_power_unit("tam ky", dispatcher, make_tracker(), {})
    assert responses(dispatcher) == ["utter_service_unavailable"]


async def test_wrong_token_is_not_a_crash(monkeypatch: pytest.MonkeyPatch, service) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(signing_api, "_api", signing_api.SigningApi(service.url, "wrong-token"))
    dispatcher, _ = await find({"lookup_code": "PC05TK0000123"})
    assert responses(dispatcher) == ["utter_service_unavailable"]


async def test_a_payload_entity_that_is_not_text_is_no_code() -> None:
    from bot.actions.common import find_request_code, normalize_request_code

    for value in (5, {"a": 1}, ["PC05TK0000123"]):
        assert normalize_request_code(value) is None  # type: ignore[arg-type]
        assert find_request_code(value) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reply", "name"),
    [
        ("ba e ten nguyen van an a", "nguyen van an"),
        ("Mẹ tôi là Hồ Thị Lan nhé", "Hồ Thị Lan"),
        ("chủ hộ là Phạm Minh Tuấn ạ", "Phạm Minh Tuấn"),
        ("bo toi la tran van hung", "tran van hung"),
        ("Nguyễn Thu Hà", "Nguyễn Thu Hà"),
        ("le ngoc nhi a", "le ngoc nhi"),
        ("họ tên Hồ Văn Tâm", "Hồ Văn Tâm"),
    ],
)
def test_a_name_is_cut_out_of_a_reply_about_a_relative(reply: str, name: str) -> None:
    assert clean_name(reply) == name
