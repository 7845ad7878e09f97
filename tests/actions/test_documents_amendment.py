"""Documents and amendment actions against a real signing service."""

from __future__ import annotations

import pytest
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.amendment import (
    ActionAskAmendDocument,
    ActionPrepareAmendment,
    ActionSubmitAmendment,
    ValidateAmendmentForm,
)
from bot.actions.documents import ActionShowDocuments
from tests.actions.conftest import Service, make_tracker, responses, slot_events

# These tests play the real customer, verified for the demo requests (tests/actions/conftest.py).
pytestmark = pytest.mark.usefixtures("verified_sender")


async def show(code: str | None) -> CollectingDispatcher:
    dispatcher = CollectingDispatcher()
    await ActionShowDocuments().run(dispatcher, make_tracker({"request_code": code}), {})
    return dispatcher


async def test_documents_list_with_original_links() -> None:
    dispatcher = await show("PC05TK0000123")
    msg = dispatcher.messages[0]
    assert msg["response"] == "utter_documents"
    assert "Hợp đồng mua bán điện sinh hoạt" in msg["documents"]
    assert "Chờ ký" in msg["documents"]
    urls = [b["url"] for b in msg["buttons"]]
    assert len(urls) >= 2 and all("variant=original" in u for u in urls)
    assert all(b["type"] == "web_url" and b["payload"] == b["url"] for b in msg["buttons"])


async def test_signed_documents_have_signed_links_too() -> None:
    msg = (await show("PC04HC0004567")).messages[0]
    assert any("variant=signed" in b["url"] for b in msg["buttons"])
    assert "Đã ký" in msg["documents"]


async def test_no_documents() -> None:
    assert responses(await show("PC05TK0000456")) == ["utter_no_documents"]


async def test_without_request_the_lookup_runs_first() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionShowDocuments().run(dispatcher, make_tracker({}), {})
    assert slot_events(events) == {"pending_task": "documents"}
    assert events[-1]["name"] == "find_request_form"


async def test_amendment_flow(service: Service) -> None:
    code = service.codes_awaiting(2)[1]
    dispatcher = CollectingDispatcher()
    events = await ActionPrepareAmendment().run(dispatcher, make_tracker({"request_code": code}), {})
    slots = slot_events(events)
    assert events[-1]["name"] == "amendment_form"
    assert len(slots["doc_choices"]) == 2 and slots.get("amend_document") is None
    state = {"request_code": code, **slots}

    dispatcher = CollectingDispatcher()
    await ActionAskAmendDocument().run(dispatcher, make_tracker(state), {})
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == ["1", "2"]

    form = ValidateAmendmentForm()
    dispatcher = CollectingDispatcher()
    assert (await form.validate_amend_document("7", dispatcher, make_tracker(state), {})) == {
        "amend_document": None
    }
    assert responses(dispatcher) == ["utter_choice_invalid"]
    result = await form.validate_amend_document("2", CollectingDispatcher(), make_tracker(state), {})
    assert result["amend_document"] == f"id:{slots['doc_choices'][1]['id']}"
    state.update(result)

    dispatcher = CollectingDispatcher()
    assert (await form.validate_amend_text("sai", dispatcher, make_tracker(state), {})) == {
        "amend_text": None
    }
    assert responses(dispatcher) == ["utter_amend_text_too_short"]
    dispatcher = CollectingDispatcher()
    assert (await form.validate_amend_text("x" * 1001, dispatcher, make_tracker(state), {})) == {
        "amend_text": None
    }
    assert responses(dispatcher) == ["utter_amend_text_too_long"]
    text = "Sai địa chỉ:\x07 số nhà đúng là 12 Phan Chu Trinh"
    result = await form.validate_amend_text(text, CollectingDispatcher(), make_tracker(state), {})
    assert result == {"amend_text": "Sai địa chỉ: số nhà đúng là 12 Phan Chu Trinh"}
    state.update(result)
    state["amend_confirm"] = True

    dispatcher = CollectingDispatcher()
    events = await ActionSubmitAmendment().run(dispatcher, make_tracker(state), {})
    # Done: the notices are offered (once for this request in this chat).
    assert responses(dispatcher) == ["utter_amendment_sent", "utter_offer_notifications"]
    assert dispatcher.messages[0]["reference"]
    assert slot_events(events)["amend_text"] is None
    assert slot_events(events)["notify_offered"] == [state["request_code"]]


async def test_no_drafts_to_amend() -> None:
    dispatcher = CollectingDispatcher()
    await ActionPrepareAmendment().run(dispatcher, make_tracker({"request_code": "PC04HC0004567"}), {})
    assert responses(dispatcher) == ["utter_no_amendable"]


async def test_submit_without_confirmation_sends_nothing() -> None:
    dispatcher = CollectingDispatcher()
    await ActionSubmitAmendment().run(
        dispatcher,
        make_tracker({"request_code": "PC05TK0000123", "amend_document": "1", "amend_text": "abcdef"}),
        {},
    )
    assert dispatcher.messages == []


async def test_single_draft_is_preselected_and_passes_validation(service: Service) -> None:
    code = service.codes_awaiting(1)[4]
    events = await ActionPrepareAmendment().run(
        CollectingDispatcher(), make_tracker({"request_code": code}), {}
    )
    slots = slot_events(events)
    assert slots["amend_document"] == f"id:{slots['doc_choices'][0]['id']}"
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"request_code": code, **slots})
    result = await ValidateAmendmentForm().validate_amend_document(
        slots["amend_document"], dispatcher, tracker, {}
    )
    assert result == {"amend_document": slots["amend_document"]}
    assert dispatcher.messages == []


async def test_code_in_the_same_message_is_looked_up_then_documents_listed() -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        {"lookup_code": "pc05tk 0000123"}, text="xem giấy tờ pc05tk 0000123", intent="view_documents"
    )
    events = await ActionShowDocuments().run(dispatcher, tracker, {})
    assert responses(dispatcher)[0] == "utter_request_status"
    assert responses(dispatcher)[-1] == "utter_documents"
    slots = slot_events(events)
    assert slots["request_code"] == "PC05TK0000123" and slots["lookup_code"] is None


@pytest.mark.parametrize(
    ("first_message", "kept"),
    [
        (
            "ho so {code} ghi sai phuong roi, nha toi o An My chu khong phai Cam Pho",
            "ho so ghi sai phuong roi, nha toi o An My chu khong phai Cam Pho",
        ),
        ("tôi muốn hiệu chỉnh dự thảo {code}", None),
        ("sai", None),
    ],
)
async def test_a_mistake_described_in_the_first_message_becomes_the_amendment_text(
    service: Service, first_message: str, kept: str | None
) -> None:
    code = service.codes_awaiting(1)[5]
    tracker = make_tracker(
        {"request_code": code}, text=first_message.format(code=code), intent="request_amendment"
    )
    # The lookup and the verification came between that message and the amendment form.
    tracker.events += [
        {"event": "user", "text": "sms", "parse_data": {"intent": {"name": "inform"}}},
        {"event": "user", "text": "123456", "parse_data": {"intent": {"name": "inform"}}},
    ]
    events = await ActionPrepareAmendment().run(CollectingDispatcher(), tracker, {})
    slots = slot_events(events)
    assert slots.get("amend_text") == kept
    assert code not in str(slots.get("amend_text"))
