"""Verifying that the chat user owns the request before documents, contacts, amendments and signing.

One tap where the platform allows it (Telegram's "share my phone number"; on Zalo the shared number
only picks where the code goes, as Zalo does not guarantee it is the account's own), else a one-time
code to the phone or e-mail registered with the request. The signing service keeps the verified pair
(channel + chat user, request) for 30 days; "hủy liên kết" revokes it.
"""

from __future__ import annotations

from typing import Any, cast

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.common import chat_channel, chat_user, find_request_code
from bot.actions.forms import CustomerFormValidation
from bot.actions.notify_offer import offer_notifications
from bot.actions.otp_input import (
    CHANNEL_LABELS,
    OTP_VERIFIED,
    SPENT_SLOT,
    code_is_spent,
    explain_code_refusal,
    explain_send_refusal,
    extract_otp,
    fits_masked_phone,
    parse_channel,
    utter_wait,
)
from bot.actions.signing_api import ApiError, Challenge, Channel, OtpFrozen, ServiceUnavailable, get_api
from common.erasure import FORGET_SLOT
from common.shared_contact import METADATA_KEY, SHARE_CONTACT_TEXT

# The form asks for the channel with `utter_ask_verify_channel` (domain.yml), whose variation and
# button titles come from these slots: a response, not a custom action, saves the action server a
# round trip each time the form asks again (after every small-talk or FAQ answer).
BUTTONS_SLOT = "verify_buttons"
MASKED_SLOTS = {"sms": "verify_sms", "email": "verify_email"}
MASKED_MAX = 72  # a button title is "Email: " + this, within the 80 characters chat buttons show
VERIFY_SLOTS = (
    "verify_channel",
    "verify_otp",
    "verification_id",
    "verification_result",
    BUTTONS_SLOT,
    *MASKED_SLOTS.values(),
    SPENT_SLOT,
)
VERIFIED = "verified"
ABORTED = "aborted"
# What to do once verified: the action that continues the customer's task.
TASK_ACTIONS = {
    "documents": "action_show_documents",
    "sign": "action_prepare_signing",
    "amend": "action_prepare_amendment",
    "notify": "action_notifications",
}
# After these tasks (or none) the notices are offered at once; signing and amendments offer them
# when they are done, so the offer does not cut into their questions.
OFFER_AFTER = (None, "documents")
ONE_TAP_CHANNELS = ("telegram", "zalo")


def reset_verification() -> list[EventType]:
    return [SlotSet(name, None) for name in VERIFY_SLOTS]


def shared_contact(tracker: Tracker) -> dict[str, Any] | None:
    """The phone a connector attached to this message (never from what the user typed)."""
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    contact = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    return contact if isinstance(contact, dict) else None


def not_understood_before(tracker: Tracker) -> bool:
    """Whether this verification already answered "em chưa rõ anh/chị chọn mục nào" once."""
    for event in reversed(tracker.events):
        if event.get("event") == "active_loop" and event.get("name") == "verification_form":
            return False  # the form's start: no earlier failure in this run
        if event.get("event") == "bot" and (event.get("metadata") or {}).get("utter_action") == (
            "utter_choice_invalid"
        ):
            return True
    return False


def ask_channel_slots(tracker: Tracker, contacts: dict[str, str]) -> list[EventType]:
    """The slots `utter_ask_verify_channel` is chosen and filled by: which buttons (`verify_buttons`:
    "tap_" when the channel can share the phone in one tap, then the contacts there are, as
    `sms`, `email` or `sms_email`) and the masked contacts shown on them."""
    kinds = "_".join(kind for kind in MASKED_SLOTS if contacts.get(kind))
    tap = "tap_" if chat_channel(tracker) in ONE_TAP_CHANNELS else ""
    masked = {slot: str(contacts.get(kind) or "")[:MASKED_MAX] or None for kind, slot in MASKED_SLOTS.items()}
    return [SlotSet(BUTTONS_SLOT, tap + kinds)] + [SlotSet(slot, value) for slot, value in masked.items()]


async def start_verification(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    code: str,
    task: str,
    refusal: ApiError | None = None,
) -> list[EventType]:
    """The service refused (not verified): explain, and run the verification form for `task`.

    `refusal`: the service's 403, which already carries the masked contacts (one call fewer)."""
    status: dict[str, Any]
    if refusal is not None and isinstance(refusal.data.get("contacts"), dict):
        status = {"verified": False, **refusal.data}
    else:
        try:
            status = dict(await get_api().verification_status(code, chat_user(tracker)))
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return []
        except ApiError:
            dispatcher.utter_message(response="utter_request_not_found", code=code)
            return []
    events: list[EventType] = reset_verification() + [SlotSet("verify_task", task)]
    if status.get("verified"):  # verified in the meantime (another device of the same chat)
        return events + [FollowupAction(TASK_ACTIONS.get(task, "action_listen"))]
    if status.get("otp_frozen"):
        dispatcher.utter_message(response="utter_otp_frozen")
        return []
    contacts = {k: v for k, v in (status.get("contacts") or {}).items() if v}
    if not contacts:
        dispatcher.utter_message(response="utter_verify_no_contact")
        return []
    dispatcher.utter_message(response="utter_verify_needed")
    return events + ask_channel_slots(tracker, contacts) + [FollowupAction("verification_form")]


def _sent(dispatcher: CollectingDispatcher, challenge: Challenge) -> dict[str, Any]:
    channel = str(challenge.get("channel", ""))
    dispatcher.utter_message(
        response="utter_verify_code_sent",
        channel=CHANNEL_LABELS.get(channel, channel),
        destination=challenge.get("destination_masked", ""),
    )
    return {"verify_channel": channel, "verification_id": challenge.get("challenge_id")}


async def _send_code(dispatcher: CollectingDispatcher, tracker: Tracker, channel: str) -> dict[str, Any]:
    code = str(tracker.get_slot("request_code"))
    # Only a code sent to sign names the drafts, and only it may confirm the signing that follows.
    purpose = "sign" if tracker.get_slot("verify_task") == "sign" else "view"
    try:
        challenge = await get_api().start_verification(
            code, cast(Channel, channel), chat_user(tracker), purpose
        )
    except ServiceUnavailable:
        dispatcher.utter_message(response="utter_service_unavailable")
        return {"verify_channel": None}
    except ApiError as err:
        if explain_send_refusal(dispatcher, err):
            return {"verify_channel": None, "verification_result": ABORTED}
        return {"verify_channel": None}
    return _sent(dispatcher, challenge)


async def use_shared_contact(
    dispatcher: CollectingDispatcher, tracker: Tracker, contact: dict[str, Any]
) -> dict[str, Any]:
    """A number shared in one tap: verified (Telegram, own and registered), a code sent to it (it
    matches but the platform does not vouch for it), or a polite refusal."""
    code = str(tracker.get_slot("request_code"))
    try:
        result = await get_api().verify_contact(
            code,
            chat_user(tracker),
            contact.get("phone") if isinstance(contact.get("phone"), str) else None,
            str(contact.get("source") or ""),
            contact.get("own_number") is True,
        )
    except ServiceUnavailable:
        dispatcher.utter_message(response="utter_service_unavailable")
        return {"verify_channel": None}
    except ApiError as err:
        dispatcher.utter_message(response="utter_service_error", reason=err.message or err.code)
        return {"verify_channel": None}
    if result.get("verified"):
        return {"verify_channel": "contact", "verify_otp": OTP_VERIFIED, "verification_result": VERIFIED}
    if result.get("reason") == "not_guaranteed":
        # Zalo does not vouch for the number typed in its form, and the service does not say whether
        # it matched (a stranger could guess the phone): the code goes to the registered phone.
        dispatcher.utter_message(response="utter_contact_code_needed")
        return await _send_code(dispatcher, tracker, "sms")
    if result.get("reason") == "not_own_number":
        dispatcher.utter_message(response="utter_contact_not_own")
    else:
        dispatcher.utter_message(response="utter_contact_mismatch")
    return {"verify_channel": None, "verification_id": None}


def answer_question(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
    """A frequent question asked instead of the answer ("số hotline là gì?" while the form asks how
    to send the code): answer it, and the form asks its question again. The FAQ intent stays in the
    verification slots' mappings because real answers are often classified as FAQ ("sđt", "gmail")."""
    intent = tracker.latest_message.get("intent") or {}
    key = intent.get("full_retrieval_intent_name")
    if intent.get("name") != "faq" or not isinstance(key, str) or not key.startswith("faq/"):
        return False
    dispatcher.utter_message(response=f"utter_{key}")
    return True


# Intents that leave the code question, whatever digits the message holds.
LEAVING_INTENTS = frozenset({"cancel", "deny", "human_handoff", "resend_otp"})


class ValidateVerificationForm(CustomerFormValidation):
    def name(self) -> str:
        return "validate_verification_form"

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        return [] if tracker.get_slot("verification_result") else domain_slots

    async def extract_verify_otp(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """A code inside a sentence the NLU reads as something else ("xin lỗi em đi nấu cơm, mã là
        875727 ạ" is out_of_scope, which the slot's mapping leaves out) is still the code asked for;
        a customer who leaves ("thôi", "gặp nhân viên", "gửi lại mã") is not held by it."""
        if (
            tracker.active_loop_name != "verification_form"
            or tracker.get_slot("requested_slot") != "verify_otp"
        ):
            return {}
        latest = tracker.latest_message or {}
        if (latest.get("intent") or {}).get("name") in LEAVING_INTENTS:
            return {}
        text = str(latest.get("text") or "")[:200]
        return {"verify_otp": text} if extract_otp(text) else {}

    async def validate_verify_channel(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        contact = shared_contact(tracker)
        if contact is not None:
            return await use_shared_contact(dispatcher, tracker, contact)
        if value in ("sms", "email") and tracker.get_slot("verification_id"):
            return {"verify_channel": value}  # a code already went there (prefilled when the form opened)
        text = str(value or "")[:200]
        other = find_request_code(text)
        if other and other != tracker.get_slot("request_code"):
            # "nhầm rồi, mã của tôi là …": the customer changed request; verify that one instead.
            return {"verify_channel": None, "verification_result": ABORTED, "lookup_code": other}
        if text.strip() == SHARE_CONTACT_TEXT:  # typed, or a channel that cannot share contacts
            dispatcher.utter_message(response="utter_contact_not_received")
            return {"verify_channel": None}
        choice = parse_channel(text)
        if choice is None and answer_question(dispatcher, tracker):
            return {"verify_channel": None}
        if choice == "elsewhere" and fits_masked_phone(text, tracker.get_slot(MASKED_SLOTS["sms"])):
            choice = "sms"  # the registered number typed out: send there
        if choice == "elsewhere":
            dispatcher.utter_message(response="utter_contact_change_needed")
            dispatcher.utter_message(response="utter_faq/change_contact")
            return {"verify_channel": None}
        if choice is None and not_understood_before(tracker):
            # A second answer that is no channel ("e chi muon xem tien do thoi ma"): stop asking and
            # offer a person, rather than repeat the same question to someone who wants out.
            dispatcher.utter_message(response="utter_offer_handoff")
            return {"verify_channel": None, "verification_result": ABORTED}
        if choice is None:
            dispatcher.utter_message(response="utter_choice_invalid")
            return {"verify_channel": None}
        return await _send_code(dispatcher, tracker, choice)

    async def validate_verify_otp(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        contact = shared_contact(tracker)
        if contact is not None:
            return {**await use_shared_contact(dispatcher, tracker, contact), "verify_otp": None}
        if value == OTP_VERIFIED:
            return {"verify_otp": OTP_VERIFIED}
        otp = extract_otp(str(value or "")[:200])
        if not otp:
            if not answer_question(dispatcher, tracker):
                dispatcher.utter_message(response="utter_otp_format")
            return {"verify_otp": None}
        challenge_id = tracker.get_slot("verification_id")
        if not challenge_id:
            return {"verify_otp": None, "verify_channel": None}
        try:
            await get_api().check_verification(str(challenge_id), otp, chat_user(tracker))
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return {"verify_otp": None}
        except ApiError as err:
            if explain_code_refusal(dispatcher, err):
                return {"verify_otp": None, "verification_result": ABORTED}
            return {"verify_otp": None, **({SPENT_SLOT: True} if code_is_spent(err) else {})}
        return {"verify_otp": OTP_VERIFIED, "verification_result": VERIFIED}


class ActionFinishVerification(Action):
    """After the form: say so and continue with what the customer asked for."""

    def name(self) -> str:
        return "action_finish_verification"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = reset_verification() + [SlotSet("verify_task", None)]
        if tracker.get_slot("verification_result") != VERIFIED:
            # Another request's code typed instead of a channel: look that one up, same task.
            return events + (
                [FollowupAction("action_find_request")] if tracker.get_slot("lookup_code") else []
            )
        dispatcher.utter_message(response="utter_verified")
        task = tracker.get_slot("verify_task")
        if task in OFFER_AFTER:
            events += offer_notifications(dispatcher, tracker)
        action = TASK_ACTIONS.get(str(task or ""))
        return events + ([FollowupAction(action)] if action else [])


async def resend_verification(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """'gửi lại mã' while verifying: resend (cooldown rules), or a new code when the old one is spent."""
    challenge_id = tracker.get_slot("verification_id")
    channel = tracker.get_slot("verify_channel")
    if not challenge_id and tracker.get_slot("requested_slot") == "verify_channel":
        # "sms nha", "gửi mã qua sms đi" read as a resend: it answers the question asked.
        choice = parse_channel(str((tracker.latest_message or {}).get("text") or "")[:200])
        if choice in ("sms", "email"):
            found = await _send_code(dispatcher, tracker, choice)
            return [SlotSet(k, v) for k, v in found.items()]
        return []  # the form asks its question again
    if not challenge_id or channel not in ("sms", "email"):
        dispatcher.utter_message(response="utter_no_signing_session")
        return []
    try:
        challenge = await get_api().resend_verification(str(challenge_id), chat_user(tracker))
    except ServiceUnavailable:
        dispatcher.utter_message(response="utter_service_unavailable")
        return []
    except OtpFrozen:
        dispatcher.utter_message(response="utter_otp_frozen")
        return [SlotSet("verification_result", ABORTED)]
    except ApiError as err:
        if err.status == 429:
            utter_wait(dispatcher, err)
            return []
        if err.status not in (404, 409, 410, 423):
            dispatcher.utter_message(response="utter_service_error", reason=err.message or err.code)
            return []
        found = await _send_code(dispatcher, tracker, str(channel))
        return [SlotSet(k, v) for k, v in found.items()] + [SlotSet(SPENT_SLOT, False)]
    return [SlotSet(k, v) for k, v in _sent(dispatcher, challenge).items()] + [SlotSet(SPENT_SLOT, False)]


class ActionVerifySharedContact(Action):
    """A phone shared outside the verification form (the keyboard stays on Telegram)."""

    def name(self) -> str:
        return "action_verify_shared_contact"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        contact = shared_contact(tracker)
        if contact is None:
            dispatcher.utter_message(response="utter_contact_not_received")
            return []
        if not tracker.get_slot("request_code"):
            dispatcher.utter_message(response="utter_contact_need_request")
            return []
        found = await use_shared_contact(dispatcher, tracker, contact)
        if found.get("verification_result") == VERIFIED:
            dispatcher.utter_message(response="utter_verified")
            dispatcher.utter_message(response="utter_request_next")
            return offer_notifications(dispatcher, tracker)
        if found.get("verification_id"):  # a code went to the registered phone: ask for it
            return [SlotSet(k, v) for k, v in found.items()] + [FollowupAction("verification_form")]
        return []


class ActionUnlink(Action):
    """'hủy liên kết': this chat is no longer verified for the current request."""

    def name(self) -> str:
        return "action_unlink"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        code = tracker.get_slot("request_code")
        if not code:
            dispatcher.utter_message(response="utter_unlink_no_request")
            return []
        try:
            revoked = await get_api().unlink(str(code), chat_user(tracker))
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return []
        except ApiError:
            revoked = 0
        dispatcher.utter_message(response="utter_unlinked" if revoked else "utter_not_linked")
        return []


class ActionDeleteMyData(Action):
    """'xóa dữ liệu của tôi', confirmed: unlink everywhere and erase this conversation's history."""

    def name(self) -> str:
        return "action_delete_my_data"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        try:
            await get_api().forget(chat_user(tracker), tracker.sender_id)
        except ServiceUnavailable:
            # Nothing erased yet: say so rather than pretend (the customer can ask again).
            dispatcher.utter_message(response="utter_service_unavailable")
            return []
        except ApiError:
            pass  # nothing to revoke at the service: the conversation is still erased below
        dispatcher.utter_message(response="utter_data_deleted")
        return [SlotSet(FORGET_SLOT, True)]
