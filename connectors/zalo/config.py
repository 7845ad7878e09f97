"""Zalo OA channel settings from environment variables (see docs/channels.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from connectors.common import settings as s

REQUIRED = ("ZALO_APP_ID", "ZALO_OA_SECRET_KEY", "ZALO_ACCESS_TOKEN")
OPTIONAL = ("ZALO_REFRESH_TOKEN", "ZALO_APP_SECRET")


@dataclass(frozen=True)
class ZaloSettings:
    app_id: str
    oa_secret_key: str  # webhook MAC key (not the app secret)
    access_token: str
    refresh_token: str | None
    app_secret: str | None  # OAuth `secret_key` header, needed to refresh
    api_base_url: str = "https://openapi.zalo.me"
    oauth_base_url: str = "https://oauth.zaloapp.com"
    token_store_path: Path = Path("var/zalo_tokens.json")
    send_rate: float = 10.0  # sends per second per OA (no published figure; -32 means slow down)
    text_limit: int = 2000
    max_buttons: int = 5
    request_timeout: float = 10.0
    request_info_image_url: str | None = None  # picture of the request_user_info card (PNG/JPG)
    # Documents go as files (upload API, then a file message) up to this size; larger, or with
    # ZALO_SEND_FILES=0, or when the upload fails, the link is sent instead. Old SDKs allow 5 MB.
    send_files: bool = True
    file_max_bytes: int = 5 * 1024 * 1024

    @property
    def can_refresh(self) -> bool:
        return bool(self.refresh_token and self.app_secret)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ZaloSettings | None:
        """Settings, or None when the channel is not configured at all.

        Raises ConfigError when it is half configured, so a typo does not silently disable it.
        """
        env = os.environ if env is None else env
        production = s.is_production(env)  # read first: an unknown APP_ENV is refused even with no channel
        present = {name: s.get(env, name) for name in REQUIRED + OPTIONAL}
        if not any(present.values()):
            return None
        missing = [name for name in REQUIRED if not present[name]]
        if missing:
            raise s.ConfigError(
                f"Zalo channel partly configured: set {', '.join(missing)} (or unset all ZALO_*)"
            )
        if bool(present["ZALO_REFRESH_TOKEN"]) != bool(present["ZALO_APP_SECRET"]):
            raise s.ConfigError(
                "ZALO_REFRESH_TOKEN and ZALO_APP_SECRET go together (token refresh needs both)"
            )
        if production and not present["ZALO_REFRESH_TOKEN"]:
            raise s.ConfigError("ZALO_REFRESH_TOKEN and ZALO_APP_SECRET are required when APP_ENV=production")
        api = (s.get(env, "ZALO_API_BASE_URL") or cls.api_base_url).rstrip("/")
        oauth = (s.get(env, "ZALO_OAUTH_BASE_URL") or cls.oauth_base_url).rstrip("/")
        s.require_https("ZALO_API_BASE_URL", api, env)
        s.require_https("ZALO_OAUTH_BASE_URL", oauth, env)
        image = s.get(env, "ZALO_REQUEST_INFO_IMAGE_URL")
        if image is not None:
            if not image.startswith(("https://", "http://")):
                raise s.ConfigError(f"ZALO_REQUEST_INFO_IMAGE_URL must be a URL, got {image!r}")
            s.require_https("ZALO_REQUEST_INFO_IMAGE_URL", image, env)
        return cls(
            app_id=present["ZALO_APP_ID"] or "",
            oa_secret_key=present["ZALO_OA_SECRET_KEY"] or "",
            access_token=present["ZALO_ACCESS_TOKEN"] or "",
            refresh_token=present["ZALO_REFRESH_TOKEN"],
            app_secret=present["ZALO_APP_SECRET"],
            api_base_url=api,
            oauth_base_url=oauth,
            token_store_path=Path(s.get(env, "ZALO_TOKEN_STORE_PATH") or cls.token_store_path),
            send_rate=s.get_float(env, "ZALO_SEND_RATE", cls.send_rate, minimum=0.1),
            request_info_image_url=image,
            send_files=s.get_bool(env, "ZALO_SEND_FILES", cls.send_files),
            file_max_bytes=int(
                s.get_float(env, "ZALO_FILE_MAX_MB", cls.file_max_bytes / 1024 / 1024, minimum=0.1)
                * 1024
                * 1024
            ),
        )
