"""Settings validation, password hashing and the account CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent_desk.config import ROOT, ConfigError, Settings
from agent_desk.passwords import hash_password, verify_password


def test_production_refuses_development_secrets():
    with pytest.raises(ConfigError, match="DESK_SECRET_KEY"):
        Settings.from_env({"APP_ENV": "production"})
    ok = Settings.from_env(
        {
            "APP_ENV": "production",
            "DESK_SECRET_KEY": "k" * 40,
            "RASA_AUTH_TOKEN": "r" * 30,
            "SIGNING_SERVICE_TOKEN": "s" * 30,
            "DESK_API_TOKEN": "d" * 30,
        }
    )
    assert ok.production


def test_app_env_is_read_like_every_other_process():
    # common/production.py: case and spaces do not matter, so " Production" is not quietly development.
    with pytest.raises(ConfigError, match="DESK_SECRET_KEY"):
        Settings.from_env({"APP_ENV": " Production "})
    assert Settings.from_env({"APP_ENV": ""}).app_env == "development"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"HANDOFF_QUEUE_TIMEOUT": "cinq"}, "HANDOFF_QUEUE_TIMEOUT"),
        ({"HANDOFF_QUEUE_TIMEOUT": "0"}, "at least 1"),
        ({"RASA_URL": "localhost:5005"}, "RASA_URL"),
        ({"DESK_SECRET_KEY": "short"}, "16 characters"),
        ({"RABBITMQ_URL": "http://x"}, "amqp"),
        ({"APP_ENV": "prod"}, "APP_ENV must be development, test or production"),
    ],
)
def test_bad_settings_are_reported_clearly(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_defaults_and_rabbitmq_from_host_variables():
    s = Settings.from_env({})
    assert s.port == 8900 and s.queue_timeout == 300 and s.database_url.startswith("sqlite+aiosqlite:///")
    s = Settings.from_env(
        {"RABBITMQ_HOST": "127.0.0.1", "RABBITMQ_USERNAME": "u", "RABBITMQ_PASSWORD": "p@ss"}
    )
    assert s.rabbitmq_url == "amqp://u:p%40ss@127.0.0.1:5672/"
    assert Settings.from_env({"DESK_DATABASE_URL": "postgresql://x@h/db"}).database_url.startswith(
        "postgresql+asyncpg://"
    )


def test_password_hashes_are_salted_and_verified():
    a, b = hash_password("mat-khau-1234"), hash_password("mat-khau-1234")
    assert a != b and a.startswith("scrypt$")
    assert verify_password("mat-khau-1234", a) and verify_password("mat-khau-1234", b)
    assert not verify_password("mat-khau-1235", a)
    assert not verify_password("x", "garbage")


def run_cli(tmp_path, *args, stdin=""):
    env = {
        "DESK_DATABASE_URL": f"sqlite:///{tmp_path / 'desk.db'}",
        "PYTHONPATH": str(ROOT),
        "PATH": "/usr/bin",
    }
    return subprocess.run(
        [sys.executable, "-m", "agent_desk.users", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


def test_users_cli_creates_accounts_from_stdin(tmp_path):
    done = run_cli(
        tmp_path, "add", "lan", "--role", "agent", "--display-name", "Lan", stdin="mat-khau-dai-1\n"
    )
    assert done.returncode == 0, done.stderr
    assert "created agent 'lan'" in done.stdout
    assert "mat-khau-dai-1" not in done.stdout + done.stderr
    again = run_cli(tmp_path, "add", "lan", stdin="mat-khau-dai-1\n")
    assert again.returncode == 2 and "already exists" in again.stderr
    short = run_cli(tmp_path, "add", "hung", "--role", "supervisor", stdin="ngan\n")
    assert short.returncode == 2 and "at least" in short.stderr
    bad = run_cli(tmp_path, "add", "Bad Name!", stdin="mat-khau-dai-1\n")
    assert bad.returncode == 2
    listing = run_cli(tmp_path, "list")
    assert listing.stdout.split() == ["lan", "agent", "active", "Lan"]
