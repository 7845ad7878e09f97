"""The Rasa patches: installed by the process that starts Rasa, only over the functions they were
written for (deploy/rasa_main.py, deploy/rasa_patches.py, deploy/source_pins.py).

`test_every_pinned_function_is_the_one_its_patch_was_written_for` is the one that fails on a Rasa
(or Sanic) upgrade: re-read each patch named there against the new source, then update its sha256.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import rasa

from deploy import lock_tickets, rasa_main, rasa_patches, rasa_speedups, rest_guard
from deploy.rasa_patches import Patch
from deploy.source_pins import SourcePin, original, replace, source_sha256
from devstack import processes

ROOT = processes.ROOT
PINS = [pin for patch in rasa_main.patches() for pin in patch.pins] + [*rest_guard.PINS, *lock_tickets.PINS]


@pytest.mark.parametrize("pin", PINS, ids=[pin.where for pin in PINS])
def test_every_pinned_function_is_the_one_its_patch_was_written_for(pin: SourcePin) -> None:
    assert pin.drift() is None


def test_the_pins_name_the_original_functions_once_patches_are_installed() -> None:
    from rasa.shared.core.events import Event

    assert rasa_speedups.install()
    patched = Event.resolve_by_type
    assert patched.__module__ == "deploy.rasa_speedups"
    assert original(patched).__module__ == "rasa.shared.core.events"
    assert all(pin.drift() is None for pin in PINS)
    assert rasa_patches.install(rasa_main.patches()) == []  # none refused
    assert {p.name for p in rasa_main.patches()} <= rasa_patches.applied()


def test_a_replacement_keeps_the_kind_of_method_and_names_its_original() -> None:
    class Owner:
        @staticmethod
        def static(x: int) -> int:
            return x

        @classmethod
        def cls(cls, x: int) -> int:
            return x

        def method(self, x: int) -> int:
            return x

    before = {name: source_sha256(getattr(Owner, name)) for name in ("static", "cls", "method")}
    replace(Owner, "static", lambda x: -x)
    replace(Owner, "cls", lambda cls, x: (cls.__name__, -x))
    replace(Owner, "method", lambda self, x: (type(self).__name__, -x))
    assert Owner.static(1) == Owner().static(1) == -1
    assert Owner.cls(1) == ("Owner", -1)
    assert Owner().method(1) == ("Owner", -1)
    assert {name: source_sha256(original(getattr(Owner, name))) for name in before} == before


def test_the_installer_refuses_a_patch_over_a_changed_or_missing_function() -> None:
    where = "rasa.shared.core.domain:Domain.is_empty"
    real = source_sha256(SourcePin(where, "").resolve())
    calls: list[str] = []
    changed = Patch("test.changed", lambda: calls.append("changed"), (SourcePin(where, "0" * 64),))
    missing = Patch("test.missing", lambda: calls.append("missing"), (SourcePin(f"{where}_gone", real),))
    fine = Patch("test.fine", lambda: calls.append("fine"), (SourcePin(where, real),))

    refused = rasa_patches.install([changed, missing, fine, fine])
    assert calls == ["fine"]  # once: install is idempotent
    assert len(refused) == 2
    assert refused[0].startswith("test.changed not installed: " + where + ": source changed")
    assert refused[1].startswith("test.missing not installed: " + where + "_gone: not found")
    assert rasa_patches.install([fine]) == [] and calls == ["fine"]


def test_the_lock_file_pins_the_installed_rasa(tmp_path: Path) -> None:
    assert rasa_main.locked_version() == rasa.__version__
    lock = tmp_path / "requirements.lock"
    lock.write_text("rasa-sdk==3.6.2\nrasa==3.6.21 \\\n    --hash=sha256:00\nsanic==21.12.2\n")
    assert rasa_main.locked_version(lock) == "3.6.21"
    lock.write_text("rasa-sdk==3.6.2\n")
    assert rasa_main.locked_version(lock) is None
    assert rasa_main.locked_version(tmp_path / "absent.lock") is None
    assert rasa_main.start_problems(rasa.__version__, rasa.__version__) == []
    assert rasa_main.start_problems("3.6.22", "3.6.21") == [
        "Rasa 3.6.22 is installed, requirements.lock pins rasa==3.6.21"
    ]


def test_another_rasa_does_not_start_in_production_and_warns_in_development(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(rasa, "__version__", "3.7.0")
    for app_env in ("production", " Production "):
        with pytest.raises(SystemExit) as stopped:
            rasa_main.prepare({"APP_ENV": app_env})
        message = str(stopped.value.code)
        assert message.startswith("Rasa not started (APP_ENV=production)")
        assert (
            f"Rasa 3.7.0 is installed, requirements.lock pins rasa=={rasa_main.locked_version()}" in message
        )

    with pytest.raises(SystemExit, match="APP_ENV must be development, test or production"):
        rasa_main.prepare({"APP_ENV": "prod"})

    capsys.readouterr()
    rasa_main.prepare({"APP_ENV": "development"})
    assert "WARNING: not the Rasa the patches were written for" in capsys.readouterr().err
    assert {p.name for p in rasa_main.patches()} <= rasa_patches.applied()


def test_main_installs_the_patches_then_hands_over_to_rasas_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import rasa.__main__

    seen: list[tuple[list[str], frozenset[str]]] = []
    monkeypatch.setattr(rasa.__main__, "main", lambda: seen.append((list(sys.argv), rasa_patches.applied())))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.delenv("APP_ENV", raising=False)
    rasa_main.main(["run", "--enable-api"])
    [(argv, applied)] = seen
    assert argv == ["rasa", "run", "--enable-api"]
    assert {p.name for p in rasa_main.patches()} <= applied
    err = capsys.readouterr().err
    assert "WARNING" not in err  # this Rasa is the locked one
    assert f"Rasa {rasa.__version__}, {len(rasa_main.patches())} patches installed, 0 refused" in err


def test_rasa_is_started_through_the_patch_installer(tmp_path: Path) -> None:
    rasa_proc = processes.rasa_server(processes.Ports(), {"RASA_AUTH_TOKEN": "t"}, tmp_path, tmp_path / "m")
    assert rasa_proc.cmd[1:4] == ["-m", "deploy.rasa_main", "run"]
    stock = processes.rasa_server(
        processes.Ports(), {"RASA_AUTH_TOKEN": "t"}, tmp_path, tmp_path / "m", launcher="rasa"
    )
    assert stock.cmd[1:4] == ["-m", "rasa", "run"]
    compose = (ROOT / "deploy" / "compose.yml").read_text(encoding="utf-8")
    assert "python -m deploy.rasa_main run " in compose and "python -m rasa run" not in compose


def test_connections_are_closed_now_and_then_after_sanic_recompiled_its_methods() -> None:
    """Sanic recompiles Http.http1_request_header from source when an app starts (TouchUp); the
    patch installed before that (deploy/rasa_main.py) must survive it: it did not (NameError, 500)."""
    code = (
        "import asyncio, aiohttp\n"
        "from sanic import Sanic, response\n"
        "from deploy import rasa_speedups\n"
        "from devstack.processes import free_port\n"
        "assert rasa_speedups.install()\n"
        "app = Sanic('closing', configure_logging=False)\n"
        "app.get('/')(lambda request: response.text('ok'))\n"
        "async def main():\n"
        "    port = free_port()\n"
        "    server = await app.create_server(host='127.0.0.1', port=port, return_asyncio_server=True)\n"
        "    await server.startup()\n"
        "    await server.start_serving()\n"
        "    async with aiohttp.ClientSession() as s:\n"
        "        for _ in range(2):\n"
        "            async with s.get(f'http://127.0.0.1:{port}/') as r:\n"
        "                print(r.status, r.headers.get('connection'), await r.text())\n"
        "    server.close()\n"
        "asyncio.run(main())\n"
    )
    env = {**processes.stack_env(processes.Ports()), "RASA_REQUESTS_PER_CONNECTION": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-2:] == ["200 close ok"] * 2, done.stderr[-3000:]


def test_importing_the_tracker_store_installs_nothing() -> None:
    """It used to install the patches on import, so TRACKER_STORE_TYPE=SQL silently ran without them."""
    code = (
        "import deploy.windowed_tracker_store\n"
        "from rasa.shared.core.events import Event\n"
        "from rasa.core.channels.rest import RestInput\n"
        "from deploy import rasa_patches\n"
        "print(sorted(rasa_patches.applied()), Event.resolve_by_type.__module__,"
        " RestInput._extract_sender.__module__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=processes.stack_env(processes.Ports()),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-3:] == ["[]", "rasa.shared.core.events", "rasa.core.channels.rest"]


def test_production_refuses_a_credentials_file_with_an_unguarded_rest_channel(tmp_path: Path) -> None:
    creds = tmp_path / "credentials.yml"
    creds.write_text("rest:\nconnectors.telegram.TelegramInput:\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="rest in the credentials file"):
        rasa_main.prepare({"APP_ENV": "production"}, ["run", "--credentials", str(creds)])
    assert rasa_main.unguarded_channels([f"--credentials={creds}"]) == ["rest"]
    # The project's own file names only the guarded channel.
    assert rasa_main.unguarded_channels(["--credentials", str(processes.ROOT / "credentials.yml")]) == []
