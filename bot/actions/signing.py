"""OTP signing: choose documents, consent, pick SMS or e-mail, enter the code, get signed PDFs."""

from __future__ import annotations

import re
from typing import Any, cast

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.common import (
    chat_user,
    choice_button,
    chosen_in_request,
    link_button,
    numbered,
    parse_choices,
)
from bot.actions.document_list import CERTIFICATE_TITLE, SIGNED_MARK, certificate_buttons
from bot.actions.documents import documents_of_current_request
from bot.actions.forms import CustomerFormValidation
from bot.actions.notify_offer import offer_notifications
from bot.actions.otp_input import (
    ABORTED,
    OTP_VERIFIED,
    SPENT_SLOT,
    code_is_spent,
    explain_code_refusal,
    explain_send_refusal,
    extract_otp,
    parse_channel,
    utter_sent,
    utter_wait,
)
from bot.actions.signing_api import ApiError, Channel, NotVerified, OtpFrozen, ServiceUnavailable, get_api
from bot.actions.verification import resend_verification
from bot.components.normalizer import fold_text

SIGNING_SLOTS = (
    SPENT_SLOT,
    "doc_choices",
    "sign_selection",
    "sign_consent",
    "sign_channel",
    "otp_code",
    "signing_session_id",
    "signing_channel_used",
    "signing_result",
)


def reset_signing() -> list[EventType]:
    return [SlotSet(name, None) for name in SIGNING_SLOTS]


def selected_documents(tracker: Tracker) -> list[dict[str, Any]]:
    choices = tracker.get_slot("doc_choices") or []
    ids = {int(i) for i in tracker.get_slot("sign_selection") or []}
    return [c for c in choices if int(c["id"]) in ids]


class ActionPrepareSigning(Action):
    """`sign_documents`: documents awaiting signature of the current request, then the form."""

    def name(self) -> str:
        return "action_prepare_signing"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        found = await documents_of_current_request(dispatcher, tracker, "sign")
        if isinstance(found, list):
            return found
        code, docs = found
        awaiting = [d for d in docs if d.get("status") == "awaiting_signature"]
        if not awaiting:
            signed = [d for d in docs if d.get("signed_url")]
            if signed:
                buttons = [
                    link_button(f"{SIGNED_MARK} {d.get('title', '')}", str(d["signed_url"])) for d in signed
                ] + certificate_buttons(signed)
                dispatcher.utter_message(response="utter_all_signed", code=code, buttons=buttons)
            elif docs:
                dispatcher.utter_message(response="utter_no_documents_to_sign", code=code)
            else:
                dispatcher.utter_message(response="utter_no_documents", code=code)
            return reset_signing()
        choices = [
            {"id": d["id"], "title": d.get("title", ""), "original_url": d.get("original_url")}
            for d in awaiting
        ]
        events: list[EventType] = reset_signing() + [SlotSet("doc_choices", choices)]
        latest = tracker.latest_message or {}
        if len(choices) == 1:
            events.append(SlotSet("sign_selection", [choices[0]["id"]]))
        elif (latest.get("intent") or {}).get("name") == "sign_documents":
            # "ký cả 3 giấy tờ": the choice was in the request; the consent step lists it again.
            text = str(latest.get("text") or "")[:300]
            named = chosen_in_request(text, [str(c["title"]) for c in choices])
            if named:
                events.append(SlotSet("sign_selection", [choices[i]["id"] for i in named]))
        return events + [FollowupAction("signing_form")]


class ActionAskSignSelection(Action):
    def name(self) -> str:
        return "action_ask_sign_selection"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        titles = [c["title"] for c in tracker.get_slot("doc_choices") or []]
        buttons = [choice_button(t, str(i)) for i, t in enumerate(titles, start=1)]
        dispatcher.utter_message(
            response="utter_choose_sign_documents",
            count=len(titles),
            documents=numbered(titles),
            buttons=buttons,
        )
        return []


class ActionAskSignConsent(Action):
    """Shows the drafts (links) and asks for the consent statement."""

    def name(self) -> str:
        return "action_ask_sign_consent"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        docs = selected_documents(tracker)
        buttons = [link_button(f"📄 {d['title']}", d["original_url"]) for d in docs if d.get("original_url")]
        dispatcher.utter_message(
            response="utter_sign_review", documents=numbered([d["title"] for d in docs]), buttons=buttons
        )
        dispatcher.utter_message(response="utter_ask_sign_consent")
        return []


class ActionAskSignChannel(Action):
    """Offers SMS and/or e-mail, showing the registered contacts masked."""

    def name(self) -> str:
        return "action_ask_sign_channel"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        try:
            contacts = await get_api().contacts(str(tracker.get_slot("request_code")), chat_user(tracker))
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return []
        except ApiError:
            contacts = {"sms": None, "email": None}
        buttons = []
        if contacts.get("sms"):
            buttons.append(choice_button(f"SMS: {contacts['sms']}", "sms"))
        if contacts.get("email"):
            buttons.append(choice_button(f"Email: {contacts['email']}", "email"))
        if not buttons:
            dispatcher.utter_message(response="utter_no_contact")
            return []
        dispatcher.utter_message(response="utter_choose_otp_channel", buttons=buttons)
        return []


# "được rồi tui đồng ý ký" at the consent question is read as sign_documents, not affirm: the
# words of the consent statement itself still consent; "không đồng ý", "chưa đồng ý" never do.
_AGREE = re.compile(r"\bdong y\b")
_NOT_AGREE = re.compile(r"\b(khong|ko|k|chua|chang|cha|hong|hok|hem)\s+(\w+\s+)?dong y\b")
_NOT_CONSENTING_INTENTS = frozenset({"cancel", "deny", "human_handoff", "request_amendment"})


class ValidateSigningForm(CustomerFormValidation):
    def name(self) -> str:
        return "validate_signing_form"

    async def extract_sign_consent(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if tracker.active_loop_name != "signing_form" or tracker.get_slot("requested_slot") != "sign_consent":
            return {}
        latest = tracker.latest_message or {}
        intent = (latest.get("intent") or {}).get("name")
        if intent == "affirm" or intent in _NOT_CONSENTING_INTENTS:
            return {}  # the slot's own mapping, or no consent
        folded = fold_text(str(latest.get("text") or "")[:300])
        return {"sign_consent": True} if _AGREE.search(folded) and not _NOT_AGREE.search(folded) else {}

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        # Signed or aborted: the form is over (action_finish_signing reports).
        return [] if tracker.get_slot("signing_result") else domain_slots

    async def validate_sign_selection(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        choices = tracker.get_slot("doc_choices") or []
        ids = {int(c["id"]) for c in choices}
        if isinstance(value, list) and value and all(isinstance(v, int) and v in ids for v in value):
            return {"sign_selection": value}  # pre-selected by action_prepare_signing (one document)
        if isinstance(value, list):
            value = " ".join(str(v) for v in value)
        picked = parse_choices(str(value or ""), [c["title"] for c in choices], allow_many=True)
        if not picked:
            dispatcher.utter_message(response="utter_choice_invalid")
            return {"sign_selection": None}
        return {"sign_selection": [choices[i]["id"] for i in picked]}

    async def validate_sign_consent(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if not value:
            return {"sign_consent": None}
        # Verified by a code minutes ago in this chat: that code confirms this signing (one code, not
        # two; docs/security.md). Otherwise the service answers 409 and the form asks for a new code.
        ids = [int(i) for i in tracker.get_slot("sign_selection") or []]
        try:
            result = await get_api().start_signing(
                str(tracker.get_slot("request_code")), ids, "sms", chat_user(tracker), with_verification=True
            )
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return {"sign_consent": None}
        except OtpFrozen:
            dispatcher.utter_message(response="utter_otp_frozen")
            return {"sign_consent": True, "signing_result": ABORTED}
        except NotVerified:
            dispatcher.utter_message(response="utter_verification_lapsed")
            return {"sign_consent": True, "signing_result": ABORTED}
        except ApiError as err:
            if err.code == "verification_not_recent":
                return {"sign_consent": True}
            dispatcher.utter_message(response="utter_service_error", reason=err.message or err.code)
            return {"sign_consent": True, "signing_result": ABORTED}
        if result.get("status") == "signed":
            return {"sign_consent": True, "otp_code": OTP_VERIFIED, "signing_result": dict(result)}
        return {"sign_consent": True}

    async def validate_sign_channel(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        choice = parse_channel(str(value or "")[:200])
        if choice == "elsewhere":
            dispatcher.utter_message(response="utter_contact_change_needed")
            dispatcher.utter_message(response="utter_faq/change_contact")
            return {"sign_channel": None}
        if choice is None:
            dispatcher.utter_message(response="utter_choice_invalid")
            return {"sign_channel": None}
        ids = [int(i) for i in tracker.get_slot("sign_selection") or []]
        try:
            session = await get_api().start_signing(
                str(tracker.get_slot("request_code")), ids, cast(Channel, choice), chat_user(tracker)
            )
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return {"sign_channel": None}
        except ApiError as err:
            if explain_send_refusal(dispatcher, err):
                return {"sign_channel": None, "signing_result": ABORTED}
            return {"sign_channel": None}
        utter_sent(dispatcher, session)
        return {
            "sign_channel": choice,
            "signing_channel_used": choice,
            "signing_session_id": session.get("session_id"),
        }

    async def validate_otp_code(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        otp = extract_otp(str(value or "")[:200])
        if not otp:
            dispatcher.utter_message(response="utter_otp_format")
            return {"otp_code": None}
        session_id = tracker.get_slot("signing_session_id")
        if not session_id:
            dispatcher.utter_message(response="utter_no_signing_session")
            return {"otp_code": None, "signing_result": ABORTED}
        try:
            result = await get_api().verify(str(session_id), otp)
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return {"otp_code": None}
        except ApiError as err:
            if explain_code_refusal(dispatcher, err):
                return {"otp_code": None, "signing_result": ABORTED}
            return {"otp_code": None, **({SPENT_SLOT: True} if code_is_spent(err) else {})}
        return {"otp_code": OTP_VERIFIED, "signing_result": dict(result)}


class ActionResendOtp(Action):
    """'gửi lại mã': resend within the cooldown rules; a locked or expired session gets a new one."""

    def name(self) -> str:
        return "action_resend_otp"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if tracker.active_loop_name == "verification_form":
            return await resend_verification(dispatcher, tracker)
        session_id = tracker.get_slot("signing_session_id")
        if not session_id:
            dispatcher.utter_message(response="utter_no_signing_session")
            return []
        api = get_api()
        try:
            session = await api.resend(str(session_id))
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return []
        except ApiError as err:
            if err.status == 429:
                utter_wait(dispatcher, err)
                return []
            if err.status not in (409, 410, 423):
                dispatcher.utter_message(response="utter_service_error", reason=err.message or err.code)
                return []
            # Locked or finished without signing: start a new session for the same documents.
            try:
                session = await api.start_signing(
                    str(tracker.get_slot("request_code")),
                    [int(i) for i in tracker.get_slot("sign_selection") or []],
                    cast(Channel, tracker.get_slot("signing_channel_used") or "sms"),
                    chat_user(tracker),
                )
            except ServiceUnavailable:
                dispatcher.utter_message(response="utter_service_unavailable")
                return []
            except ApiError as err2:
                if err2.status == 429:
                    utter_wait(dispatcher, err2)
                else:
                    dispatcher.utter_message(response="utter_service_error", reason=err2.message or err2.code)
                return []
        utter_sent(dispatcher, session)
        return [SlotSet("signing_session_id", session.get("session_id")), SlotSet(SPENT_SLOT, False)]


class ActionFinishSigning(Action):
    """After the form: links to the signed PDFs (or nothing if the form was aborted)."""

    def name(self) -> str:
        return "action_finish_signing"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        result = tracker.get_slot("signing_result") or {}
        if result.get("status") == "signed":
            docs = result.get("documents") or []
            buttons = [
                link_button(f"{SIGNED_MARK} {d.get('title', '')}", str(d["signed_url"]))
                for d in docs
                if d.get("signed_url")
            ]
            certificate = result.get("certificate_url")
            if certificate:
                buttons.append(link_button(CERTIFICATE_TITLE, str(certificate)))
            dispatcher.utter_message(
                response="utter_signed",
                count=len(docs),
                check_url=str(result.get("check_url") or ""),
                buttons=buttons,
            )
            if result.get("emailed_to"):
                dispatcher.utter_message(response="utter_signed_emailed", email=str(result["emailed_to"]))
            return reset_signing() + offer_notifications(dispatcher, tracker)
        return reset_signing()
