"""Verification actions: a stranger who knows a code gets nothing personal; the owner verifies by code
or by a shared phone, then sees the documents; one code serves verification and signing."""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.amendment import ActionPrepareAmendment
from bot.actions.documents import ActionShowDocuments
from bot.actions.signing import ActionPrepareSigning, ValidateSigningForm
from bot.actions.verification import (
    MASKED_MAX,
    ActionDeleteMyData,
    ActionFinishVerification,
    ActionUnlink,
    ValidateVerificationForm,
    ask_channel_slots,
)
from common.erasure import FORGET_SLOT
from common.shared_contact import REQUEST_CONTACT_BUTTON, SHARE_CONTACT_TEXT, shared_contact
from tests.actions.conftest import Service, make_tracker, responses, slot_events


def ask_for_channel(domain: dict[str, Any], slots: dict[str, Any], channel: str = "rest") -> dict[str, Any]:
    """The form's question as Rasa renders it: `utter_ask_verify_channel` from domain.yml, with the
    slots the actions set (Rasa's own response generator picks the variation and fills it)."""
    from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator

    message = TemplatedNaturalLanguageGenerator(domain["responses"]).generate_from_slots(
        "utter_ask_verify_channel", slots, channel
    )
    assert message is not None
    return message


def stranger() -> str:
    return f"stranger-{uuid.uuid4().hex[:8]}"


def registered_phone(service: Service, code: str) -> str:
    with sqlite3.connect(service.db) as conn:
        row = conn.execute(
            "select c.value from contacts c join requests r on r.id = c.request_id "
            "where r.code = ? and c.channel = 'sms'",
            (code,),
        ).fetchone()
    return str(row[0])


async def test_a_code_alone_gives_no_documents_contacts_amendment_or_signing(service: Service) -> None:
    code = "PC05TK0000123"
    sender = stranger()
    said = []
    for action in (ActionShowDocuments(), ActionPrepareSigning(), ActionPrepareAmendment()):
        dispatcher = CollectingDispatcher()
        events = await action.run(dispatcher, make_tracker({"request_code": code}, sender_id=sender), {})
        said += dispatcher.messages
        assert responses(dispatcher) == ["utter_verify_needed"]
        assert events[-1] == {"event": "followup", "name": "verification_form", "timestamp": None}
        assert slot_events(events)["verify_sms"] == "090****456"
    leaked = json.dumps(said, ensure_ascii=False)
    assert "http" not in leaked and "0905123456" not in leaked and "049090001234" not in leaked


async def test_verification_by_code_then_documents(service: Service, domain: dict[str, Any]) -> None:
    code, sender = "PC05TK0000123", stranger()
    events = await ActionShowDocuments().run(
        CollectingDispatcher(), make_tracker({"request_code": code}, sender_id=sender), {}
    )
    state = {"request_code": code, **slot_events(events)}
    buttons = ask_for_channel(domain, state)["buttons"]
    assert [(b["title"], b["payload"]) for b in buttons] == [
        ("SMS: 090****456", "sms"),
        ("Email: a*@example.com", "email"),
    ]  # REST: no share-phone button
    form = ValidateVerificationForm()
    dispatcher = CollectingDispatcher()
    state.update(
        await form.validate_verify_channel("sms", dispatcher, make_tracker(state, sender_id=sender), {})
    )
    assert responses(dispatcher) == ["utter_verify_code_sent"] and state["verification_id"]
    otp = service.last_otp("0905123456")
    wrong = f"{(int(otp) + 1) % 10**6:06d}"
    dispatcher = CollectingDispatcher()
    result = await form.validate_verify_otp(wrong, dispatcher, make_tracker(state, sender_id=sender), {})
    assert result == {"verify_otp": None} and responses(dispatcher) == ["utter_otp_wrong"]
    result = await form.validate_verify_otp(
        f"mã {otp}", CollectingDispatcher(), make_tracker(state, sender_id=sender), {}
    )
    assert result == {"verify_otp": "verified", "verification_result": "verified"}
    state.update(result)
    dispatcher = CollectingDispatcher()
    events = await ActionFinishVerification().run(dispatcher, make_tracker(state, sender_id=sender), {})
    assert responses(dispatcher) == ["utter_verified", "utter_offer_notifications"]
    assert events[-1]["name"] == "action_show_documents"
    # The offer comes once per request in a chat.
    state["notify_offered"] = [code]
    dispatcher = CollectingDispatcher()
    await ActionFinishVerification().run(dispatcher, make_tracker(state, sender_id=sender), {})
    assert responses(dispatcher) == ["utter_verified"]
    dispatcher = CollectingDispatcher()
    await ActionShowDocuments().run(dispatcher, make_tracker({"request_code": code}, sender_id=sender), {})
    assert responses(dispatcher) == ["utter_documents"]


async def test_telegram_own_contact_verifies_in_one_tap(service: Service) -> None:
    code, sender = "PC05TK0000123", stranger()
    form = ValidateVerificationForm()
    phone = "+84" + registered_phone(service, code)[1:]
    meta = shared_contact(phone, "telegram_contact", own_number=True)
    tracker = make_tracker(
        {"request_code": code},
        text="/share_contact",
        sender_id=sender,
        input_channel="telegram",
        metadata=meta,
    )
    result = await form.validate_verify_channel("/share_contact", CollectingDispatcher(), tracker, {})
    assert result["verification_result"] == "verified"
    dispatcher = CollectingDispatcher()
    tg = make_tracker({"request_code": code}, sender_id=sender, input_channel="telegram")
    await ActionShowDocuments().run(dispatcher, tg, {})
    assert responses(dispatcher) == ["utter_documents"]


async def test_someone_elses_contact_or_a_typed_share_verifies_nothing(service: Service) -> None:
    code, sender = "PC05TK0000123", stranger()
    form = ValidateVerificationForm()
    phone = registered_phone(service, code)
    cases = [
        ({"metadata": shared_contact(None, "telegram_contact", own_number=False)}, "utter_contact_not_own"),
        ({"metadata": shared_contact("0911111111", "telegram_contact", True)}, "utter_contact_mismatch"),
        ({}, "utter_contact_not_received"),  # "/share_contact" typed on REST: no metadata
    ]
    for extra, said in cases:
        dispatcher = CollectingDispatcher()
        channel = "telegram" if extra else "rest"
        tracker = make_tracker(
            {"request_code": code}, text="/share_contact", sender_id=sender, input_channel=channel, **extra
        )
        result = await form.validate_verify_channel("/share_contact", dispatcher, tracker, {})
        assert result["verify_channel"] is None and "verification_result" not in result
        assert responses(dispatcher) == [said]
    # Zalo: the registered number, but Zalo does not vouch for it: a code goes to it instead.
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        {"request_code": code},
        sender_id=sender,
        input_channel="zalo",
        metadata=shared_contact(phone, "zalo_user_info", own_number=False),
    )
    result = await form.validate_verify_channel("/share_contact", dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_contact_code_needed", "utter_verify_code_sent"]
    assert result["verify_channel"] == "sms" and "verification_result" not in result
    dispatcher = CollectingDispatcher()
    await ActionShowDocuments().run(dispatcher, make_tracker({"request_code": code}, sender_id=sender), {})
    assert responses(dispatcher) == ["utter_verify_needed"]


async def test_consent_right_after_verification_signs_without_a_second_code(service: Service) -> None:
    code, sender = service.codes_awaiting(1)[0], stranger()
    form = ValidateVerificationForm()
    state = {"request_code": code, "verify_task": "sign"}  # asked to sign: the code names the drafts
    state.update(
        await form.validate_verify_channel(
            "sms", CollectingDispatcher(), make_tracker(state, sender_id=sender), {}
        )
    )
    otp = service.last_otp()
    await form.validate_verify_otp(otp, CollectingDispatcher(), make_tracker(state, sender_id=sender), {})
    events = await ActionPrepareSigning().run(
        CollectingDispatcher(), make_tracker({"request_code": code}, sender_id=sender), {}
    )
    slots = {"request_code": code, **slot_events(events)}
    sent_before = service.outbox.read_text(encoding="utf-8").count("\n")
    result = await ValidateSigningForm().validate_sign_consent(
        True, CollectingDispatcher(), make_tracker(slots, sender_id=sender), {}
    )
    assert result["signing_result"]["status"] == "signed"
    new = [json.loads(x) for x in service.outbox.read_text(encoding="utf-8").splitlines()[sent_before:]]
    assert new and all("đã được ký" in m["text"] for m in new)  # no second code, only the notice


async def test_unlink_stops_the_documents(service: Service) -> None:
    code, sender = "PC04HC0004567", stranger()
    form = ValidateVerificationForm()
    state = {"request_code": code}
    state.update(
        await form.validate_verify_channel(
            "sms", CollectingDispatcher(), make_tracker(state, sender_id=sender), {}
        )
    )
    await form.validate_verify_otp(
        service.last_otp(), CollectingDispatcher(), make_tracker(state, sender_id=sender), {}
    )
    dispatcher = CollectingDispatcher()
    await ActionUnlink().run(dispatcher, make_tracker({"request_code": code}, sender_id=sender), {})
    assert responses(dispatcher) == ["utter_unlinked"]
    dispatcher = CollectingDispatcher()
    await ActionShowDocuments().run(dispatcher, make_tracker({"request_code": code}, sender_id=sender), {})
    assert responses(dispatcher) == ["utter_verify_needed"]
    dispatcher = CollectingDispatcher()
    await ActionUnlink().run(dispatcher, make_tracker({"request_code": code}, sender_id=sender), {})
    assert responses(dispatcher) == ["utter_not_linked"]


async def test_delete_my_data_unlinks_and_asks_the_store_to_erase(service: Service) -> None:
    code, sender = "PC05TK0000123", stranger()
    form = ValidateVerificationForm()
    state = {"request_code": code}
    state.update(
        await form.validate_verify_channel(
            "sms", CollectingDispatcher(), make_tracker(state, sender_id=sender), {}
        )
    )
    await form.validate_verify_otp(
        service.last_otp(), CollectingDispatcher(), make_tracker(state, sender_id=sender), {}
    )
    dispatcher = CollectingDispatcher()
    events = await ActionDeleteMyData().run(
        dispatcher, make_tracker({"request_code": code}, sender_id=sender), {}
    )
    assert responses(dispatcher) == ["utter_data_deleted"]
    assert slot_events(events) == {FORGET_SLOT: True}
    dispatcher = CollectingDispatcher()
    await ActionShowDocuments().run(dispatcher, make_tracker({"request_code": code}, sender_id=sender), {})
    assert responses(dispatcher) == ["utter_verify_needed"]


async def test_another_code_typed_instead_of_a_channel_looks_that_request_up() -> None:
    from bot.actions.verification import ActionFinishVerification, ValidateVerificationForm

    tracker = make_tracker(
        {"request_code": "PC05HA0000789", "verify_task": "documents"},
        text="a nham roi, ma cua toi la pc04-hc-0004567 moi dung",
        active_loop="verification_form",
        requested_slot="verify_channel",
    )
    result = await ValidateVerificationForm().validate_verify_channel(
        tracker.latest_message["text"], CollectingDispatcher(), tracker, {}
    )
    assert result["lookup_code"] == "PC04HC0004567" and result["verification_result"] == "aborted"
    finished = make_tracker({"verification_result": "aborted", "lookup_code": "PC04HC0004567"})
    events = await ActionFinishVerification().run(CollectingDispatcher(), finished, {})
    assert events[-1] == {"event": "followup", "name": "action_find_request", "timestamp": None}


async def test_a_question_instead_of_an_answer_is_answered_and_sends_no_code() -> None:
    """ "số hotline là gì" while the form asks how to send the code used to send an SMS code (the bare
    word "số"); now the FAQ is answered, no code goes out, and the form asks again. Same while it
    waits for the code. Real answers classified as FAQ ("sđt") still choose."""

    def asking(slot: str, text: str, faq: str | None) -> Any:
        tracker = make_tracker(
            {"request_code": "PC05TK0000123", "verify_task": "documents", "verification_id": "v-1"},
            text=text,
            intent="faq" if faq else "inform",
            active_loop="verification_form",
            requested_slot=slot,
        )
        if faq:
            tracker.latest_message["intent"]["full_retrieval_intent_name"] = faq
        return tracker

    form = ValidateVerificationForm()
    dispatcher = CollectingDispatcher()
    tracker = asking("verify_channel", "số hotline là gì", "faq/hotline")
    result = await form.validate_verify_channel("số hotline là gì", dispatcher, tracker, {})
    assert result == {"verify_channel": None}
    assert responses(dispatcher) == ["utter_faq/hotline"]

    dispatcher = CollectingDispatcher()
    tracker = asking("verify_otp", "thủ tục cần giấy tờ gì", "faq/required_papers")
    result = await form.validate_verify_otp("thủ tục cần giấy tờ gì", dispatcher, tracker, {})
    assert result == {"verify_otp": None}
    assert responses(dispatcher) == ["utter_faq/required_papers"]

    dispatcher = CollectingDispatcher()
    tracker = asking("verify_otp", "12345", None)  # not a question: the format reminder as before
    assert await form.validate_verify_otp("12345", dispatcher, tracker, {}) == {"verify_otp": None}
    assert responses(dispatcher) == ["utter_otp_format"]


@pytest.mark.parametrize("channel", ["rest", "web", "socketio", "telegram", "zalo"])
@pytest.mark.parametrize(
    "contacts",
    [
        {"sms": "090****456", "email": "a*@example.com"},
        {"sms": "090****456"},
        {"email": "a*@example.com"},
        {"sms": "090****456", "email": ""},
    ],
)
def test_the_channel_question_offers_one_tap_where_it_exists_and_only_registered_contacts(
    domain: dict[str, Any], channel: str, contacts: dict[str, str]
) -> None:
    slots = slot_events(ask_channel_slots(make_tracker(input_channel=channel), contacts))
    message = ask_for_channel(domain, slots, channel)
    expected = []
    if channel in ("telegram", "zalo"):
        # The connectors turn this button into Telegram's / Zalo's "share my number" (one contract).
        expected.append(
            {
                "title": "📱 Chia sẻ số điện thoại",
                "payload": SHARE_CONTACT_TEXT,
                "type": REQUEST_CONTACT_BUTTON,
            }
        )
    if contacts.get("sms"):
        expected.append({"title": f"SMS: {contacts['sms']}", "payload": "sms"})
    if contacts.get("email"):
        expected.append({"title": f"Email: {contacts['email']}", "payload": "email"})
    assert message["buttons"] == expected
    assert message["text"] == domain["responses"]["utter_ask_verify_channel"][-1]["text"]


def test_the_channel_question_without_its_slots_still_asks_and_long_contacts_are_cut(
    domain: dict[str, Any],
) -> None:
    assert "buttons" not in ask_for_channel(domain, {})
    long_email = "a" + "*" * 100 + "@example.com"
    slots = slot_events(ask_channel_slots(make_tracker(), {"email": long_email}))
    (button,) = ask_for_channel(domain, slots)["buttons"]
    assert button["title"] == "Email: " + long_email[:MASKED_MAX] and len(button["title"]) <= 80


@pytest.mark.parametrize(
    ("intent", "verified"),
    [("out_of_scope", True), ("thank", True), ("inform", True), ("cancel", False), ("human_handoff", False)],
)
async def test_a_code_inside_a_sentence_verifies_whatever_the_intent(
    service: Service, domain: dict[str, Any], intent: str, verified: bool
) -> None:
    """ "xin lỗi em đi nấu cơm, mã là <code> ạ" was read as out_of_scope, which the code slot's
    mapping leaves out: the bot answered "out of scope" and the code was lost. The whole form
    validation (as the action server runs it) now takes the code; leaving intents still leave."""
    from bot.actions.signing_api import ChatUser, get_api
    from bot.actions.verification import ValidateVerificationForm

    sender = stranger()
    # A generated request of its own per case (the demo requests' hourly send cap is shared).
    cases = ("out_of_scope", "thank", "inform", "cancel", "human_handoff")
    code = service.codes_awaiting(1)[6 + cases.index(intent)]  # 0-5 are other tests'
    challenge = await get_api().start_verification(code, "sms", ChatUser("rest", sender))
    text = f"xin lỗi em đi nấu cơm, mã là {service.last_otp(registered_phone(service, code))} ạ"
    tracker = make_tracker(
        {
            "request_code": code,
            "verify_task": "documents",
            "verification_id": challenge["challenge_id"],
        },
        text=text,
        intent=intent,
        sender_id=sender,
        active_loop="verification_form",
        requested_slot="verify_otp",
    )
    events = await ValidateVerificationForm().run(CollectingDispatcher(), tracker, domain)
    slots = slot_events(events)
    if verified:
        assert slots.get("verification_result") == "verified", events
    else:
        assert "verification_result" not in slots and not slots.get("verify_otp"), events


@pytest.mark.parametrize(
    ("typed", "fits"),
    [
        ("sdt cua minh la 0905123456", True),
        ("số em +84 905 123 456 nha", True),
        ("0905.123.456", True),
        ("0905999456", True),  # the hidden digits are not compared: no answer tells them
        ("số của vợ tôi 0912345678", False),
        ("0905123457", False),
        ("gửi vào số khác", False),
    ],
)
def test_a_typed_phone_that_fits_the_masked_one(typed: str, fits: bool) -> None:
    from bot.actions.otp_input import fits_masked_phone

    assert fits_masked_phone(typed, "090****456") is fits
    assert fits_masked_phone(typed, None) is False


async def test_the_customer_typing_the_registered_number_gets_the_code_there(service: Service) -> None:
    """ "sdt cua minh la 0905123456" at the channel question was told its number must be updated
    first (taken as another destination); it fits the registered 090****456: the code goes there."""
    from bot.actions.verification import ValidateVerificationForm

    code = service.codes_awaiting(1)[11]
    sender = stranger()
    events = await ActionShowDocuments().run(
        CollectingDispatcher(), make_tracker({"request_code": code}, sender_id=sender), {}
    )
    state = {"request_code": code, **slot_events(events)}
    phone = registered_phone(service, code)
    assert state["verify_sms"] == phone[:3] + "****" + phone[-3:]
    dispatcher = CollectingDispatcher()
    text = f"sdt cua minh la {phone}"
    result = await ValidateVerificationForm().validate_verify_channel(
        text, dispatcher, make_tracker(state, text=text, sender_id=sender), {}
    )
    assert responses(dispatcher) == ["utter_verify_code_sent"] and result["verification_id"]
    assert service.last_otp(phone)
    other = f"so cua vo toi {phone[:3]}1111{phone[-3:]}0"  # another number: still refused
    dispatcher = CollectingDispatcher()
    await ValidateVerificationForm().validate_verify_channel(
        other, dispatcher, make_tracker(state, text=other, sender_id=sender), {}
    )
    assert responses(dispatcher)[0] == "utter_contact_change_needed"


async def test_a_second_answer_that_is_no_channel_offers_a_person(service: Service) -> None:
    """ "Em chưa rõ anh/chị chọn mục nào" came back for every message of a customer who wanted out
    ("e chi muon xem tien do thoi ma"); the second time the question ends and a person is offered."""
    from bot.actions.verification import ValidateVerificationForm

    state = {"request_code": "PC05TK0000123", "verify_task": "documents", "verify_sms": "090****456"}
    form = ValidateVerificationForm()
    first = make_tracker(
        state, text="abc xyz", active_loop="verification_form", requested_slot="verify_channel"
    )
    first.events.insert(0, {"event": "active_loop", "name": "verification_form"})
    dispatcher = CollectingDispatcher()
    assert await form.validate_verify_channel("abc xyz", dispatcher, first, {}) == {"verify_channel": None}
    assert responses(dispatcher) == ["utter_choice_invalid"]
    second = make_tracker(
        state, text="e chi muon xem thoi ma", active_loop="verification_form", requested_slot="verify_channel"
    )
    second.events[:0] = [
        {"event": "active_loop", "name": "verification_form"},
        {"event": "bot", "text": "Em chưa rõ", "metadata": {"utter_action": "utter_choice_invalid"}},
        {"event": "bot", "text": "...", "metadata": {"utter_action": "utter_ask_verify_channel"}},
    ]
    dispatcher = CollectingDispatcher()
    result = await form.validate_verify_channel("e chi muon xem thoi ma", dispatcher, second, {})
    assert result == {"verify_channel": None, "verification_result": "aborted"}
    assert responses(dispatcher) == ["utter_offer_handoff"]
    # A failure of an earlier verification (before this form started) does not count.
    earlier = make_tracker(
        state, text="abc", active_loop="verification_form", requested_slot="verify_channel"
    )
    earlier.events[:0] = [
        {"event": "bot", "text": "Em chưa rõ", "metadata": {"utter_action": "utter_choice_invalid"}},
        {"event": "active_loop", "name": "verification_form"},
    ]
    dispatcher = CollectingDispatcher()
    await form.validate_verify_channel("abc", dispatcher, earlier, {})
    assert responses(dispatcher) == ["utter_choice_invalid"]
