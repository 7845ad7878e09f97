"""Activation into a real Rasa server with two Sanic workers (make run's default): both workers end on
the new model. (The whole flow, from a misunderstood message through a real finetune, evaluation,
activation and rollback, is tests/browser/test_training_workbench.py.)

Slow (minutes on 2 cores): `pytest -m slow tests/desk/test_training_runs_e2e.py -s` prints the timings.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest

from agent_desk.keys import ENGINE
from devstack import model as devmodel
from devstack import processes
from tests.desk.conftest import desk_settings

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(1500)]


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


async def models_by_worker(url: str, workers: int = 2) -> dict[int, str]:
    """Each worker's model, by pid, from fresh connections until every worker answered (bounded)."""
    seen: dict[int, str] = {}
    for _ in range(400):
        async with aiohttp.ClientSession() as fresh, fresh.get(f"{url}/webhooks/metrics/worker") as resp:
            assert resp.status == 200
            data = await resp.json()
        assert data["workers"] == workers
        seen[data["pid"]] = data["model_file"]
        if len(seen) == workers:
            return seen
    raise AssertionError(f"only {len(seen)} of {workers} workers answered 400 connections")


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
            assert set((await models_by_worker(url)).values()) == {other.name}
            for _ in range(12):  # fresh connections land on either worker
                async with aiohttp.ClientSession() as fresh:
                    assert await rasa_model(fresh, url, token) == other.name
            await activation.rollback(engine, session, settings.training, token, agent.id, agent.display_name)
            assert set((await models_by_worker(url)).values()) == {production.name}
            for _ in range(12):
                async with aiohttp.ClientSession() as fresh:
                    assert await rasa_model(fresh, url, token) == production.name
    finally:
        rasa.stop()
