"""Start and stop the assistant's processes (used by `make run` and by the tests).

One place knows how each process is started, so the development stack and the test fixtures
cannot drift apart.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent

# Development defaults; production refuses to start with them (see each service's settings).
DEV_DEFAULTS = {
    "SIGNING_SERVICE_TOKEN": "dev-signing-token",
    "RASA_AUTH_TOKEN": "dev-rasa-token",
    # Rasa sends it on every action call (endpoints.yml); bot/action_server.py refuses calls without it.
    "ACTION_SERVER_TOKEN": "dev-action-token",
}
# Interface every process of the stack listens on. Loopback unless BIND_HOST says otherwise: the
# servers have no TLS, and Rasa's HTTP API and the action server must not face a network by accident.
DEFAULT_BIND_HOST = "127.0.0.1"


class ConfigError(ValueError):
    """A devstack setting (BIND_HOST, RASA_CORS_ORIGINS) is invalid; the message says which and why."""


def bind_host(env: dict[str, str]) -> str:
    """BIND_HOST, checked: an IP address literal (127.0.0.1, ::1, 0.0.0.0 for every interface...)."""
    value = env.get("BIND_HOST", DEFAULT_BIND_HOST).strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ConfigError(
            f"BIND_HOST must be an IP address such as 127.0.0.1 (the default) or 0.0.0.0, got {value!r}"
        ) from None


def client_host(env: dict[str, str]) -> str:
    """Where the stack's own clients (health checks, service URLs) reach a server bound to BIND_HOST."""
    addr = ipaddress.ip_address(bind_host(env))
    if addr.is_unspecified:  # 0.0.0.0 / :: listen everywhere, loopback included
        return "127.0.0.1" if addr.version == 4 else "[::1]"
    return f"[{addr}]" if addr.version == 6 else str(addr)


def cors_origins(env: dict[str, str]) -> list[str]:
    """RASA_CORS_ORIGINS (space- or comma-separated http(s)://host[:port]); none unless set. No `*`."""
    origins = env.get("RASA_CORS_ORIGINS", "").replace(",", " ").split()
    for origin in origins:
        parts = urlsplit(origin)
        try:
            parts.port  # noqa: B018 (raises ValueError on a port that is not a number)
        except ValueError:
            parts = urlsplit("")
        if (
            parts.scheme not in {"http", "https"}
            or not parts.hostname
            or "*" in origin
            or parts.path
            or parts.query
            or parts.fragment
            or parts.username
        ):
            raise ConfigError(
                "RASA_CORS_ORIGINS lists origins like https://chat.example.vn (scheme://host[:port], "
                f"no path, no wildcard), got {origin!r}"
            )
    return origins


def check_settings(env: dict[str, str]) -> None:
    """Refuse a stack whose network settings are invalid, before anything starts."""
    bind_host(env)
    cors_origins(env)


# Two environments (docs/deploy.md, "Supported runtimes"): Rasa 3.6 and the action server need
# Python 3.10 (.venv); the signing service, desk, notifier and dev TSA run on a supported Python
# (.venv-svc). Each process is started with its own environment's interpreter, whichever of the
# two runs this code (make run, or a test in either environment).
RASA_VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
SVC_VENV_PYTHON = ROOT / ".venv-svc" / "bin" / "python"
_warned: set[str] = set()


def _interpreter(ours: bool, venv_python: Path, what: str) -> str:
    if ours:  # this interpreter is already of the right environment (e.g. its own venv, not .venv*)
        return sys.executable
    if venv_python.exists():
        return str(venv_python)
    if what not in _warned:
        _warned.add(what)
        print(
            f"WARNING: {venv_python.relative_to(ROOT)} is missing (run scripts/bootstrap.sh): starting "
            f"the {what} with {sys.executable}",
            file=sys.stderr,
            flush=True,
        )
    return sys.executable


def svc_python() -> str:
    """Interpreter of the signing service, desk, notifier and dev TSA (Python 3.12+)."""
    return _interpreter(sys.version_info >= (3, 12), SVC_VENV_PYTHON, "service processes")


def rasa_python() -> str:
    """Interpreter of Rasa and the action server (Python 3.10, Rasa's environment)."""
    return _interpreter(sys.version_info[:2] == (3, 10), RASA_VENV_PYTHON, "Rasa processes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Ports:
    rasa: int = 5005
    actions: int = 5055
    signing: int = 8800
    desk: int = 8900
    notifier: int = 8810
    tsa: int = 8820

    @classmethod
    def free(cls) -> Ports:
        return cls(
            rasa=free_port(),
            actions=free_port(),
            signing=free_port(),
            desk=free_port(),
            notifier=free_port(),
            tsa=free_port(),
        )


def stack_env(ports: Ports, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment shared by all processes of one stack."""
    env = {**DEV_DEFAULTS, **os.environ}
    # The caller's values first: the files derived below sit beside its RASA_EVENTS_DB (a test's
    # stack used to share the repository's var/rasa_locks.db, failures and dedupe files).
    env.update(extra or {})
    env["BIND_HOST"] = bind_host(env)
    host = client_host(env)
    env.setdefault("SIGNING_SERVICE_URL", f"http://{host}:{ports.signing}")
    env.setdefault("PUBLIC_BASE_URL", f"http://{host}:{ports.signing}")
    env.setdefault("ACTION_ENDPOINT_URL", f"http://{host}:{ports.actions}/webhook")
    env.setdefault("RASA_URL", f"http://{host}:{ports.rasa}")
    env.setdefault("DESK_URL", f"http://{host}:{ports.desk}")  # the action server asks it queue places
    env.setdefault("RASA_EVENTS_DB", str(ROOT / "var" / "rasa_events.db"))
    var = Path(env["RASA_EVENTS_DB"]).parent
    env.setdefault("RASA_LOCKS_DB", str(var / "rasa_locks.db"))
    # Messages the bot failed on (connectors/common/bot_failures.py), read by the desk of the same stack.
    env.setdefault("BOT_FAILURES_URL", f"sqlite:///{var / 'bot_failures.db'}")
    env.setdefault("CHANNEL_DEDUPE_DB", str(var / "channel_dedupe.db"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Sanic closes idle keep-alive connections after 5 s; Rasa's pooled client to the action server
    # then sometimes writes into a closing socket and the turn is lost. Keep connections longer.
    env.setdefault("SANIC_KEEP_ALIVE_TIMEOUT", "75")
    # Rasa's usage telemetry (Segment) and crash reports (Sentry) send data to third parties: off in
    # every process, whatever the caller's environment says (rasa/telemetry.py reads only this).
    env["RASA_TELEMETRY_ENABLED"] = "false"
    check_settings(env)
    return env


def retire_broker_events_db(path: Path) -> Path | None:
    """Move aside an events file written by the former SQL event broker (no `type_name` column).

    Rasa's tracker store would find its `events` table already there with the broker's three
    columns and fail on the first insert. The old file is kept, renamed, not deleted.
    """
    if not path.exists():
        return None
    with sqlite3.connect(path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    if not columns or "type_name" in columns:
        return None
    target = path.with_name(f"{path.name}.broker-{int(time.time())}")
    path.rename(target)
    return target


@dataclass
class Proc:
    name: str
    cmd: list[str]
    health_url: str
    env: dict[str, str]
    log_path: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log else None,
        )

    def wait_healthy(self, timeout: float, progress_every: float = 0) -> None:
        """Wait until the health URL answers; optionally say every N s that we are still waiting."""
        started = time.monotonic()
        deadline = started + timeout
        next_note = started + progress_every
        while time.monotonic() < deadline:
            if progress_every and time.monotonic() >= next_note:
                print(f"   … {self.name} still starting ({time.monotonic() - started:.0f} s)", flush=True)
                next_note += progress_every
            if self.popen and self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}; see {self.log_path}")
            try:
                # health URLs are http://<client_host>:<port>/... built below
                with urllib.request.urlopen(self.health_url, timeout=2) as r:  # noqa: S310
                    if r.status < 500:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise TimeoutError(
            f"{self.name} not healthy after {timeout:.0f} s ({self.health_url}); see {self.log_path}"
        )

    def stop(self, timeout: float = 10) -> None:
        if not self.popen or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        except ProcessLookupError:
            pass
        if self._log:
            self._log.close()


def signing_service(ports: Ports, env: dict[str, str], log_dir: Path | None) -> Proc:
    return Proc(
        "signing-service",
        [svc_python(), "-m", "signing_service", "--host", bind_host(env), "--port", str(ports.signing)],
        f"http://{client_host(env)}:{ports.signing}/health",
        env,
        log_dir / "signing-service.log" if log_dir else None,
    )


def action_server(ports: Ports, env: dict[str, str], log_dir: Path | None) -> Proc:
    """rasa_sdk's server behind bot/action_server.py: it refuses calls without ACTION_SERVER_TOKEN."""
    return Proc(
        "action-server",
        [
            rasa_python(),
            "-m",
            "bot.action_server",
            "--actions",
            "bot.actions",
            "--host",
            bind_host(env),
            "--port",
            str(ports.actions),
        ],
        f"http://{client_host(env)}:{ports.actions}/health",
        env,
        log_dir / "action-server.log" if log_dir else None,
    )


def rasa_server(
    ports: Ports,
    env: dict[str, str],
    log_dir: Path | None,
    model: Path,
    endpoints: str = "endpoints.yml",
    credentials: str = "credentials.yml",
    workers: int | None = None,
    launcher: str = "deploy.rasa_main",
) -> Proc:
    """`rasa run`; `workers` Sanic worker processes (default RASA_WORKERS, else one per core, at most 2).

    Started through `launcher`: deploy/rasa_main.py installs the project's Rasa patches (checked
    against the Rasa version of requirements.lock); "rasa" runs Rasa as installed (the starter bot's
    benchmark).

    Several workers need a shared lock store (endpoints.yml: the SQLite one) and each loads the
    model (about 600 MiB more memory per worker).
    """
    env = {**env}
    if workers is not None:
        env["SANIC_WORKERS"] = str(workers)
    else:
        env.setdefault("SANIC_WORKERS", env.get("RASA_WORKERS") or str(min(2, os.cpu_count() or 1)))
    if int(env["SANIC_WORKERS"]) > 1:
        # The workers share one listening socket: connections closed now and then (after 20
        # requests on average, deploy/rasa_speedups.py) and one accept per wake-up (libuv, under
        # Sanic's uvloop) let whichever worker is free take the next connection instead of the one
        # that holds a client's pooled connections for ever.
        env.setdefault("RASA_REQUESTS_PER_CONNECTION", "20")
        env.setdefault("UV_TCP_SINGLE_ACCEPT", "1")
    # No CORS unless RASA_CORS_ORIGINS names the web origins allowed to call Rasa from a browser
    # (last on the command line: --cors takes every argument after it).
    origins = cors_origins(env)
    cors = ["--cors", *origins] if origins else []
    return Proc(
        "rasa",
        [
            rasa_python(),
            "-m",
            launcher,
            "run",
            "--model",
            str(model),
            "--interface",
            bind_host(env),
            "--port",
            str(ports.rasa),
            "--enable-api",
            "--auth-token",
            env["RASA_AUTH_TOKEN"],
            "--endpoints",
            endpoints,
            "--credentials",
            credentials,
            *cors,
        ],
        f"http://{client_host(env)}:{ports.rasa}/",
        env,
        log_dir / "rasa.log" if log_dir else None,
    )


def tsa(ports: Ports, env: dict[str, str], log_dir: Path | None, keys: Path) -> Proc:
    """The development RFC 3161 timestamp authority (pyHanko's DummyTimeStamper behind aiohttp)."""
    return Proc(
        "tsa",
        [
            svc_python(),
            "-m",
            "devstack.tsa",
            "--host",
            bind_host(env),
            "--port",
            str(ports.tsa),
            "--keys",
            str(keys),
        ],
        f"http://{client_host(env)}:{ports.tsa}/health",
        env,
        log_dir / "tsa.log" if log_dir else None,
    )


def with_dev_tsa(ports: Ports, env: dict[str, str], keys: Path) -> dict[str, str]:
    """Signatures of the stack are timestamped (PAdES B-T) by the development TSA, unless TSA_URL
    names another one. Its keys are made now, so the signing service finds the root at start-up."""
    if env.get("TSA_URL", "").strip():
        return env
    from devstack.tsa import ROOT_FILE, ensure_keys  # noqa: PLC0415 (pyHanko: only when used)

    ensure_keys(keys)
    return {
        **env,
        "TSA_URL": f"http://{client_host(env)}:{ports.tsa}/",
        "TSA_ROOT_PATH": str(keys / ROOT_FILE),
    }


def notifier(ports: Ports, env: dict[str, str], log_dir: Path | None, name: str = "notifier") -> Proc:
    """Sends notification events to subscribed customers; several may share one PostgreSQL database."""
    return Proc(
        name,
        [svc_python(), "-m", "notifier", "--host", bind_host(env), "--port", str(ports.notifier)],
        f"http://{client_host(env)}:{ports.notifier}/health",
        env,
        log_dir / f"{name}.log" if log_dir else None,
    )


def agent_desk(ports: Ports, env: dict[str, str], log_dir: Path | None) -> Proc:
    # The workbench trains and evaluates in subprocesses that need Rasa: not the desk's interpreter.
    env = {"TRAINING_PYTHON": rasa_python(), **env}
    return Proc(
        "agent-desk",
        [svc_python(), "-m", "agent_desk", "--host", bind_host(env), "--port", str(ports.desk)],
        f"http://{client_host(env)}:{ports.desk}/health",
        env,
        log_dir / "agent-desk.log" if log_dir else None,
    )
