"""Two environments (docs/deploy.md, "Supported runtimes"): each process starts on its own
environment's interpreter, the service lock is complete and free of Rasa, and bootstrap refuses an
unsupported service Python with a clear message."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devstack import processes

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;#]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _fake_python(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 1\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def venvs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    rasa = _fake_python(tmp_path / "venv" / "bin" / "python")
    svc = _fake_python(tmp_path / "venv-svc" / "bin" / "python")
    monkeypatch.setattr(processes, "RASA_VENV_PYTHON", rasa)
    monkeypatch.setattr(processes, "SVC_VENV_PYTHON", svc)
    return rasa, svc


def test_each_process_starts_on_its_own_environment(venvs: tuple[Path, Path], tmp_path: Path) -> None:
    rasa, svc = venvs
    on_rasa_env = sys.version_info[:2] == (3, 10)
    # The other environment's interpreter comes from its venv; this one's is the running interpreter.
    assert processes.svc_python() == (str(svc) if on_rasa_env else sys.executable)
    assert processes.rasa_python() == (sys.executable if on_rasa_env else str(rasa))

    ports, env = processes.Ports.free(), processes.stack_env(processes.Ports())
    started = {
        "signing": processes.signing_service(ports, env, None),
        "desk": processes.agent_desk(ports, env, None),
        "notifier": processes.notifier(ports, env, None),
        "tsa": processes.tsa(ports, env, None, tmp_path),
        "actions": processes.action_server(ports, env, None),
        "rasa": processes.rasa_server(ports, env, None, tmp_path / "model.tar.gz"),
    }
    interpreters = {name: proc.cmd[0] for name, proc in started.items()}
    svc_python, rasa_python = processes.svc_python(), processes.rasa_python()
    assert interpreters == {
        "signing": svc_python,
        "desk": svc_python,
        "notifier": svc_python,
        "tsa": svc_python,
        "actions": rasa_python,
        "rasa": rasa_python,
    }


def test_the_desk_trains_with_rasas_interpreter_unless_told_otherwise(venvs: tuple[Path, Path]) -> None:
    ports = processes.Ports.free()
    env = {k: v for k, v in processes.stack_env(ports).items() if k != "TRAINING_PYTHON"}
    assert processes.agent_desk(ports, env, None).env["TRAINING_PYTHON"] == processes.rasa_python()
    chosen = {**env, "TRAINING_PYTHON": "/opt/rasa/bin/python"}
    assert processes.agent_desk(ports, chosen, None).env["TRAINING_PYTHON"] == "/opt/rasa/bin/python"


def test_a_missing_environment_falls_back_to_this_interpreter_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(processes, "_warned", set())
    missing = processes.ROOT / ".venv-missing" / "bin" / "python"
    assert processes._interpreter(False, missing, "service processes") == sys.executable
    assert processes._interpreter(False, missing, "service processes") == sys.executable
    err = capsys.readouterr().err
    assert err.count("WARNING") == 1 and ".venv-missing/bin/python is missing" in err
    assert processes._interpreter(True, missing, "service processes") == sys.executable


def test_the_service_lock_pins_every_direct_requirement_and_no_rasa() -> None:
    direct = {
        _name(line)
        for line in (ROOT / "requirements-svc.in").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "requirements-svc.lock").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    pinned = {_name(name) for name in pins}
    assert direct - pinned == set()
    assert {"rasa", "rasa-sdk", "tensorflow", "sanic"} & pinned == set()
    versions = {_name(name): version for name, version in pins.items()}
    assert versions["sqlalchemy"].startswith("2.")
    assert tuple(int(p) for p in versions["aiohttp"].split(".")[:2]) >= (3, 12)


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="bootstrap.sh uses coreutils' sha256sum")
def test_bootstrap_refuses_an_unsupported_service_python_clearly(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    (clone / "scripts").mkdir(parents=True)
    for name in ("scripts/bootstrap.sh", "requirements.lock", "requirements-svc.lock"):
        shutil.copy(ROOT / name, clone / name)
    cache = tmp_path / "cache"
    # The Rasa venv is already built (as after any first run): only the service one is missing.
    lock_hash = hashlib.sha256((clone / "requirements.lock").read_bytes()).hexdigest()[:12]
    rasa_venv = cache / f"venv-{lock_hash}"
    _fake_python(rasa_venv / "bin" / "python")
    (rasa_venv / ".complete").touch()
    old_python = _fake_python(tmp_path / "python3.10-only")

    proc = subprocess.run(
        ["bash", str(clone / "scripts" / "bootstrap.sh")],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CSKH_CACHE_DIR": str(cache)}
        | {"CSKH_SVC_PYTHON": str(old_python)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert f"CSKH_SVC_PYTHON={old_python} is not a Python 3.12 or 3.13 interpreter" in proc.stderr
    assert "Python 3.13 or 3.12 is required" in proc.stderr
    assert not list(cache.glob("venv-svc-*"))  # nothing half-built left behind
    assert (clone / ".venv").resolve() == rasa_venv.resolve()
