"""The customer's erasure request ("xóa dữ liệu của tôi") and the retention of conversations.

The bot's `action_delete_my_data` sets the slot `FORGET_SLOT`; the tracker store that sees it in a
turn deletes the stored conversation instead of saving the turn (deploy/windowed_tracker_store.py).
Conversations idle for `CONVERSATION_RETENTION_DAYS` (default 180) are deleted by
`python -m deploy.purge_conversations` (`make purge`).
"""

from __future__ import annotations

FORGET_SLOT = "forget_conversation"
RETENTION_ENV = "CONVERSATION_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 180
