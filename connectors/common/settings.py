"""Read connector configuration from the environment (Rasa's ${VAR} substitution fails on unset vars)."""

from __future__ import annotations

from collections.abc import Mapping

from common import production


class ConfigError(ValueError):
    """A channel is half-configured or uses a development default in production."""


def is_production(env: Mapping[str, str] | None = None) -> bool:
    """APP_ENV read as every process reads it (common.production); an unknown value is a ConfigError."""
    try:
        return production.is_production(env)
    except production.AppEnvError as exc:
        raise ConfigError(str(exc)) from None


def get(env: Mapping[str, str], name: str) -> str | None:
    """The stripped value of ``name``, or None when unset or blank."""
    value = env.get(name, "").strip()
    return value or None


def get_float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = get(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def get_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = get(env, name)
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be 1 or 0 (true/false), got {raw!r}")


def require_https(name: str, url: str, env: Mapping[str, str]) -> None:
    """In production every platform endpoint must be HTTPS (tests use http://127.0.0.1)."""
    if is_production(env) and not url.startswith("https://"):
        raise ConfigError(f"{name} must be an https:// URL when APP_ENV=production, got {url!r}")
