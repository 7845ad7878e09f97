"""The notices in the conversation (issue 16): "nhận thông báo" needs a verified chat (else the
verification starts, then the subscription follows), "dừng thông báo" always works, and without a
request the bot asks for its code. Real signing service; tracker fixtures."""

from __future__ import annotations

from rasa_sdk.executor import CollectingDispatcher

from bot.actions.notifications import ActionNotifications
from bot.actions.verification import ValidateVerificationForm
from common.shared_contact import shared_contact
from tests.actions.conftest import Service, make_tracker, responses, slot_events
from tests.actions.test_verification import registered_phone, stranger

CODE = "PC05TK0000123"


async def run(slots: dict, intent: str, sender: str, channel: str = "telegram") -> tuple[list[str], list]:
    dispatcher = CollectingDispatcher()
    events = await ActionNotifications().run(
        dispatcher, make_tracker(slots, intent=intent, sender_id=sender, input_channel=channel), {}
    )
    return responses(dispatcher), events


async def test_without_a_request_the_bot_asks_which_one() -> None:
    said, _ = await run({}, "notifications_on", stranger())
    assert said == ["utter_notifications_need_request"]


async def test_a_stranger_who_asks_for_notices_must_verify_first(service: Service) -> None:
    said, events = await run({"request_code": CODE}, "notifications_on", stranger())
    assert said == ["utter_verify_needed"]
    slots = slot_events(events)
    assert slots["verify_task"] == "notify" and slots["notify_offered"] == [CODE]
    assert events[-1] == {"event": "followup", "name": "verification_form", "timestamp": None}


async def test_a_verified_customer_turns_notices_on_and_off(service: Service) -> None:
    sender = f"telegram:{stranger()}"
    phone = "+84" + registered_phone(service, CODE)[1:]
    tracker = make_tracker(
        {"request_code": CODE},
        text="/share_contact",
        sender_id=sender,
        input_channel="telegram",
        metadata=shared_contact(phone, "telegram_contact", own_number=True),
    )
    result = await ValidateVerificationForm().validate_verify_channel(
        "/share_contact", CollectingDispatcher(), tracker, {}
    )
    assert result["verification_result"] == "verified"
    slots = {"request_code": CODE}
    assert (await run(slots, "notifications_off", sender))[0] == ["utter_notifications_declined"]
    assert (await run(slots, "notifications_on", sender))[0] == ["utter_notifications_on"]
    assert (await run(slots, "notifications_off", sender))[0] == ["utter_notifications_off"]
    assert (await run(slots, "notifications_on", sender))[0] == ["utter_notifications_on"]
    assert (await run(slots, "notifications_on", sender))[0] == ["utter_notifications_already_on"]
    # After verifying for it, the latest message is the code, not the intent: still "on".
    assert (await run(slots, "inform", sender))[0] == ["utter_notifications_already_on"]
    assert (await run(slots, "notifications_off", sender))[0] == ["utter_notifications_off"]


async def test_the_stop_button_of_a_notice_stops_that_request(service: Service) -> None:
    """The chat moved on to another request; "Dừng thông báo" under an older notice names its own."""
    sender = f"telegram:{stranger()}"
    said, events = await run(
        {"request_code": "PC05HA0000789", "lookup_code": CODE}, "notifications_off", sender
    )
    assert said == ["utter_notifications_declined"]
    assert slot_events(events)["lookup_code"] is None
    assert "request_code" not in slot_events(events)  # the chat stays on its current request


async def test_a_web_chat_hears_its_notices_come_by_sms(service: Service) -> None:
    from bot.actions.signing_api import ChatUser, get_api

    sender = stranger()
    who = ChatUser("rest", sender)
    challenge = await get_api().start_verification(CODE, "sms", who)
    await get_api().check_verification(str(challenge["challenge_id"]), service.last_otp(), who)
    said, _ = await run({"request_code": CODE}, "notifications_on", sender, "rest")
    assert said == ["utter_notifications_on_sms"]  # a web chat cannot be written to first


async def test_codes_named_for_notices_count_as_code_lookups(service: Service) -> None:
    """ "nhận thông báo <code>" answers whether a code exists (and its masked contacts): a sweep of
    codes that way is stopped by the conversation's code-lookup limit, as the status lookup is."""
    sender = stranger()
    said: list[str] = []
    for n in range(12):  # the service allows 10 misses per conversation and hour
        made_up = f"PC05TK99{n:05d}"
        said += (await run({"lookup_code": made_up}, "notifications_on", sender))[0]
    assert said[:10] == ["utter_service_error"] * 10, said  # "Không tìm thấy yêu cầu với mã này."
    assert said[10:] == ["utter_too_many_code_lookups"] * 2, said
    # A real code is refused too now, before its masked contacts are shown.
    assert (await run({"lookup_code": CODE}, "notifications_on", sender))[0] == [
        "utter_too_many_code_lookups"
    ]
    # Another conversation is not affected.
    assert (await run({"lookup_code": CODE}, "notifications_on", stranger()))[0] == ["utter_verify_needed"]


async def test_stopping_notices_of_the_current_request_shows_its_code_masked(service: Service) -> None:
    """ "dừng thông báo" needs no verification; the current request may have been found by name, so
    its code is not handed to the chat. A code the customer named (a notice's button) is shown."""
    sender = stranger()
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"request_code": CODE}, intent="notifications_off", sender_id=sender)
    await ActionNotifications().run(dispatcher, tracker, {})
    assert [m["response"] for m in dispatcher.messages] == ["utter_notifications_declined"]
    assert dispatcher.messages[0]["request_code"] == "PC05TK****123"
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"lookup_code": CODE}, intent="notifications_off", sender_id=sender)
    await ActionNotifications().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["request_code"] == CODE
