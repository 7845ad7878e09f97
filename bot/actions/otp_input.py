"""What the customer types when a one-time code is involved: the code, the channel, and the waits."""

from __future__ import annotations

import math
import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.signing_api import ApiError
from bot.components.normalizer import fold_text
from common.personal_text import OTP_IN_TEXT  # six digits, maybe in groups: one definition
from common.phones import normalize_phone

OTP_VERIFIED = "verified"  # what the slot keeps instead of the code
_SMS_WORDS = re.compile(r"\b(sms|tin nhan|nhan tin|dien thoai|so dien thoai|sdt|phone)\b")
_EMAIL_WORDS = re.compile(r"\b(e ?mail|gmail|mail|thu dien tu)\b")
# "số" / "thư" alone answer the question ("qua số", "thư nhé"), but in a longer message they are just
# common words ("số hotline là gì" is a question, not a choice of SMS): short replies only.
_SHORT_REPLY_WORDS = 3
_SMS_SHORT = re.compile(r"\bso\b")
_EMAIL_SHORT = re.compile(r"\bthu\b")
# The customer wants the code somewhere other than the registered contact.
_ELSEWHERE = re.compile(
    r"\b(khac|moi|zalo|doi so|doi email|so cua (vo|chong|con|em|anh|chi)|nguoi khac)\b|@|\d{9,}"
)
CHANNEL_LABELS: dict[str, str] = {"sms": "SMS", "email": "email"}
ABORTED = {"status": "aborted"}


def extract_otp(text: str | None) -> str | None:
    match = OTP_IN_TEXT.search(text or "")
    return re.sub(r"\D", "", match.group(0)) if match else None


def parse_channel(text: str) -> str | None:
    """'sms' | 'email' | 'elsewhere' | None for a reply to the channel question."""
    # Masked contacts copied from our own buttons ("090****456") are not another destination.
    folded = fold_text(" ".join(w for w in text.split() if "*" not in w))
    if _ELSEWHERE.search(folded):
        return "elsewhere"
    short = len(folded.split()) <= _SHORT_REPLY_WORDS
    if _EMAIL_WORDS.search(folded) or (short and _EMAIL_SHORT.search(folded)):
        return "email"
    if _SMS_WORDS.search(folded) or (short and _SMS_SHORT.search(folded)):
        return "sms"
    return None


def fits_masked_phone(text: str, masked: str | None) -> bool:
    """Whether a phone typed in `text` ("sdt cua minh la 0935456789") fits the registered one as the
    bot showed it ("093****789"): the customer is telling their number, not asking for another
    destination. Only the shown digits are compared, so the answer says nothing of the hidden ones;
    the code still goes to the registered number, never to the typed one."""
    if not masked or "*" not in masked:
        return False
    head, tail = masked.split("*", 1)[0], masked.rsplit("*", 1)[-1]
    for typed in re.findall(r"\+?\d[\d .\-]{7,16}\d", text):
        phone = normalize_phone(typed)
        if phone and len(phone) == len(masked) and phone.startswith(head) and phone.endswith(tail):
            return True
    return False


def utter_sent(dispatcher: CollectingDispatcher, session: Any) -> None:
    channel = str(session.get("channel", ""))
    dispatcher.utter_message(
        response="utter_otp_sent",
        channel=CHANNEL_LABELS.get(channel, channel),
        destination=session.get("destination_masked", ""),
    )


def utter_wait(dispatcher: CollectingDispatcher, err: ApiError) -> None:
    """429 answers: cooldown (seconds) or hourly send limit (minutes)."""
    retry = int(err.data.get("retry_after") or 60)
    if err.code == "resend_cooldown":
        dispatcher.utter_message(response="utter_resend_wait", seconds=retry)
    elif err.code in ("chat_user_otp_limit", "too_many_wrong_codes"):
        dispatcher.utter_message(response="utter_otp_daily_limit")
    else:
        dispatcher.utter_message(response="utter_send_limit", minutes=max(1, math.ceil(retry / 60)))


def explain_send_refusal(dispatcher: CollectingDispatcher, err: ApiError) -> bool:
    """Tell the customer why no code was sent (verification or signing); True when the task ends."""
    if err.code == "otp_frozen":
        dispatcher.utter_message(response="utter_otp_frozen")
        return True
    if err.status == 429:
        utter_wait(dispatcher, err)
        return False
    if err.code == "no_contact":
        dispatcher.utter_message(response="utter_no_contact")
        return False
    dispatcher.utter_message(response="utter_service_error", reason=err.message or err.code)
    return True


# Set when the code in hand can no longer be used (expired, locked): the form must not ask for it
# again right after saying so; a resend clears it.
SPENT_SLOT = "otp_spent"


def code_is_spent(err: ApiError) -> bool:
    return err.code in ("otp_expired", "session_locked") or err.status in (410, 423)


class AskForCode(Action):
    """The form's question for a typed code, unless the last answer said that code is spent."""

    response = "utter_ask_otp_code"

    def name(self) -> str:
        return "action_ask_otp_code"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if not tracker.get_slot(SPENT_SLOT):
            dispatcher.utter_message(response=self.response)
        return []


class AskForVerificationCode(AskForCode):
    response = "utter_ask_verify_otp"

    def name(self) -> str:
        return "action_ask_verify_otp"


def explain_code_refusal(dispatcher: CollectingDispatcher, err: ApiError) -> bool:
    """Tell the customer why a typed code was refused; True when the task ends (frozen, unexpected)."""
    if err.code == "wrong_otp":
        dispatcher.utter_message(response="utter_otp_wrong", attempts_left=err.data.get("attempts_left", 0))
    elif err.code == "otp_replaced":
        dispatcher.utter_message(response="utter_otp_replaced")
    elif err.code == "otp_frozen":
        dispatcher.utter_message(response="utter_otp_frozen")
        return True
    elif err.code == "otp_expired" or err.status == 410:
        dispatcher.utter_message(response="utter_otp_expired")
    elif err.code == "session_locked" or err.status == 423:
        dispatcher.utter_message(response="utter_otp_locked")
    elif err.code == "invalid_otp_format":
        dispatcher.utter_message(response="utter_otp_format")
    else:
        dispatcher.utter_message(response="utter_service_error", reason=err.message or err.code)
        return True
    return False
