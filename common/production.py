"""Which environment a process runs in (APP_ENV), read one way by every process, and the rule every
process applies to its configuration: no development default in production.

Development defaults (tokens, secrets, a generated CA) let `make run` work with no set-up; a deployment
with APP_ENV=production must not start on any of them, or anyone who read the repository could call it.
An APP_ENV that is none of the known values is refused: a typo ("prod") must not quietly run as
development in one process and as production in another.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

APP_ENVS: Final = ("development", "test", "production")
DEFAULT_APP_ENV: Final = "development"


class AppEnvError(ValueError):
    """APP_ENV is set to something that is not one of APP_ENVS (message is for the operator)."""


def app_env(env: Mapping[str, str] | None = None) -> str:
    """APP_ENV from `env` (os.environ when None): stripped, lower-cased; unset or blank → development.

    Raises AppEnvError for any other value, e.g. "prod"."""
    raw = (os.environ if env is None else env).get("APP_ENV") or ""
    value = raw.strip().lower()
    if not value:
        return DEFAULT_APP_ENV
    if value not in APP_ENVS:
        raise AppEnvError(f"APP_ENV must be development, test or production, got {raw!r}")
    return value


def is_production(env: Mapping[str, str] | None = None) -> bool:
    """APP_ENV is production (any case, spaces around ignored); raises AppEnvError like `app_env`."""
    return app_env(env) == "production"


def refuse_development_defaults(
    still_default: Mapping[str, bool], error: type[Exception], message: str
) -> None:
    """Raise `error` when any setting still has its development value.

    `still_default` maps what the operator must set (in the order to report) to whether it is still at
    its development value; `message` is the operator's text with `{names}` where those settings go.
    """
    names = [name for name, is_default in still_default.items() if is_default]
    if names:
        raise error(message.format(names=", ".join(names)))
