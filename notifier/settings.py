"""Notifier settings from environment variables, checked at start-up (ConfigError names the variable)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from connectors.common import settings as s
from connectors.zalo.zns import DEFAULT_BASE_URL as ZNS_DEFAULT_URL
from signing_service import events

ConfigError = s.ConfigError


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = s.get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def zns_templates(raw: str | None) -> dict[str, str]:
    """`step_changed:231456,documents_ready:231457`: the approved ZNS template of each notice kind."""
    out: dict[str, str] = {}
    for item in (raw or "").replace(";", ",").split(","):
        if not item.strip():
            continue
        kind, _, template = item.partition(":")
        kind, template = kind.strip(), template.strip()
        if kind not in events.KINDS:
            raise ConfigError(
                f"ZNS_TEMPLATES: unknown notice {kind!r} (known: {', '.join(sorted(events.KINDS))})"
            )
        if not template.isalnum() or len(template) > 64:
            raise ConfigError(
                f"ZNS_TEMPLATES: template id of {kind} must be letters and digits, got {template!r}"
            )
        out[kind] = template
    return out


@dataclass(frozen=True)
class NotifierSettings:
    poll_seconds: float = 0.5
    scan_seconds: int = 300
    batch: int = 50
    concurrency: int = 20
    zalo_window_hours: int = 48
    zns_base_url: str = ZNS_DEFAULT_URL
    zns_templates: dict[str, str] = field(default_factory=dict)
    rasa_url: str | None = None
    rasa_token: str = ""
    # Sent notices are also written into the customer's conversation (the slot of their request and
    # the message itself), so a reply continues about that request and the desk shows the notice.
    record_in_conversation: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifierSettings:
        env = os.environ if env is None else env
        poll_ms = _int(env, "NOTIFY_POLL_MS", 500, 20, 60_000)
        zns_url = (s.get(env, "ZNS_API_BASE_URL") or ZNS_DEFAULT_URL).rstrip("/")
        s.require_https("ZNS_API_BASE_URL", zns_url, env)
        return cls(
            poll_seconds=poll_ms / 1000,
            scan_seconds=_int(env, "NOTIFY_SCAN_SECONDS", 300, 1, 86_400),
            batch=_int(env, "NOTIFY_BATCH", 50, 1, 1000),
            concurrency=_int(env, "NOTIFY_CONCURRENCY", 20, 1, 200),
            # Zalo: customer-service messages are free for 48 h after the user's last interaction,
            # charged up to 7 days, refused after; beyond the window the notice goes by ZNS or SMS.
            zalo_window_hours=_int(env, "ZALO_WINDOW_HOURS", 48, 1, 168),
            zns_base_url=zns_url,
            zns_templates=zns_templates(s.get(env, "ZNS_TEMPLATES")),
            rasa_url=(s.get(env, "RASA_URL") or "").rstrip("/") or None,
            rasa_token=s.get(env, "RASA_AUTH_TOKEN") or "",
            record_in_conversation=(s.get(env, "NOTIFY_RECORD_IN_CONVERSATION") or "1") not in {"0", "false"},
        )
