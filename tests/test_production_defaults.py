"""APP_ENV=production refuses development defaults, in the signing service and in the agent desk alike."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent_desk import config as desk
from common.production import refuse_development_defaults
from signing_service import settings as signing

SIGNING_PRODUCTION = {
    "APP_ENV": "production",
    "SIGNING_SERVICE_TOKEN": "a-real-token-123456",
    "SIGNING_SECRET_KEY": "a-real-secret-key-0123456789",
    "SEAL_P12_PATH": "/etc/seal.p12",
    "SEAL_CA_PATH": "/etc/ca.pem",
    "SEAL_P12_PASSWORD": "real-password",
    "PUBLIC_BASE_URL": "https://ky.cpc.vn",
}
DESK_PRODUCTION = {
    "APP_ENV": "production",
    "DESK_SECRET_KEY": "k" * 40,
    "RASA_AUTH_TOKEN": "r" * 30,
    "SIGNING_SERVICE_TOKEN": "s" * 30,
    "DESK_API_TOKEN": "d" * 30,
}


def test_only_the_settings_still_at_their_default_are_named_in_order() -> None:
    with pytest.raises(KeyError) as err:
        refuse_development_defaults({"B": True, "A": False, "C": True}, KeyError, "set {names}!")
    assert err.value.args == ("set B, C!",)
    refuse_development_defaults({"A": False}, KeyError, "set {names}")  # nothing left: no error


def test_signing_service_names_every_development_default(tmp_path: Path) -> None:
    with pytest.raises(signing.ConfigError) as err:
        signing.load_settings({"APP_ENV": "production", "SIGNING_VAR_DIR": str(tmp_path)})
    assert str(err.value) == (
        "APP_ENV=production refuses development defaults; set: SIGNING_SERVICE_TOKEN, SIGNING_SECRET_KEY,"
        " SEAL_P12_PATH (+ SEAL_CA_PATH, SEAL_P12_PASSWORD), PUBLIC_BASE_URL"
    )


@pytest.mark.parametrize(
    ("unset", "named"),
    [
        ("SEAL_P12_PASSWORD", "SEAL_P12_PASSWORD"),
        ("PUBLIC_BASE_URL", "PUBLIC_BASE_URL"),
        ("SIGNING_SECRET_KEY", "SIGNING_SECRET_KEY"),
    ],
)
def test_signing_service_names_the_one_left(unset: str, named: str, tmp_path: Path) -> None:
    env = {k: v for k, v in SIGNING_PRODUCTION.items() if k != unset}
    with pytest.raises(signing.ConfigError) as err:
        signing.load_settings({**env, "SIGNING_VAR_DIR": str(tmp_path)})
    assert str(err.value) == f"APP_ENV=production refuses development defaults; set: {named}"


def test_signing_service_starts_without_development_defaults(tmp_path: Path) -> None:
    assert signing.load_settings({**SIGNING_PRODUCTION, "SIGNING_VAR_DIR": str(tmp_path)}).production
    # Outside production the defaults are what `make run` relies on.
    assert signing.load_settings({"SIGNING_VAR_DIR": str(tmp_path)}).token == signing.DEV_TOKEN


def test_desk_names_every_development_default() -> None:
    with pytest.raises(desk.ConfigError) as err:
        desk.Settings.from_env({"APP_ENV": "production"})
    assert str(err.value) == (
        "APP_ENV=production but these settings still have their development defaults: DESK_SECRET_KEY,"
        " RASA_AUTH_TOKEN, SIGNING_SERVICE_TOKEN, DESK_API_TOKEN. Set them to secret values."
    )


@pytest.mark.parametrize(
    "unset", ["DESK_SECRET_KEY", "RASA_AUTH_TOKEN", "SIGNING_SERVICE_TOKEN", "DESK_API_TOKEN"]
)
def test_desk_names_the_one_left(unset: str) -> None:
    env = {k: v for k, v in DESK_PRODUCTION.items() if k != unset}
    with pytest.raises(desk.ConfigError, match=rf"defaults: {re.escape(unset)}\. Set them"):
        desk.Settings.from_env(env)
    assert desk.Settings.from_env(DESK_PRODUCTION).production
    assert not desk.Settings.from_env({}).production
