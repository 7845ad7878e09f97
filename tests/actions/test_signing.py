"""OTP signing actions against a real signing service (codes read from its outbox)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.otp_input import (
    SPENT_SLOT,
    AskForCode,
    AskForVerificationCode,
    code_is_spent,
    explain_code_refusal,
)
from bot.actions.signing import (
    CERTIFICATE_TITLE,
    OTP_VERIFIED,
    ActionAskSignChannel,
    ActionAskSignConsent,
    ActionFinishSigning,
    ActionPrepareSigning,
    ActionResendOtp,
    ValidateSigningForm,
    extract_otp,
    parse_channel,
)
from bot.actions.signing_api import ApiError
from tests.actions.conftest import Service, make_tracker, responses, slot_events

# These tests play the real customer, verified for the demo requests (tests/actions/conftest.py).
pytestmark = pytest.mark.usefixtures("verified_sender")

# The form validator reads the form's required slots from the real domain.
DOMAIN_FOR_FORMS: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parents[2] / "domain.yml").read_text("utf-8")
)


@pytest.mark.parametrize(
    ("typed", "otp"),
    [
        ("123456", "123456"),
        ("mã là 123 456 nhé", "123456"),
        ("12-34-56", "123456"),
        ("otp: 908172.", "908172"),
    ],
)
def test_otp_is_found_inside_sentences(typed: str, otp: str) -> None:
    assert extract_otp(typed) == otp


@pytest.mark.parametrize("typed", ["12345", "1234567", "0905123456", "abc", "PC05TK0000123"])
def test_no_otp_in_other_numbers(typed: str) -> None:
    assert extract_otp(typed) is None


@pytest.mark.parametrize(
    ("typed", "channel"),
    [
        ("sms", "sms"),
        ("SMS: 090****456", "sms"),
        ("qua tin nhắn", "sms"),
        ("email", "email"),
        ("Email: a*@example.com", "email"),
        ("gửi qua mail", "email"),
        ("gửi vào số khác", "elsewhere"),
        ("gửi qua zalo", "elsewhere"),
        ("số của vợ tôi 0912345678", "elsewhere"),
        ("hmm", None),
        ("qua số nhé", "sms"),
        ("thư", "email"),
        # A question or a longer message that merely contains "số" / "thư" is not a choice.
        ("số hotline là gì", None),
        ("cho tôi thử lại lần nữa nha", None),
    ],
)
def test_channel_answers(typed: str, channel: str | None) -> None:
    assert parse_channel(typed) == channel


async def prepare(code: str) -> tuple[CollectingDispatcher, dict[str, Any], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await ActionPrepareSigning().run(dispatcher, make_tracker({"request_code": code}), {})
    return dispatcher, slot_events(events), events


async def test_prepare_without_a_request_runs_the_lookup_first() -> None:
    _, slots, events = await prepare("")
    assert slots["pending_task"] == "sign"
    assert events[-1] == {"event": "followup", "name": "find_request_form", "timestamp": None}


async def test_no_documents_and_already_signed() -> None:
    dispatcher, _, events = await prepare("PC05TK0000456")
    assert responses(dispatcher) == ["utter_no_documents"]
    assert not any(e.get("event") == "followup" for e in events)
    dispatcher, _, _ = await prepare("PC04HC0004567")
    assert responses(dispatcher) == ["utter_all_signed"]
    assert all("/file?variant=signed" in b["url"] for b in dispatcher.messages[0]["buttons"])


async def test_batch_signing_end_to_end(service: Service) -> None:
    code = service.codes_awaiting(2)[0]
    _, slots, events = await prepare(code)
    assert events[-1]["name"] == "signing_form"
    choices = slots["doc_choices"]
    assert len(choices) == 2 and "sign_selection" not in slots or slots["sign_selection"] is None
    form = ValidateSigningForm()
    state: dict[str, Any] = {"request_code": code, "doc_choices": choices}

    result = await form.validate_sign_selection("tất cả", CollectingDispatcher(), make_tracker(state), {})
    assert result["sign_selection"] == [c["id"] for c in choices]
    state.update(result)

    dispatcher = CollectingDispatcher()
    await ActionAskSignConsent().run(dispatcher, make_tracker(state), {})
    assert responses(dispatcher) == ["utter_sign_review", "utter_ask_sign_consent"]
    assert len(dispatcher.messages[0]["buttons"]) == 2
    state["sign_consent"] = True

    dispatcher = CollectingDispatcher()
    await ActionAskSignChannel().run(dispatcher, make_tracker(state), {})
    assert dispatcher.messages[0]["buttons"][0]["payload"] == "sms"
    assert "****" in dispatcher.messages[0]["buttons"][0]["title"]

    dispatcher = CollectingDispatcher()
    result = await form.validate_sign_channel("sms", dispatcher, make_tracker(state), {})
    assert result["sign_channel"] == "sms" and result["signing_session_id"]
    assert responses(dispatcher) == ["utter_otp_sent"]
    assert "*" in dispatcher.messages[0]["destination"]
    state.update(result)
    otp = service.last_otp()

    wrong = "000000" if otp != "000000" else "111111"
    dispatcher = CollectingDispatcher()
    result = await form.validate_otp_code(f"mã là {wrong}", dispatcher, make_tracker(state), {})
    assert result == {"otp_code": None}
    assert responses(dispatcher) == ["utter_otp_wrong"]
    assert int(dispatcher.messages[0]["attempts_left"]) >= 1

    dispatcher = CollectingDispatcher()
    events = await ActionResendOtp().run(dispatcher, make_tracker(state), {})
    assert responses(dispatcher) == ["utter_resend_wait"]
    assert 0 < int(dispatcher.messages[0]["seconds"]) <= 60
    assert events == []

    dispatcher = CollectingDispatcher()
    spaced = f"{otp[:3]} {otp[3:]}"
    result = await form.validate_otp_code(f"đây ạ {spaced}", dispatcher, make_tracker(state), {})
    assert result["otp_code"] == OTP_VERIFIED  # the code itself is not kept in the tracker
    assert result["signing_result"]["status"] == "signed"
    state.update(result)
    assert (
        await form.required_slots(["sign_selection"], CollectingDispatcher(), make_tracker(state), {}) == []
    )

    dispatcher = CollectingDispatcher()
    events = await ActionFinishSigning().run(dispatcher, make_tracker(state), {})
    assert responses(dispatcher) == ["utter_signed", "utter_signed_emailed", "utter_offer_notifications"]
    assert dispatcher.messages[0]["count"] == 2
    *files, certificate = dispatcher.messages[0]["buttons"]
    assert len(files) == 2 and all("variant=signed" in b["url"] for b in files)
    assert certificate["title"] == CERTIFICATE_TITLE and "/certificate/file?" in certificate["url"]
    assert dispatcher.messages[0]["check_url"].endswith("/verify")
    assert "@" in dispatcher.messages[1]["email"] and "*" in dispatcher.messages[1]["email"]  # masked
    assert slot_events(events)["signing_session_id"] is None

    # Signed now: asking again says so, with the signed files and their one certificate again.
    dispatcher, _, _ = await prepare(code)
    assert responses(dispatcher) == ["utter_all_signed"]
    again = dispatcher.messages[0]["buttons"]
    assert [b["title"] for b in again].count(CERTIFICATE_TITLE) == 1
    assert again[-1]["url"].split("?")[0] == certificate["url"].split("?")[0]


async def test_single_document_is_preselected(service: Service) -> None:
    code = service.codes_awaiting(1)[0]
    _, slots, _ = await prepare(code)
    assert slots["sign_selection"] == [slots["doc_choices"][0]["id"]]


async def test_code_elsewhere_is_refused_with_the_reason(service: Service) -> None:
    code = service.codes_awaiting(1)[1]
    _, slots, _ = await prepare(code)
    dispatcher = CollectingDispatcher()
    state = {"request_code": code, **slots, "sign_consent": True}
    result = await ValidateSigningForm().validate_sign_channel(
        "gửi vào số khác", dispatcher, make_tracker(state), {}
    )
    assert result == {"sign_channel": None}
    assert responses(dispatcher) == ["utter_contact_change_needed", "utter_faq/change_contact"]


async def test_locked_session_gets_a_new_code_on_resend(service: Service) -> None:
    code = service.codes_awaiting(1)[2]
    _, slots, _ = await prepare(code)
    state: dict[str, Any] = {"request_code": code, **slots, "sign_consent": True}
    form = ValidateSigningForm()
    state.update(await form.validate_sign_channel("sms", CollectingDispatcher(), make_tracker(state), {}))
    otp = service.last_otp()
    wrong = "000000" if otp != "000000" else "111111"
    seen: list[str] = []
    for _ in range(6):
        dispatcher = CollectingDispatcher()
        await form.validate_otp_code(wrong, dispatcher, make_tracker(state), {})
        seen += responses(dispatcher)
    assert seen[-1] == "utter_otp_locked"
    old_session = state["signing_session_id"]
    dispatcher = CollectingDispatcher()
    events = await ActionResendOtp().run(dispatcher, make_tracker(state), {})
    assert responses(dispatcher) == ["utter_otp_sent"]
    new_session = slot_events(events)["signing_session_id"]
    assert new_session and new_session != old_session
    state["signing_session_id"] = new_session
    result = await form.validate_otp_code(service.last_otp(), CollectingDispatcher(), make_tracker(state), {})
    assert result["signing_result"]["status"] == "signed"


async def test_resend_without_session() -> None:
    dispatcher = CollectingDispatcher()
    await ActionResendOtp().run(dispatcher, make_tracker({}), {})
    assert responses(dispatcher) == ["utter_no_signing_session"]


async def test_bad_otp_format_does_not_call_the_service() -> None:
    dispatcher = CollectingDispatcher()
    result = await ValidateSigningForm().validate_otp_code("12345", dispatcher, make_tracker({}), {})
    assert result == {"otp_code": None}
    assert responses(dispatcher) == ["utter_otp_format"]


async def test_preselected_document_passes_validation(service: Service) -> None:
    code = service.codes_awaiting(1)[3]
    _, slots, _ = await prepare(code)
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"request_code": code, **slots})
    result = await ValidateSigningForm().validate_sign_selection(
        slots["sign_selection"], dispatcher, tracker, {}
    )
    assert result == {"sign_selection": slots["sign_selection"]}
    assert dispatcher.messages == []


async def test_code_in_the_same_message_is_looked_up_then_signing_continues() -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        {"lookup_code": "PC05TK0000456"}, text="ký hồ sơ PC05TK0000456", intent="sign_documents"
    )
    events = await ActionPrepareSigning().run(dispatcher, tracker, {})
    assert responses(dispatcher)[0] == "utter_request_status"
    assert slot_events(events)["request_code"] == "PC05TK0000456"
    assert events[-1] == {"event": "followup", "name": "action_prepare_signing", "timestamp": None}


async def test_form_opening_after_prepare_says_nothing_about_cleared_slots() -> None:
    """The reset slots that precede the form's activation are not answers to complain about."""
    _, _, prepared = await prepare("PC05TK0000123")
    tracker = make_tracker({"request_code": "PC05TK0000123"}, text="ký hợp đồng", intent="sign_documents")
    tracker.events.append({"event": "action", "name": "action_prepare_signing"})
    tracker.events.extend(e for e in prepared if e.get("event") == "slot")
    tracker.events.append({"event": "action", "name": "signing_form"})
    tracker.events.append({"event": "active_loop", "name": "signing_form"})
    for e in prepared:
        if e.get("event") == "slot":
            tracker.slots[e["name"]] = e["value"]
    # what Rasa's FormAction sends on activation: the trailing slot candidates
    tracker.events.extend(
        {"event": "slot", "name": n, "value": None} for n in ("sign_selection", "sign_channel", "otp_code")
    )
    dispatcher = CollectingDispatcher()
    await ValidateSigningForm().run(dispatcher, tracker, DOMAIN_FOR_FORMS)
    assert responses(dispatcher) == []


async def test_a_typed_answer_is_still_validated() -> None:
    _, _, prepared = await prepare("PC05TK0000123")
    slots = {e["name"]: e["value"] for e in prepared if e.get("event") == "slot"}
    tracker = make_tracker(
        {**slots, "request_code": "PC05TK0000123"},
        text="cái thứ chín",
        active_loop="signing_form",
        requested_slot="sign_selection",
    )
    tracker.events.append({"event": "slot", "name": "sign_selection", "value": "cái thứ chín"})
    dispatcher = CollectingDispatcher()
    await ValidateSigningForm().run(dispatcher, tracker, DOMAIN_FOR_FORMS)
    assert responses(dispatcher) == ["utter_choice_invalid"]


@pytest.mark.parametrize("action", [AskForCode(), AskForVerificationCode()])
async def test_a_spent_code_is_not_asked_for_again_until_a_new_one_is_sent(action: AskForCode) -> None:
    asked = CollectingDispatcher()
    await action.run(asked, make_tracker({SPENT_SLOT: False}), {})
    assert responses(asked) == [action.response]
    quiet = CollectingDispatcher()
    await action.run(quiet, make_tracker({SPENT_SLOT: True}), {})
    assert quiet.messages == []  # the locked/expired message already said to ask for a new code
    assert code_is_spent(ApiError(423, "session_locked", ""))
    assert code_is_spent(ApiError(410, "otp_expired", ""))
    assert not code_is_spent(ApiError(400, "wrong_otp", ""))


def test_a_code_replaced_by_a_resend_is_called_replaced_and_the_form_asks_on() -> None:
    dispatcher = CollectingDispatcher()
    ends = explain_code_refusal(dispatcher, ApiError(400, "otp_replaced", ""))
    assert responses(dispatcher) == ["utter_otp_replaced"] and ends is False
    assert not code_is_spent(ApiError(400, "otp_replaced", ""))
    domain = yaml.safe_load(Path("domain.yml").read_text(encoding="utf-8"))
    text = domain["responses"]["utter_otp_replaced"][0]["text"]
    assert "mã mới" in text and "sai" in text


@pytest.mark.parametrize(
    ("typed", "picked"),
    [
        ("ky ca 2 giay to", [0, 1]),
        ("ký hết luôn em", [0, 1]),
        ("ký hợp đồng", None),  # the signing step's name: all that is to sign, asked as before
        ("ký 2 giấy tờ", None),  # a count, not the second document
        ("ký cả 3 giấy tờ", None),  # there are two: say nothing rather than guess
        ("tôi muốn ký", None),
    ],
)
async def test_documents_named_in_the_request_to_sign_are_not_asked_for_again(
    service: Service, typed: str, picked: list[int] | None
) -> None:
    code = service.codes_awaiting(2)[0]
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"request_code": code}, text=typed, intent="sign_documents")
    slots = slot_events(await ActionPrepareSigning().run(dispatcher, tracker, {}))
    choices = slots["doc_choices"]
    expected = None if picked is None else [choices[i]["id"] for i in picked]
    assert slots.get("sign_selection") == expected


@pytest.mark.parametrize(
    ("typed", "intent", "consents"),
    [
        ("được rồi tui đồng ý ký", "sign_documents", True),
        ("dong y ky luon", "sign_documents", True),
        ("em đồng ý", "inform", True),
        ("không đồng ý đâu", "sign_documents", False),
        ("chưa đồng ý, để tôi đọc lại", "inform", False),
        ("ko dong y", "deny", False),
        ("đồng ý nhưng sửa lại tên giúp", "request_amendment", False),
        ("ký đi", "sign_documents", False),  # no words of the consent statement
        ("đồng ý", "affirm", False),  # affirm: the slot's own mapping takes it, not this
    ],
)
async def test_consent_in_words_counts_whatever_the_intent(typed: str, intent: str, consents: bool) -> None:
    tracker = make_tracker(
        {"sign_selection": [1]},
        text=typed,
        intent=intent,
        active_loop="signing_form",
        requested_slot="sign_consent",
    )
    extracted = await ValidateSigningForm().extract_sign_consent(CollectingDispatcher(), tracker, {})
    assert extracted == ({"sign_consent": True} if consents else {})
    elsewhere = make_tracker(
        {}, text=typed, intent=intent, active_loop="signing_form", requested_slot="sign_channel"
    )
    assert await ValidateSigningForm().extract_sign_consent(CollectingDispatcher(), elsewhere, {}) == {}
