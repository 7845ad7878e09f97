"""Action-server configuration from environment variables, validated once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlparse

from common.production import AppEnvError, is_production

DEV_SIGNING_URL = "http://127.0.0.1:8800"
DEV_SIGNING_TOKEN = "dev-signing-token"  # noqa: S105 - development default, refused in production
DEV_DESK_URL = "http://127.0.0.1:8900"
DEV_DESK_TOKEN = "dev-desk-api-token"  # noqa: S105 - development default, refused in production


class ConfigError(RuntimeError):
    """A configuration value is missing or unsafe; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    signing_url: str
    signing_token: str
    timeout_s: float
    # The agent desk's API (a waiting customer's place in the queue): DESK_URL, DESK_API_TOKEN.
    desk_url: str = DEV_DESK_URL
    desk_token: str = DEV_DESK_TOKEN

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        try:
            production = is_production(env)
        except AppEnvError as exc:
            raise ConfigError(str(exc)) from None
        url = env.get("SIGNING_SERVICE_URL", DEV_SIGNING_URL).rstrip("/")
        token = env.get("SIGNING_SERVICE_TOKEN", DEV_SIGNING_TOKEN)
        parsed = urlparse(url)
        if parsed.scheme not in {"http", "https"} or not parsed.netloc:
            raise ConfigError(f"SIGNING_SERVICE_URL must be an http(s) URL, got {url!r}")
        if not token:
            raise ConfigError("SIGNING_SERVICE_TOKEN must not be empty")
        if production and token == DEV_SIGNING_TOKEN:
            raise ConfigError(
                "APP_ENV=production: set SIGNING_SERVICE_TOKEN (the development token is refused)"
            )
        if production and "SIGNING_SERVICE_URL" not in env:
            raise ConfigError("APP_ENV=production: set SIGNING_SERVICE_URL explicitly")
        try:
            timeout = float(env.get("SIGNING_SERVICE_TIMEOUT", "5"))
        except ValueError as exc:
            raise ConfigError("SIGNING_SERVICE_TIMEOUT must be a number of seconds") from exc
        if not 0.1 <= timeout <= 60:
            raise ConfigError("SIGNING_SERVICE_TIMEOUT must be between 0.1 and 60 seconds")
        desk_url = env.get("DESK_URL", "").strip().rstrip("/") or DEV_DESK_URL
        desk = urlparse(desk_url)
        if desk.scheme not in {"http", "https"} or not desk.netloc:
            raise ConfigError(f"DESK_URL must be an http(s) URL, got {desk_url!r}")
        desk_token = env.get("DESK_API_TOKEN", "") or DEV_DESK_TOKEN
        if production and desk_token == DEV_DESK_TOKEN:
            raise ConfigError("APP_ENV=production: set DESK_API_TOKEN (the development token is refused)")
        return cls(
            signing_url=url, signing_token=token, timeout_s=timeout, desk_url=desk_url, desk_token=desk_token
        )
