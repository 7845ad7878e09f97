"""Finding a request (by code, or by power unit + customer name) and reporting its status."""

from __future__ import annotations

import json
import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.common import (
    REQUEST_CODE_IN_TEXT,
    choice_button,
    described_choice,
    find_request_code,
    fmt_date,
    mask_code,
    normalize_request_code,
    normalize_unit_code,
    parse_choices,
    step_lines,
)
from bot.actions.document_list import show_documents
from bot.actions.forms import CustomerFormValidation
from bot.actions.person_names import trim_to_name
from bot.actions.signing_api import (
    ApiError,
    NameTooShort,
    RequestStatus,
    ServiceUnavailable,
    TooManyLookups,
    Unit,
    get_api,
)
from bot.components.normalizer import fold_text

# Words customers put around a unit name ("ở điện lực Tam Kỳ ạ"): dropped before a second search.
_UNIT_FILLERS = re.compile(
    r"\b(o|tai|thuoc|cua|dien luc|cong ty dien luc|cong ty|pc|dl|a|nhe|nha|em|anh|chi|minh|toi|la|khu vuc)\b"
)
# Phrases before a name ("tên tôi là Nguyễn Văn An"), matched on the folded text.
_NAME_PREFIXES = (
    "ho ten",
    "ho va ten",
    "ten",
    "toi ten",
    "toi la",
    "ten toi la",
    "ten toi",
    "ten la",
    "minh ten",
    "minh la",
    "em ten",
    "em la",
    "anh ten",
    "chi ten",
    "khach hang",
    "ten khach hang",
    "dung ten",
    "nguoi dung ten",
    "ten nguoi dung ten",
)
_NAME_PREFIX = re.compile(
    # Longest first, so "ten toi la" wins over "ten".
    "^(" + "|".join(sorted(_NAME_PREFIXES, key=len, reverse=True)) + r")( la)?\s+"
)
_NAME_OK = re.compile(r"^[^\W\d_]+(?: [^\W\d_]+){1,5}$")
_ONE_WORD = re.compile(r"^[^\W\d_]+$")

# Codes answered from one message ("mã A với mã B"); more is a paste, not a question.
MAX_CODES_PER_MESSAGE = 3
# Words of a bare answer ("ở điện lực hội an nhé").
SHORT_REPLY = 6
# Name-lookup candidates last listed: [{ref, title}] (opaque refs, masked titles; never codes).
# Cleared with every other lookup slot, so a list never outlives the lookup that showed it.
CANDIDATES_SLOT = "candidate_choices"
LOOKUP_SLOTS = ("lookup_code", "power_unit", "power_unit_name", "customer_name", CANDIDATES_SLOT)
# A typed choice is a short reply ("cái thứ 2", "số đuôi 789"), not a sentence that has a number;
# a longer one may still describe a candidate ("cái nhà ở phường Tân Thạnh đó cháu, số đuôi 456").
MAX_CHOICE_WORDS = 8
MAX_DESCRIPTION_WORDS = 20
# "tra cứu hồ sơ khác": the customer wants another request than the one shown.
# ("mới" alone is not: "khi nào mới xong"; nor "nữa": "bao lâu nữa").
_ANOTHER = re.compile(r"\bkhac\b|\b(ho so|yeu cau|ma|don) moi\b")


def reset_lookup() -> list[EventType]:
    return [SlotSet(name, None) for name in LOOKUP_SLOTS]


def codes_in(tracker: Tracker) -> list[str]:
    """Every well-formed request code of the latest message, in order, without repeats."""
    text = str((tracker.latest_message or {}).get("text") or "")[:2000]
    found = (normalize_request_code(m.group(0)) for m in REQUEST_CODE_IN_TEXT.finditer(text))
    return list(dict.fromkeys(c for c in found if c))


def typed_code(tracker: Tracker) -> str | None:
    """A request code the customer typed in this message, when it is not the current request."""
    code = normalize_request_code(tracker.get_slot("lookup_code"))
    return code if code and code != tracker.get_slot("request_code") else None


async def resolve_unit(text: str) -> list[Unit]:
    """Units matching what the customer typed: code, full name, or the name without filler words."""
    api = get_api()
    query = text.strip()[:100]
    code = normalize_unit_code(query)  # "pc05 tk", full-width or other scripts' digits: one rule
    if code:
        return [u for u in await api.units(code) if u["code"] == code]
    units = await api.units(query)
    if not units:
        core = " ".join(_UNIT_FILLERS.sub(" ", fold_text(query)).split())
        if core and core != fold_text(query):
            units = await api.units(core)
    exact = [u for u in units if fold_text(u["name"]) in {fold_text(query), "dien luc " + fold_text(query)}]
    return exact or units


async def most_specific_units(mentions: list[str]) -> list[Unit]:
    """The units of several places named at once: the one place that resolves to a single unit
    ("Sầm Sơn" beside "Thanh Hóa"), else the units every place agrees on, else the fewest."""
    found = [units for units in [await resolve_unit(m) for m in mentions] if units]
    singles = {u[0]["code"]: u for u in found if len(u) == 1}
    if len(singles) == 1:
        return next(iter(singles.values()))
    if not found:
        return []
    common = set.intersection(*({u["code"] for u in units} for units in found))
    agreed = [u for u in found[0] if u["code"] in common]
    return agreed or min(found, key=len)


def follows_current_request(tracker: Tracker) -> bool:
    """A question about progress with nothing new in it ("trễ mấy ngày rồi?", "khi nào xong?") is
    about the request already shown: answer with it instead of asking for a code again."""
    if not tracker.get_slot("request_code") or tracker.get_slot("requested_slot"):
        return False
    message = tracker.latest_message or {}
    if (message.get("intent") or {}).get("name") != "track_request":
        return False
    if any(
        e.get("entity") in {"request_code", "power_unit", "customer_name"}
        for e in message.get("entities") or []
    ):
        return False
    return not _ANOTHER.search(fold_text(str(message.get("text") or "")))


def _without_prefix(text: str) -> str:
    """The reply without "tên tôi là"-style words before the name (at most 100 chars)."""
    words = text.strip().strip(".!?,;:").split()
    folded = fold_text(" ".join(words))
    match = _NAME_PREFIX.match(folded)
    if match:
        # Drop as many original words as the folded prefix had.
        words = words[len(match.group(0).split()) :]
    # "ba e ten nguyen van an a": from the family name on, without the closing particle.
    return " ".join(trim_to_name(words))[:100]


def clean_name(text: str) -> str | None:
    """A plausible person name from a reply, or None (2–6 words of letters, at most 100 chars)."""
    name = _without_prefix(text)
    return name if _NAME_OK.match(name) else None


async def show_request(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    code: str,
    pending: str | None = None,
    found: RequestStatus | None = None,
    mask: bool = False,
) -> list[EventType]:
    """Look the request up, tell its status, then continue with what the customer had asked for.

    `pending` (else the `pending_task` slot) is the task to continue: documents, sign or amend.
    `found`: a request picked from name-lookup candidates; its code is shown masked, since the
    customer did not type it. `mask`: show the code masked anyway (a follow-up on the current
    request, which may have been found by name).
    """
    # A code the customer did not type (found by name, or the current request) is shown masked,
    # in error messages too.
    shown = mask_code(code) if found or mask else code
    try:
        req = found or await get_api().request(code, tracker.sender_id)
    except ApiError as err:
        if err.status == 429:
            dispatcher.utter_message(response="utter_too_many_code_lookups")
        elif err.status == 404:
            dispatcher.utter_message(response="utter_request_not_found", code=shown)
        elif err.status == 400:
            dispatcher.utter_message(response="utter_request_code_invalid", code=shown)
        else:
            dispatcher.utter_message(response="utter_service_unavailable")
        return []
    except ServiceUnavailable:
        dispatcher.utter_message(response="utter_service_unavailable")
        return []
    unit_name = (req.get("unit") or {}).get("name", "")
    current = req.get("current_step") or {}
    code = req.get("code", code)
    dispatcher.utter_message(
        response="utter_request_status",
        code=mask_code(code) if found or mask else code,
        service_name=req.get("service_name", ""),
        unit_name=unit_name,
        received=fmt_date(req.get("received_at")),
        steps=step_lines(list(req.get("steps", []))),
        current_step=current.get("name", ""),
    )
    if req.get("status") == "completed":
        # Whether it was on time is what a customer asks next: say it with the dates.
        dispatcher.utter_message(
            response="utter_request_completed_late" if req.get("late") else "utter_request_completed",
            completed=fmt_date(req.get("completed_at")),
            due=fmt_date(req.get("due_at")),
            late_days=req.get("late_working_days", 0),
        )
    elif req.get("late"):
        dispatcher.utter_message(
            response="utter_request_late",
            late_days=req.get("late_working_days", 0),
            due=fmt_date(req.get("due_at")),
        )
    else:
        dispatcher.utter_message(
            response="utter_request_on_time",
            due=fmt_date(req.get("due_at")),
            days=req.get("committed_working_days", ""),
        )
    events: list[EventType] = [SlotSet("request_code", code), SlotSet("pending_task", None)]
    pending = None if pending == "none" else pending or tracker.get_slot("pending_task")
    if pending == "documents":
        return events + await show_documents(dispatcher, tracker, code)
    if pending == "sign":
        return events + [FollowupAction("action_prepare_signing")]
    if pending == "amend":
        return events + [FollowupAction("action_prepare_amendment")]
    awaiting = int(req.get("documents_awaiting_signature") or 0)
    if awaiting:
        dispatcher.utter_message(response="utter_request_next_sign", count=awaiting)
    else:
        dispatcher.utter_message(response="utter_request_next")
    return events


class ValidateFindRequestForm(CustomerFormValidation):
    """Asks for the power unit and the customer's name, unless a request code was given."""

    def name(self) -> str:
        return "validate_find_request_form"

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        # A code makes the unit and name unnecessary (the unit is part of the code).
        if tracker.get_slot("lookup_code") or follows_current_request(tracker):
            return []
        return ["power_unit", "customer_name"]

    async def validate_power_unit(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        # Two places in one message ("e o sam son thanh hoa": a town and its province) come as a
        # list: the most specific one that names a single unit wins.
        mentions = [str(v)[:100] for v in value if v][:3] if isinstance(value, list) else []
        text = " ".join(mentions) if mentions else str(value or "")[:200]
        code = find_request_code(text)
        if code:
            return {"power_unit": None, "lookup_code": code}
        try:
            units = await most_specific_units(mentions) if mentions else await resolve_unit(text)
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return {"power_unit": None}
        except ApiError:
            units = []
        if len(units) == 1:
            return {"power_unit": units[0]["code"], "power_unit_name": units[0]["name"]}
        if not units:
            dispatcher.utter_message(response="utter_unit_not_found", unit_query=text[:60])
            return {"power_unit": None}
        buttons = [
            choice_button(u["name"], "/inform" + json.dumps({"power_unit": u["code"]}, ensure_ascii=False))
            for u in units[:8]
        ]
        dispatcher.utter_message(response="utter_choose_unit", buttons=buttons)
        return {"power_unit": None}

    async def validate_customer_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(value or "")[:200]
        code = find_request_code(text)
        if code:
            return {"customer_name": None, "lookup_code": code}
        name = clean_name(text)
        if not name:
            # One word ("An") is refused by the service too: ask for the full name, not "letters only".
            short = _ONE_WORD.match(_without_prefix(text))
            dispatcher.utter_message(response="utter_name_too_short" if short else "utter_name_invalid")
            return {"customer_name": None}
        return {"customer_name": name}


class ActionFindRequest(Action):
    """Runs the lookup once the form has a code, or a unit and a name."""

    def name(self) -> str:
        return "action_find_request"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        raw_code = tracker.get_slot("lookup_code")
        if raw_code:
            code = normalize_request_code(str(raw_code)) or find_request_code(str(raw_code))
            if not code:
                dispatcher.utter_message(response="utter_request_code_invalid", code=str(raw_code)[:40])
                return reset_lookup()
            # "PC05TK0000123 với PC05HA0000789": every code typed is answered, none dropped; the
            # last one shown stays the current request.
            others = [c for c in codes_in(tracker) if c != code][: MAX_CODES_PER_MESSAGE - 1]
            events = reset_lookup()
            for other in others:
                events += await show_request(dispatcher, tracker, other, pending="none")
            last = await show_request(dispatcher, tracker, code)
            events += last
            if others and any(e.get("name") == "request_code" and e.get("value") == code for e in last):
                dispatcher.utter_message(response="utter_several_requests", count=len(others) + 1, code=code)
            return events
        unit = tracker.get_slot("power_unit")
        name = tracker.get_slot("customer_name")
        if not unit and not name and follows_current_request(tracker):
            return reset_lookup() + await show_request(
                dispatcher, tracker, tracker.get_slot("request_code"), mask=True
            )
        if not unit or not name:
            dispatcher.utter_message(response="utter_ask_power_unit")
            return reset_lookup()
        unit_name = tracker.get_slot("power_unit_name") or unit
        try:
            # The sender id lets the service limit name lookups per conversation (it keeps a hash)
            # and binds the candidates to this conversation.
            result = await get_api().search(unit, name, tracker.sender_id)
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return reset_lookup()
        except NameTooShort:
            # Keep the unit and let the form ask for the name again.
            dispatcher.utter_message(response="utter_name_too_short")
            return [
                SlotSet("lookup_code", None),
                SlotSet("customer_name", None),
                FollowupAction("find_request_form"),
            ]
        except TooManyLookups:
            dispatcher.utter_message(response="utter_too_many_lookups")
            return reset_lookup()
        except ApiError:
            result = {"candidates": [], "more": False}
        candidates = result["candidates"]
        if not candidates:
            dispatcher.utter_message(response="utter_no_match", customer_name=name, unit_name=unit_name)
            return reset_lookup()
        if len(candidates) == 1 and not result["more"]:
            return reset_lookup() + await choose_candidate(dispatcher, tracker, candidates[0]["ref"])
        buttons = []
        for c in candidates:
            parts = [
                c.get("customer_name_masked", ""),
                c.get("address_masked", ""),
                c.get("phone_masked", ""),
            ]
            parts.append(fmt_date(c.get("received_at")))
            title = " · ".join(p for p in parts if p)
            # The button carries an opaque ref bound to this conversation, never the request code.
            payload = "/inform" + json.dumps({"candidate_ref": c["ref"]})
            buttons.append(choice_button(title, payload))
        dispatcher.utter_message(
            response="utter_choose_candidate", count=len(candidates), unit_name=unit_name, buttons=buttons
        )
        if result["more"]:
            dispatcher.utter_message(response="utter_more_namesakes")
        # Kept so that a typed choice ("cái thứ 2", "ở Minh An", "đuôi 789") picks like a tap.
        choices = [{"ref": c["ref"], "title": b["title"]} for c, b in zip(candidates, buttons, strict=True)]
        return reset_lookup() + [SlotSet(CANDIDATES_SLOT, choices)]


async def choose_candidate(dispatcher: CollectingDispatcher, tracker: Tracker, ref: str) -> list[EventType]:
    """The masked status of a candidate the customer picked (documents need verification)."""
    events: list[EventType] = [SlotSet(CANDIDATES_SLOT, None)]
    return events + await _show_candidate(dispatcher, tracker, ref)


def typed_candidate(tracker: Tracker) -> str | None:
    """The ref of the candidate a typed reply picks from the list shown last, if it picks one."""
    choices = tracker.get_slot(CANDIDATES_SLOT)
    if not isinstance(choices, list) or not choices:
        return None
    text = str((tracker.latest_message or {}).get("text") or "")[:300]
    words = len(text.split())
    if words > MAX_DESCRIPTION_WORDS or find_request_code(text):
        return None
    titles = [str(c.get("title", "")) for c in choices if isinstance(c, dict)]
    if words <= MAX_CHOICE_WORDS:
        picked = parse_choices(text, titles, allow_many=False)
    else:
        picked = described_choice(text, titles)
    return str(choices[picked[0]].get("ref", "")) or None if picked else None


async def _show_candidate(dispatcher: CollectingDispatcher, tracker: Tracker, ref: str) -> list[EventType]:
    try:
        req = await get_api().candidate(ref, tracker.sender_id)
    except ServiceUnavailable:
        dispatcher.utter_message(response="utter_service_unavailable")
        return []
    except ApiError:
        dispatcher.utter_message(response="utter_candidate_expired")
        return []
    return await show_request(dispatcher, tracker, req.get("code", ""), found=req)


class ActionChooseCandidate(Action):
    """A button of the name-lookup list: `/inform{"candidate_ref": ...}`."""

    def name(self) -> str:
        return "action_choose_candidate"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        ref = str(tracker.get_slot("candidate_ref") or "")[:64]
        events: list[EventType] = [SlotSet("candidate_ref", None)]
        if not ref:
            dispatcher.utter_message(response="utter_candidate_expired")
            return events
        return events + await choose_candidate(dispatcher, tracker, ref)


class ActionHandleInform(Action):
    """Data typed outside a form: a candidate chosen in words, else a lookup with what was given."""

    def name(self) -> str:
        return "action_handle_inform"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        ref = typed_candidate(tracker)
        if ref:
            return await choose_candidate(dispatcher, tracker, ref)
        words = len(str((tracker.latest_message or {}).get("text") or "")[:300].split())
        if tracker.get_slot("customer_name") or (tracker.get_slot("power_unit") and words <= SHORT_REPLY):
            # A name, or a bare unit ("ở hội an"): the form asks for what is missing. A unit inside
            # a longer sentence ("tôi ở Tam Kỳ, cho hỏi chút") is no request to look one up.
            return [FollowupAction("find_request_form")]
        if tracker.get_slot(CANDIDATES_SLOT):
            dispatcher.utter_message(response="utter_candidate_not_understood")
            return []
        dispatcher.utter_message(response="utter_help")
        return []
