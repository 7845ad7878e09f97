"""The desk's own messages to agents (refusals of an action) and its close tags, from texts/desk.yml."""

from __future__ import annotations

from agent_desk.text_files import TEXTS_DIR, load_labels, load_texts

DESK_TEXTS = TEXTS_DIR / "desk.yml"

# Each text the code asks for, with the placeholders it fills in.
REQUIRED: dict[str, tuple[str, ...]] = {
    "empty_text": (),
    "text_too_long": ("limit",),
    "not_found": (),
    "taken_by_other": ("agent_name",),
    "no_longer_queued": (),
    "claim_rasa_failed": ("error",),
    "claim_unavailable": ("error",),
    "requeued_reclaim": (),
    "owned_by_other": ("agent_name",),
    "ended": (),
    "reply_rasa_failed": ("error",),
    "bad_close_tag": (),
    "handback_unavailable": ("error",),
    "state_changed": (),
    "handback_rasa_failed": ("error",),
    "canned_not_found": (),
    "bad_form": (),
    "login_throttled": (),
    "login_failed": (),
    "request_info_failed": ("error",),
    "request_unknown": ("code",),
    "transcript_cut": ("count",),
    "transcript_failed": ("error",),
    "notices_failed": ("error",),
    "window_closed": ("hours",),
    "sms_no_window": (),
    "sms_window_open": (),
    "sms_no_request_code": (),
    "sms_refused": ("reason",),
    "sms_failed": ("error",),
    "sms_sent_note": ("to", "text"),
    "transfer_target": (),
    "bad_status": (),
}
# Stored in desk_handoffs.close_tag: the keys are fixed, their labels are text.
CLOSE_TAG_KEYS = ("resolved", "info_provided", "escalated", "customer_left", "other")

TEXTS = load_texts(DESK_TEXTS, REQUIRED, section="messages")
CLOSE_TAGS = load_labels(DESK_TEXTS, "close_tags", CLOSE_TAG_KEYS)
