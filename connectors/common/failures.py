"""Record bot replies a platform refused, so staff can follow up (never lost silently).

One JSON line per undelivered message, appended to ``CHANNEL_FAILURES_PATH`` (default
``var/channel_failures.jsonl``). The agent desk (or an operator with ``tail -f``) reads it. The
file holds the conversation id and the reply text because staff need both to reach the customer;
it is data for staff, not a log, and lives under ``var/`` with the other customer data.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from connectors.common.masking import mask_id

logger = logging.getLogger(__name__)
DEFAULT_PATH = "var/channel_failures.jsonl"
_write_lock = threading.Lock()


def failures_path() -> Path:
    return Path(os.environ.get("CHANNEL_FAILURES_PATH") or DEFAULT_PATH)


def record_failure(
    channel: str,
    sender_id: str,
    reason: str,
    message: dict[str, Any],
    error_code: int | str | None = None,
    detail: str = "",
    path: Path | None = None,
) -> None:
    """Append one undelivered reply. ``reason`` is a stable code, e.g. ``outside_window``."""
    record = {
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "channel": channel,
        "sender_id": sender_id,
        "reason": reason,
        "error_code": error_code,
        "detail": detail[:500],
        "message": message,
    }
    target = path or failures_path()
    line = json.dumps(record, ensure_ascii=False) + "\n"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _write_lock, open(target, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        logger.exception("could not record an undelivered %s reply for %s", channel, mask_id(sender_id))
        return
    logger.warning(
        "%s reply to %s not delivered (%s, code %s); recorded in %s",
        channel,
        mask_id(sender_id),
        reason,
        error_code,
        target,
    )
