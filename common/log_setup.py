"""Log lines that carry the request id (common/request_id.py), as text or one JSON object per line.

`LOG_FORMAT=text` (default) keeps the usual line with `[rid]` after the logger name;
`LOG_FORMAT=json` prints `{"ts", "level", "logger", "request_id", "message"[, "exc"]}` per line, for
log shippers. Any other value stops the process at start-up (`LogConfigError`).

Every record gets a `request_id` attribute (a record factory, so records made by any library have it
too), which is why formats can name `%(request_id)s` safely.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import IO, Any

from common import request_id

FORMAT_ENV = "LOG_FORMAT"
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


class LogConfigError(ValueError):
    """LOG_FORMAT has a value we do not know; the message says which values work."""


def log_format(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    value = env.get(FORMAT_ENV, "text").strip().lower() or "text"
    if value not in FORMATS:
        raise LogConfigError(f"{FORMAT_ENV}={value!r}: use one of {', '.join(FORMATS)}")
    return value


_base_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    record.request_id = request_id.current() or request_id.NONE
    return record


def install_record_factory() -> None:
    """Give every log record a `request_id` attribute (idempotent)."""
    if logging.getLogRecordFactory() is not _record_with_request_id:
        logging.setLogRecordFactory(_record_with_request_id)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the message is already formatted (args applied)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", request_id.NONE),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def configure(
    level: int | str = logging.INFO, env: Mapping[str, str] | None = None, stream: IO[str] | None = None
) -> None:
    """For a process's entry point, instead of `logging.basicConfig` (raises LogConfigError)."""
    fmt = log_format(env)
    install_record_factory()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def apply_to_root_handlers(env: Mapping[str, str] | None = None) -> None:
    """For processes whose framework already set up logging (rasa_sdk, Rasa): keep its handlers,
    give them our format (raises LogConfigError)."""
    fmt = log_format(env)
    install_record_factory()
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter(fmt))
