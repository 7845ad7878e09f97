"""devstack helpers that `make run` relies on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from devstack import model, processes, run, scaled


def _db(path: Path, ddl: str) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute(ddl)
        conn.execute("INSERT INTO events (sender_id, data) VALUES ('c1', '{}')")
    return path


def test_an_old_broker_events_file_is_moved_aside_not_deleted(tmp_path: Path) -> None:
    db = _db(
        tmp_path / "rasa_events.db", "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, data TEXT)"
    )
    moved = processes.retire_broker_events_db(db)
    assert moved is not None and moved.exists() and not db.exists()
    assert moved.name.startswith("rasa_events.db.broker-")
    with sqlite3.connect(moved) as conn:
        assert conn.execute("SELECT sender_id FROM events").fetchall() == [("c1",)]


def test_a_tracker_store_file_and_a_missing_file_are_left_alone(tmp_path: Path) -> None:
    db = _db(
        tmp_path / "rasa_events.db",
        "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, type_name TEXT, data TEXT)",
    )
    assert processes.retire_broker_events_db(db) is None and db.exists()
    assert processes.retire_broker_events_db(tmp_path / "absent.db") is None
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert processes.retire_broker_events_db(empty) is None and empty.exists()


# -- what the stack exposes: interfaces, CORS, telemetry (tests/test_closed_doors.py checks it live) --

MODEL = Path("models/cskh-test.tar.gz")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The caller's environment without the settings under test (as on a fresh machine)."""
    for name in (
        "BIND_HOST", "RASA_CORS_ORIGINS", "RASA_TELEMETRY_ENABLED", "ACTION_SERVER_TOKEN",
        "ACTION_ENDPOINT_URL", "RASA_URL", "SIGNING_SERVICE_URL", "PUBLIC_BASE_URL",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def run_procs(env: dict[str, str], tmp_path: Path) -> list[processes.Proc]:
    return run.build_procs(processes.Ports(), env, tmp_path, MODEL)


def scaled_procs(tmp_path: Path) -> tuple[scaled.ScaledStack, list[processes.Proc]]:
    stack = scaled.ScaledStack(scaled.ScaledConfig(var_dir=tmp_path / "scaled"), MODEL)
    procs = [
        *stack.signing_procs(),
        *stack.action_procs(),
        stack.rasa_proc(1),
        stack.rasa_proc(2),
        stack.nginx_proc(),
        *stack.desk_procs(),  # two, behind nginx's desk port
    ]
    return stack, procs


def listen_arg(proc: processes.Proc) -> str:
    """The interface a devstack command line tells its server to listen on."""
    for flag in ("--host", "--interface", "-i"):
        if flag in proc.cmd:
            return proc.cmd[proc.cmd.index(flag) + 1]
    raise AssertionError(f"{proc.name} is started without an interface: {proc.cmd}")


def test_make_run_binds_every_server_to_loopback_by_default(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = processes.stack_env(processes.Ports())
    procs = run_procs(env, tmp_path)
    assert {p.name for p in procs} >= {"signing-service", "action-server", "rasa"}
    for p in procs:
        assert listen_arg(p) == "127.0.0.1", p.name
        assert p.health_url.startswith("http://127.0.0.1:"), p.name
    actions = next(p for p in procs if p.name == "action-server")
    assert actions.cmd[1:3] == ["-m", "bot.action_server"], "started through the token-checking launcher"


def test_scaled_internal_processes_bind_loopback_and_nginx_keeps_its_listeners(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stack, procs = scaled_procs(tmp_path)
    for p in procs:
        if p.name != "nginx":
            assert listen_arg(p) == "127.0.0.1", p.name
    stack.render()
    conf = stack.nginx_conf.read_text()
    assert {
        line.split()[1].rstrip(";") for line in conf.splitlines() if line.strip().startswith("listen ")
    } == {f"127.0.0.1:{port}" for port in (7080, 7005, 7800, 7055, 7900)}
    servers = [line.split()[1] for line in conf.splitlines() if line.strip().startswith("server 127")]
    assert servers and all(s.startswith("127.0.0.1:") for s in servers)


def test_bind_host_is_one_setting_checked_at_start(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("BIND_HOST", "0.0.0.0")  # noqa: S104 (what the test is about)
    env = processes.stack_env(processes.Ports())
    procs = run_procs(env, tmp_path)
    assert {listen_arg(p) for p in procs} == {"0.0.0.0"}  # noqa: S104
    # Health checks and the services' own URLs still go through loopback.
    assert all(p.health_url.startswith("http://127.0.0.1:") for p in procs)
    assert env["ACTION_ENDPOINT_URL"].startswith("http://127.0.0.1:")

    clean_env.setenv("BIND_HOST", "::1")
    env = processes.stack_env(processes.Ports())
    assert env["RASA_URL"] == "http://[::1]:5005"
    assert {listen_arg(p) for p in run_procs(env, tmp_path)} == {"::1"}

    for bad in ("localhost", "", "127.0.0.1:80", "0.0.0.0; rm -rf /"):
        clean_env.setenv("BIND_HOST", bad)
        with pytest.raises(processes.ConfigError, match="BIND_HOST must be an IP address"):
            processes.stack_env(processes.Ports())


def test_rasa_allows_no_cross_origin_calls_unless_origins_are_named(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rasa = processes.rasa_server(processes.Ports(), processes.stack_env(processes.Ports()), tmp_path, MODEL)
    assert "--cors" not in rasa.cmd and "*" not in rasa.cmd

    clean_env.setenv("RASA_CORS_ORIGINS", "https://chat.example.vn, http://localhost:3000")
    env = processes.stack_env(processes.Ports())
    rasa = processes.rasa_server(processes.Ports(), env, tmp_path, MODEL)
    assert rasa.cmd[rasa.cmd.index("--cors") :] == [
        "--cors",
        "https://chat.example.vn",
        "http://localhost:3000",
    ]

    for bad in ("*", "chat.example.vn", "https://chat.example.vn/path", "https://*", "http://a:b"):
        clean_env.setenv("RASA_CORS_ORIGINS", bad)
        with pytest.raises(processes.ConfigError, match="RASA_CORS_ORIGINS"):
            processes.stack_env(processes.Ports())


def test_every_process_devstack_starts_has_rasa_telemetry_off(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("RASA_TELEMETRY_ENABLED", "true")  # the caller's environment does not turn it on
    env = processes.stack_env(processes.Ports())
    _, scaled_list = scaled_procs(tmp_path)
    procs = run_procs(env, tmp_path) + scaled_list
    # `make shell` and `make train` too: stack_env for the shell, train_env for `rasa train`.
    envs = {p.name: p.env for p in procs} | {"rasa train": model.train_env(), "rasa shell": env}
    assert len(envs) >= 12
    assert {name: e.get("RASA_TELEMETRY_ENABLED") for name, e in envs.items()} == dict.fromkeys(envs, "false")
    # and nothing a test or bench passes as `extra` turns it back on
    extra = processes.stack_env(processes.Ports(), {"RASA_TELEMETRY_ENABLED": "true"})
    assert extra["RASA_TELEMETRY_ENABLED"] == "false"


def test_every_process_gets_the_action_server_token(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = processes.stack_env(processes.Ports())
    assert env["ACTION_SERVER_TOKEN"] == processes.DEV_DEFAULTS["ACTION_SERVER_TOKEN"]
    clean_env.setenv("ACTION_SERVER_TOKEN", "from-the-operator")
    procs = run_procs(processes.stack_env(processes.Ports()), tmp_path)
    assert {p.env["ACTION_SERVER_TOKEN"] for p in procs} == {"from-the-operator"}
    assert all("from-the-operator" not in " ".join(p.cmd) for p in procs), "never on a command line"


def test_a_stack_elsewhere_keeps_its_locks_failures_and_dedupe_files_beside_its_events(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Tests' stacks shared the repository's var/rasa_locks.db (and failures, dedupe files) before.
    env = processes.stack_env(processes.Ports(), {"RASA_EVENTS_DB": str(tmp_path / "rasa_events.db")})
    assert env["RASA_LOCKS_DB"] == str(tmp_path / "rasa_locks.db")
    assert env["BOT_FAILURES_URL"] == f"sqlite:///{tmp_path / 'bot_failures.db'}"
    assert env["CHANNEL_DEDUPE_DB"] == str(tmp_path / "channel_dedupe.db")
    mine = processes.stack_env(processes.Ports(), {"RASA_LOCKS_DB": str(tmp_path / "x.db")})
    assert mine["RASA_LOCKS_DB"] == str(tmp_path / "x.db")  # a value of the caller's still wins
