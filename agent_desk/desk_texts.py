"""The desk's own messages to agents (refusals of an action), its close tags and the supervisors'
report texts, from texts/desk.yml."""

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
    # agent_desk/transfer.py
    "transfer_note_missing": (),
    "transfer_note_too_long": ("limit",),
    "transfer_agent_not_found": (),
    "transfer_agent_away": ("agent_name",),
    "transfer_owner_changed": (),
    "transfer_rasa_failed": ("error",),
    "transfer_from_queue": (),
    "transfer_already_queued": (),
    "transfer_same_agent": ("agent_name",),
    # agent_desk/security.py (supervisors_only also agent_desk/transfer.py)
    "supervisors_only": (),
    "trainers_and_supervisors_only": (),
    "trainer_only": (),
    "csrf_failed": (),
    "login_again": (),
    # agent_desk/attachments.py
    "attachment_too_large": ("limit_mb",),
    "attachment_bad_type": (),
    "attachment_image_too_large": ("limit_mb",),
    "attachment_pdf_too_large": ("limit_mb",),
    "attachment_rasa_failed": ("error",),
    "file_link_invalid": (),
    "file_link_expired": (),
    # agent_desk/customer_file_views.py
    "customer_file_telegram_off": (),
    "customer_file_host_refused": (),
    "customer_file_unavailable": (),
    "customer_file_timeout": (),
    "customer_file_not_in_conversation": (),
    "customer_file_gone": (),
    "customer_file_too_large": ("limit_mb",),
    "customer_file_history_failed": (),
}
# The supervisors' reports (agent_desk/reports.py): range refusals, durations, charts, CSV.
REQUIRED_REPORTS: dict[str, tuple[str, ...]] = {
    "start_date": (),
    "end_date": (),
    "bad_date": ("what",),
    "no_such_date": ("what", "raw"),
    "start_after_end": (),
    "too_many_days": ("max_days",),
    "duration_seconds": ("seconds",),
    "duration_minutes": ("minutes",),
    "duration_minutes_seconds": ("minutes", "seconds"),
    "duration_hours": ("hours",),
    "duration_hours_minutes": ("hours", "minutes"),
    "chart_requests": (),
    "legend_closed": (),
    "legend_timed_out": (),
    "legend_other": (),
    "chart_waits": (),
    "chart_csat": (),
    "csv_scope": (),
    "csv_name": (),
    "csv_conversations": (),
    "csv_closed": (),
    "csv_timed_out": (),
    "csv_cancelled": (),
    "csv_wait_p50": (),
    "csv_wait_p95": (),
    "csv_first_response": (),
    "csv_handling": (),
    "csv_csat": (),
    "csv_answers": (),
    "csv_surveys": (),
    "csv_scope_day": (),
    "csv_scope_agent": (),
    "csv_scope_total": (),
}
# Stored in desk_handoffs.close_tag: the keys are fixed, their labels are text.
CLOSE_TAG_KEYS = ("resolved", "info_provided", "escalated", "customer_left", "other")

TEXTS = load_texts(DESK_TEXTS, REQUIRED, section="messages")
REPORT_TEXTS = load_texts(DESK_TEXTS, REQUIRED_REPORTS, section="reports")
CLOSE_TAGS = load_labels(DESK_TEXTS, "close_tags", CLOSE_TAG_KEYS)
