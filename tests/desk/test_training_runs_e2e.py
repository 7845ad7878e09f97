"""The workbench for real: finetune the current model on a copy of the project with one more example,
score it on every set of tests/nlu, activate it in a real Rasa server (PUT /model), roll back.

Slow (minutes on 2 cores): `pytest -m slow tests/desk/test_training_runs_e2e.py -s` prints the timings.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest

from agent_desk.keys import ENGINE
from agent_desk.training import runs
from devstack import model as devmodel
from devstack import processes
from tests.desk.conftest import add_account, desk_settings, login, wait_for
from tests.desk.test_training_runs import copy_project

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(1500)]
NEW_EXAMPLE = "      - chào ad buổi sáng nha\n"


def add_example(project: Path) -> None:
    """One more greeting in the copy's training data (same labels: Rasa allows a finetune)."""
    path = project / "bot" / "data" / "nlu" / "general.yml"
    text = path.read_text(encoding="utf-8")
    anchor = "  - intent: greet\n    examples: |\n"
    assert anchor in text
    path.write_text(text.replace(anchor, anchor + NEW_EXAMPLE, 1), encoding="utf-8")


def any_model() -> Path:
    """A trained model of this project, current or not (activation does not care which): no training
    when the data changed since the last `make train`."""
    found = sorted(
        [*(devmodel.ROOT / "models").glob("cskh-*.tar.gz"), *devmodel.cache_dir().glob("cskh-*.tar.gz")],
        key=lambda p: p.stat().st_mtime,
    )
    return found[-1] if found else devmodel.ensure_model()


async def rasa_model(session: aiohttp.ClientSession, url: str, token: str) -> str:
    async with session.get(f"{url}/status", params={"token": token}) as resp:
        assert resp.status == 200
        return str((await resp.json())["model_file"])


async def test_finetune_evaluate_activate_and_roll_back(desk_factory, tmp_path: Path) -> None:
    production = devmodel.ensure_model()
    project = copy_project(tmp_path / "project")
    add_example(project)
    ports = processes.Ports.free()
    env = processes.stack_env(
        ports,
        {
            "RASA_EVENTS_DB": str(tmp_path / "rasa_events.db"),
            "RASA_URL": f"http://127.0.0.1:{ports.rasa}",
        },
    )
    # One Sanic worker (the next test covers two): one model load per activation.
    rasa = processes.rasa_server(ports, env, tmp_path / "log", production, workers=1)
    rasa.start()
    try:
        rasa.wait_healthy(900)
        url, token = env["RASA_URL"], env["RASA_AUTH_TOKEN"]
        settings = desk_settings(
            tmp_path,
            env={
                "RASA_URL": url,
                "RASA_AUTH_TOKEN": token,
                "TRAINING_PROJECT_DIR": str(project),
                "TRAINING_MODELS_DIR": str(tmp_path / "workbench"),
            },
        )
        client = await desk_factory(settings)
        await add_account(client, "hung", role="supervisor")
        csrf = await login(client, "hung")
        started = time.monotonic()
        resp = await client.post("/training/runs", data={"csrf_token": csrf}, allow_redirects=False)
        assert resp.status == 303, await resp.text()
        phases: dict[str, float] = {}
        max_epochs: dict[str, int] = {}

        async def finished() -> dict | None:
            data = await (await client.get("/training/runs/1/progress")).json()
            p = data["progress"]
            phases.setdefault(p.get("phase", ""), time.monotonic() - started)
            if p.get("component") and p.get("epochs"):
                max_epochs[p["component"]] = p["epochs"]
            return None if data["open"] else data

        final = await wait_for(finished, 1400, "the training run to end")
        total = time.monotonic() - started
        assert final["status"] == "succeeded", final
        assert final["progress"]["mode"] == "finetune", final
        training = phases.get("evaluating", total)
        print(
            f"\n>> finetune {training:.0f} s (epochs per component {max_epochs}), "
            f"evaluation of both models {total - training:.0f} s, total {total:.0f} s"
        )
        assert max_epochs, "the progress showed epochs"
        report = await runs.report(client.app[ENGINE], 1)
        assert report is not None and {s["stem"] for s in report["sets"]} >= {"heldout", "heldout_chats"}
        assert "report_only · có dấu" not in report["predictions"]
        page = await (await client.get("/training/runs/1")).text()
        assert "report_only · có dấu" in page and production.name in page
        async with aiohttp.ClientSession() as session:
            assert await rasa_model(session, url, token) == production.name
            if 'id="below-threshold"' in page:
                # The finetuned model scored under nlu_thresholds.yml: it must be refused (and the
                # activation path is then exercised with thresholds lowered in the copy).
                resp = await client.post(
                    "/training/runs/1/activate", data={"csrf_token": csrf}, allow_redirects=False
                )
                assert resp.status == 409
                print(">> below the thresholds: refused; thresholds lowered in the copy to go on")
                (project / "nlu_thresholds.yml").write_text(
                    "min_accuracy: 0.5\nmin_accuracy_no_diacritics: 0.5\n", encoding="utf-8"
                )
            t0 = time.monotonic()
            resp = await client.post(
                "/training/runs/1/activate", data={"csrf_token": csrf}, allow_redirects=False
            )
            assert resp.status == 303, await resp.text()
            print(f">> activation (PUT /model) {time.monotonic() - t0:.0f} s")
            assert await rasa_model(session, url, token) == "workbench-1.tar.gz"
            # The new model answers.
            async with session.post(
                f"{url}/model/parse", params={"token": token}, json={"text": "chào ad buổi sáng nha"}
            ) as r:
                assert r.status == 200 and (await r.json())["intent"]["name"] == "greet"
            t0 = time.monotonic()
            resp = await client.post("/training/rollback", data={"csrf_token": csrf}, allow_redirects=False)
            assert resp.status == 303, await resp.text()
            print(f">> rollback {time.monotonic() - t0:.0f} s")
            assert await rasa_model(session, url, token) == production.name
        page = await (await client.get("/training/runs")).text()
        assert "khôi phục" in page and "workbench-1.tar.gz" in page
    finally:
        rasa.stop()


async def test_activation_reaches_every_worker_of_a_real_rasa(desk_factory, tmp_path: Path) -> None:
    """A Rasa with 2 Sanic workers (make run's default): PUT /model swaps one worker's model; the desk
    repeats it on the connections that reach a worker still on the old one, until all agree."""
    import shutil

    from agent_desk import accounts
    from agent_desk.training import activation

    production = any_model()
    other = tmp_path / "models" / "copy-of-production.tar.gz"
    other.parent.mkdir()
    shutil.copy2(production, other)
    ports = processes.Ports.free()
    env = processes.stack_env(
        ports,
        {"RASA_EVENTS_DB": str(tmp_path / "rasa_events.db"), "RASA_URL": f"http://127.0.0.1:{ports.rasa}"},
    )
    rasa = processes.rasa_server(ports, env, tmp_path / "log", production, workers=2)
    rasa.start()
    try:
        rasa.wait_healthy(900)
        url, token = env["RASA_URL"], env["RASA_AUTH_TOKEN"]
        settings = desk_settings(tmp_path, env={"RASA_URL": url, "RASA_AUTH_TOKEN": token})
        client = await desk_factory(settings, background=False)
        engine = client.app[ENGINE]
        agent = await accounts.create(engine, "hung", "mat-khau-rat-dai-123", "supervisor", "Hùng")
        async with aiohttp.ClientSession() as session:
            t0 = time.monotonic()
            done = await activation.activate(
                engine, session, settings.training, token, other, agent.id, agent.display_name
            )
            print(f"\n>> activation on 2 workers {time.monotonic() - t0:.0f} s")
            assert done.result == "ok"
            for _ in range(12):  # fresh connections land on either worker
                async with aiohttp.ClientSession() as fresh:
                    assert await rasa_model(fresh, url, token) == other.name
            await activation.rollback(engine, session, settings.training, token, agent.id, agent.display_name)
            for _ in range(12):
                async with aiohttp.ClientSession() as fresh:
                    assert await rasa_model(fresh, url, token) == production.name
    finally:
        rasa.stop()
