"""The workbench's training runs, report and activation (issue 19, part B), with a fake `rasa train`
and evaluation (a script that prints tqdm-like lines) and small fake Rasa servers. The real training,
evaluation and activation into a real Rasa server: test_training_runs_e2e.py."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent_desk import accounts
from agent_desk.config import Settings
from agent_desk.keys import ENGINE
from agent_desk.training import activation, runner, runs
from agent_desk.training.runner import Progress, eta_seconds
from tests.desk.conftest import add_account, csrf_of, desk_settings, login, wait_for
from tests.desk.training_helpers import project_copy

pytestmark = pytest.mark.timeout(120)

FAKE = r"""
import json, os, sys, time
args = sys.argv[1:]
def opt(name):
    return args[args.index(name) + 1] if name in args else None
pid_file = os.environ.get("CSKH_TRAIN_FAKE_PID_FILE")
if pid_file:
    open(pid_file, "a").write(f"{os.getpid()}\n")
if args and args[0] == "train":
    if opt("--finetune") and os.environ.get("CSKH_TRAIN_FAKE_REFUSE_FINETUNE"):
        print("InvalidConfigException: Cannot finetune because NLU training data contains new labels")
        sys.exit(1)
    epochs = int(os.environ.get("CSKH_TRAIN_FAKE_EPOCHS", "5"))
    delay = float(os.environ.get("CSKH_TRAIN_FAKE_DELAY", "0.05"))
    print("INFO rasa.engine.training.hooks - Starting to train component 'DIETClassifier'.", flush=True)
    for i in range(epochs + 1):
        pct, left = int(100 * i / epochs), int((epochs - i) * delay)
        sys.stderr.write(f"\rEpochs:  {pct}%|##   | {i}/{epochs} [00:01<00:{left:02d}, 2.25s/it, t_loss=1.2]")
        sys.stderr.flush()
        time.sleep(delay)
    out = os.path.join(opt("--out"), opt("--fixed-model-name") + ".tar.gz")
    open(out, "wb").write(b"fake model " + (opt("--finetune") or "full").encode())
    print(f"Your Rasa model is trained and saved at '{out}'.", flush=True)
    sys.exit(int(os.environ.get("CSKH_TRAIN_FAKE_TRAIN_RC", "0")))
models = [args[i + 1] for i, a in enumerate(args) if a == "--model"]
outs = [args[i + 1] for i, a in enumerate(args) if a == "--out"]
for model, out in zip(models, outs):
    new = "workbench-" in model
    acc = float(os.environ.get("CSKH_TRAIN_FAKE_ACCURACY", "0.97")) if new else 0.95
    thank = {"precision": 1, "recall": 1, "f1": 0.9 if new else 1.0, "support": 2}
    sets = []
    for stem, only in (("heldout", False), ("report_only", True)):
        for variant, plain in (("có dấu", False), ("không dấu", True)):
            sets.append({
                "name": f"{stem} · {variant}", "stem": stem, "variant": variant,
                "no_diacritics": plain, "report_only": only, "examples": 4,
                "accuracy": acc, "macro_f1": acc, "weighted_f1": acc,
                "per_intent": {"greet": {"precision": 1, "recall": acc, "f1": acc, "support": 2},
                               "thank": thank},
                "top_confusions": [["greet", "thank", 1 if new else 2]],
                "labels": ["greet", "thank"], "confusion": [[1, 1], [0, 2]],
            })
    predictions = {"heldout · có dấu": {"chao ad": ["greet", "greet" if new else "thank", 0.9],
                                        "cam on": ["thank", "thank", 0.9]}}
    os.makedirs(os.path.dirname(out), exist_ok=True)
    thresholds = {"min_accuracy": 0.93, "min_accuracy_no_diacritics": 0.93}
    report = {"format": 1, "model": os.path.basename(model), "sets": sets,
              "predictions": predictions, "thresholds": thresholds}
    json.dump(report, open(out, "w"))
"""


class FakeRasa:
    """Rasa's /status and PUT /model, enough to see what the desk loads where. With `workers` > 1,
    like Sanic's workers sharing a socket: each connection lands on one worker (round robin), and a
    PUT swaps the model of that worker only. `skew` first connections all land on worker 0 (the kernel
    may do that under load). `/webhooks/metrics/worker` says which worker answered, like
    connectors/metrics_input.py (`worker_ids=False`: a Rasa without that channel)."""

    def __init__(
        self, model: str, fail_put: bool = False, workers: int = 1, skew: int = 0, worker_ids: bool = True
    ) -> None:
        self.models = [model] * workers
        self.fail_put = fail_put
        self.skew = skew
        self.worker_auth: list[str] = []
        self.puts: list[str] = []
        self.tokens: list[str] = []
        self.connections: dict[Any, int] = {}
        self.app = web.Application()
        self.app.router.add_get("/status", self.status)
        self.app.router.add_put("/model", self.put)
        if worker_ids:
            self.app.router.add_get("/webhooks/metrics/worker", self.worker)
        self.server: TestServer | None = None

    @property
    def model(self) -> str:
        return self.models[0]

    def _worker(self, request: web.Request) -> int:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer not in self.connections:
            n = len(self.connections)
            self.connections[peer] = 0 if n < self.skew else n % len(self.models)
        return self.connections[peer]

    async def worker(self, request: web.Request) -> web.Response:
        self.worker_auth.append(request.headers.get("Authorization", ""))
        w = self._worker(request)
        return web.json_response(
            {"pid": 1000 + w, "workers": len(self.models), "model_file": Path(self.models[w]).name}
        )

    async def status(self, request: web.Request) -> web.Response:
        self.tokens.append(request.query.get("token", ""))
        return web.json_response({"model_file": Path(self.models[self._worker(request)]).name})

    async def put(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.puts.append(body["model_file"])
        if self.fail_put and "workbench-" in body["model_file"]:
            return web.json_response({"message": "boom"}, status=500)
        self.models[self._worker(request)] = body["model_file"]
        return web.Response(status=204)

    async def start(self) -> str:
        self.server = TestServer(self.app)
        await self.server.start_server()
        return str(self.server.make_url("")).rstrip("/")

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


@pytest.fixture
async def fake_rasas(tmp_path: Path):
    production = tmp_path / "prod-models" / "cskh-prod.tar.gz"
    production.parent.mkdir()
    production.write_bytes(b"production model")
    made: list[FakeRasa] = []

    async def make(
        n: int = 1, fail_second: bool = False, workers: int = 1, skew: int = 0, worker_ids: bool = True
    ) -> tuple[list[FakeRasa], list[str]]:
        fakes = [
            FakeRasa(str(production), fail_second and i == 1, workers, skew, worker_ids) for i in range(n)
        ]
        made.extend(fakes)
        return fakes, [await f.start() for f in fakes]

    yield make
    for f in made:
        await f.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return project_copy(tmp_path)


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "fake_rasa.py"
    script.write_text(FAKE, encoding="utf-8")
    pid_file = tmp_path / "pids.txt"
    monkeypatch.setenv("CSKH_TRAIN_FAKE_PID_FILE", str(pid_file))
    return script


def training_settings(
    tmp_path: Path, project: Path, script: Path, urls: list[str], env: dict[str, str] | None = None
) -> Settings:
    settings = desk_settings(
        tmp_path,
        env={
            "TRAINING_PROJECT_DIR": str(project),
            "TRAINING_MODELS_DIR": str(tmp_path / "workbench"),
            "TRAINING_RASA_URLS": ",".join(urls),
            "RASA_AUTH_TOKEN": "secret-rasa-token-123",
            **(env or {}),
        },
    )
    training = dataclasses.replace(
        settings.training,
        train_command=(sys.executable, str(script)),
        eval_command=(sys.executable, str(script)),
    )
    # The production model of the fake servers lives outside the usual places: tell the resolver.
    return dataclasses.replace(settings, training=training)


async def start_desk(desk_factory, settings: Settings, role: str = "supervisor") -> tuple[TestClient, str]:
    client = await desk_factory(settings)
    await add_account(client, "lan", role=role)
    return client, await login(client, "lan")


async def wait_done(client: TestClient, run_id: int, timeout: float = 60) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        resp = await client.get(f"/training/runs/{run_id}/progress")
        data = await resp.json()
        return None if data["open"] else data

    return await wait_for(done, timeout, f"run {run_id} to end")


def _known(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Let the resolver find the fake production model (tmp_path/prod-models)."""
    original = activation.model_dirs

    def dirs(settings):  # type: ignore[no-untyped-def]
        return [*original(settings), tmp_path / "prod-models"]

    monkeypatch.setattr(activation, "model_dirs", dirs)


# ---------------------------------------------------------------------- unit
def test_progress_parses_tqdm_redraws_and_components() -> None:
    p = Progress(phase="training")
    assert p.feed("INFO rasa.engine.training.hooks - Starting to train component 'DIETClassifier'.")
    assert p.component == "DIETClassifier"
    assert p.feed("Epochs:   0%|          | 0/50 [00:00<?, ?it/s]")
    assert (p.epoch, p.epochs, p.eta) == (0, 50, None)
    assert p.feed("Epochs:  22%|██▏       | 11/50 [01:28<04:35,  7.06s/it, t_loss=2.3, i_acc=0.7]")
    assert (p.epoch, p.epochs, p.eta) == (11, 50, 275)
    assert p.as_dict()["percent"] == 22
    assert not p.feed("Epochs:  22%|██▏       | 11/50 [01:28<04:35,  7.06s/it, t_loss=2.3, i_acc=0.7]")
    assert p.feed("Epochs: 100%|██████████| 60/60 [1:02:03<00:00, 1.0s/it]")
    assert (p.epoch, p.epochs, p.eta) == (60, 60, 0)
    assert not p.feed("some other log line")
    assert eta_seconds("1:04:35") == 3875 and eta_seconds("?") is None


# ---------------------------------------------------------------------- train, report, one at a time
async def test_training_progress_report_and_one_at_a_time(
    desk_factory, tmp_path: Path, project: Path, fake_env: Path, fake_rasas, monkeypatch: pytest.MonkeyPatch
) -> None:
    _known(monkeypatch, tmp_path)
    monkeypatch.setenv("CSKH_TRAIN_FAKE_EPOCHS", "20")
    monkeypatch.setenv("CSKH_TRAIN_FAKE_DELAY", "0.15")
    fakes, urls = await fake_rasas(1)
    client, csrf = await start_desk(desk_factory, training_settings(tmp_path, project, fake_env, urls))
    page = await client.get("/training/runs")
    text = await page.text()
    assert page.status == 200 and "Huấn luyện mô hình mới" in text and "cskh-prod.tar.gz" in text
    resp = await client.post("/training/runs", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/training/runs/1"
    # A second start while the first runs: 409 with a clear message.
    again = await client.post("/training/runs", data={"csrf_token": csrf}, allow_redirects=False)
    assert again.status == 409
    assert "mỗi lúc chỉ huấn luyện một mô hình" in await again.text()
    detail = await client.get("/training/runs/1")
    body = await detail.text()
    assert "training_runs.js" in body and "<script>" not in body  # no inline script (CSP)

    async def epochs_seen() -> dict[str, Any] | None:
        data = await (await client.get("/training/runs/1/progress")).json()
        p = data["progress"]
        return data if p.get("epochs") == 20 and 0 < p.get("epoch", 0) < 20 else None

    data = await wait_for(epochs_seen, 30, "epoch progress")
    assert data["status"] == "running" and data["progress"]["component"] == "DIETClassifier"
    assert data["progress"]["mode"] == "finetune"
    final = await wait_done(client, 1)
    assert final["status"] == "succeeded", final
    run = await runs.get(client.app[ENGINE], 1)
    assert run is not None and run.base_model and run.base_model.endswith("cskh-prod.tar.gz")
    assert (await asyncio.to_thread(Path(run.model_path or "").read_bytes)).startswith(b"fake model")
    # The report side by side with production's (computed once and cached under reports/).
    page = await (await client.get("/training/runs/1")).text()
    assert "heldout · có dấu" in page and "97.0 %" in page and "95.0 %" in page
    assert "Kích hoạt mô hình này" in page
    assert "chao ad" in page  # changed prediction: thank -> greet (fixed)
    assert "1 sửa đúng" in page
    cached = list((tmp_path / "workbench" / "reports").glob("*-*.json"))
    assert cached, "production's report is cached by model hash"
    # The per-set selector is bounded to the report's sets.
    page = await (await client.get("/training/runs/1?set=" + "x" * 5000)).text()
    assert "heldout · có dấu" in page
    assert fakes[0].tokens and all(t == "secret-rasa-token-123" for t in fakes[0].tokens)
    # A new run may start once the first is over.
    resp = await client.post("/training/runs", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303
    assert (await wait_done(client, 2))["status"] == "succeeded"


async def test_full_training_when_rasa_refuses_finetune(
    desk_factory, tmp_path: Path, project: Path, fake_env: Path, fake_rasas, monkeypatch: pytest.MonkeyPatch
) -> None:
    _known(monkeypatch, tmp_path)
    monkeypatch.setenv("CSKH_TRAIN_FAKE_REFUSE_FINETUNE", "1")
    _, urls = await fake_rasas(1)
    client, csrf = await start_desk(desk_factory, training_settings(tmp_path, project, fake_env, urls))
    await client.post("/training/runs", data={"csrf_token": csrf}, allow_redirects=False)
    final = await wait_done(client, 1)
    assert final["status"] == "succeeded", final
    assert final["progress"]["mode"] == "full" and "học lại từ đầu" in final["progress"]["note"]
    model = tmp_path / "workbench" / "workbench-1.tar.gz"
    assert await asyncio.to_thread(model.read_bytes) == b"fake model full"


async def test_failed_training_shows_vietnamese_error(
    desk_factory, tmp_path: Path, project: Path, fake_env: Path, fake_rasas, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSKH_TRAIN_FAKE_TRAIN_RC", "3")
    _, urls = await fake_rasas(1)
    client, csrf = await start_desk(desk_factory, training_settings(tmp_path, project, fake_env, urls))
    await client.post("/training/runs", data={"csrf_token": csrf}, allow_redirects=False)
    final = await wait_done(client, 1)
    assert final["status"] == "failed" and "Huấn luyện thất bại" in final["error"]
    assert "Traceback" not in final["error"]
    assert not (tmp_path / "workbench" / "workbench-1.tar.gz").exists()
    page = await client.get("/training/runs/1")
    assert page.status == 200 and "Huấn luyện thất bại" in await page.text()


async def test_cancel_kills_the_training_and_removes_partial_files(
    desk_factory, tmp_path: Path, project: Path, fake_env: Path, fake_rasas, monkeypatch: pytest.MonkeyPatch
) -> None:
    _known(monkeypatch, tmp_path)
    monkeypatch.setenv("CSKH_TRAIN_FAKE_EPOCHS", "400")
    monkeypatch.setenv("CSKH_TRAIN_FAKE_DELAY", "0.1")
    _, urls = await fake_rasas(1)
    client, csrf = await start_desk(desk_factory, training_settings(tmp_path, project, fake_env, urls))
    await client.post("/training/runs", data={"csrf_token": csrf}, allow_redirects=False)

    async def running() -> bool:
        data = await (await client.get("/training/runs/1/progress")).json()
        return data["progress"].get("epoch", 0) > 0

    await wait_for(running, 30, "training to run")
    pid = int((tmp_path / "pids.txt").read_text().split()[0])
    (tmp_path / "workbench" / "workbench-1.tar.gz").write_bytes(b"partial")
    no_csrf = await client.post("/training/runs/1/cancel", allow_redirects=False)
    assert no_csrf.status == 403
    resp = await client.post("/training/runs/1/cancel", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303
    final = await wait_done(client, 1, 20)
    assert final["status"] == "cancelled"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (tmp_path / "workbench" / "workbench-1.tar.gz").exists()
    again = await client.post("/training/runs/1/cancel", data={"csrf_token": csrf}, allow_redirects=False)
    assert again.status == 409


# ---------------------------------------------------------------------- activation
async def _succeeded_run(client: TestClient, csrf: str) -> None:
    resp = await client.post("/training/runs", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303
    assert (await wait_done(client, 1))["status"] == "succeeded"


async def test_below_threshold_cannot_be_activated(
    desk_factory, tmp_path: Path, project: Path, fake_env: Path, fake_rasas, monkeypatch: pytest.MonkeyPatch
) -> None:
    _known(monkeypatch, tmp_path)
    monkeypatch.setenv("CSKH_TRAIN_FAKE_ACCURACY", "0.80")  # nlu_thresholds.yml: 0.93
    fakes, urls = await fake_rasas(1)
    client, csrf = await start_desk(desk_factory, training_settings(tmp_path, project, fake_env, urls))
    await _succeeded_run(client, csrf)
    page = await (await client.get("/training/runs/1")).text()
    assert 'id="below-threshold"' in page and "Kích hoạt mô hình này" not in page
    resp = await client.post("/training/runs/1/activate", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 409
    text = await resp.text()
    assert "dưới ngưỡng" in text and "heldout · có dấu: 80.0 % &lt; ngưỡng 93.0 %" in text
    assert "report_only" not in text  # the report-only set is not gated
    assert fakes[0].puts == []


async def test_activate_on_two_servers_and_roll_back(
    desk_factory, tmp_path: Path, project: Path, fake_env: Path, fake_rasas, monkeypatch: pytest.MonkeyPatch
) -> None:
    _known(monkeypatch, tmp_path)
    fakes, urls = await fake_rasas(2)
    client, csrf = await start_desk(desk_factory, training_settings(tmp_path, project, fake_env, urls))
    await _succeeded_run(client, csrf)
    new = str(tmp_path / "workbench" / "workbench-1.tar.gz")
    resp = await client.post("/training/runs/1/activate", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert [f.model for f in fakes] == [new, new]
    page = await (await client.get("/training/runs")).text()
    assert "workbench-1.tar.gz" in page and "thành công" in page and "Lan" in page
    resp = await client.post("/training/rollback", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert all(f.model.endswith("cskh-prod.tar.gz") for f in fakes)
    async with client.app[ENGINE].connect() as conn:
        rows = (await conn.execute(sa.select(activation.model_activations))).all()
    assert [(r.kind, r.result) for r in rows] == [("activate", "ok"), ("rollback", "ok")]
    assert rows[0].model == new and rows[0].previous_model.endswith("cskh-prod.tar.gz")


@pytest.mark.parametrize("worker_ids", [True, False], ids=["worker-endpoint", "status-only"])
async def test_every_worker_of_a_multi_worker_rasa_gets_the_model(
    desk_factory,
    tmp_path: Path,
    project: Path,
    fake_env: Path,
    fake_rasas,
    monkeypatch: pytest.MonkeyPatch,
    worker_ids: bool,
) -> None:
    _known(monkeypatch, tmp_path)
    fakes, urls = await fake_rasas(1, workers=2, worker_ids=worker_ids)
    client, csrf = await start_desk(desk_factory, training_settings(tmp_path, project, fake_env, urls))
    await _succeeded_run(client, csrf)
    resp = await client.post("/training/runs/1/activate", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert [Path(m).name for m in fakes[0].models] == ["workbench-1.tar.gz"] * 2
    assert len(fakes[0].puts) >= 2  # the PUT was repeated until the other worker had it too
    resp = await client.post("/training/rollback", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert [Path(m).name for m in fakes[0].models] == ["cskh-prod.tar.gz"] * 2


async def test_every_worker_gets_the_model_when_one_worker_takes_the_first_connections(
    desk_factory, tmp_path: Path, project: Path, fake_env: Path, fake_rasas, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CI failure of 2026-12: the kernel handed the status checks to the worker that had the
    model, so six agreeing answers hid a worker still on the old one (rollback left it there).
    Asking which worker answered finds the other one."""
    _known(monkeypatch, tmp_path)
    fakes, urls = await fake_rasas(1, workers=2, skew=12)
    settings = training_settings(tmp_path, project, fake_env, urls, {"METRICS_TOKEN": "metrics-token-abc"})
    client, csrf = await start_desk(desk_factory, settings)
    await _succeeded_run(client, csrf)
    resp = await client.post("/training/runs/1/activate", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert [Path(m).name for m in fakes[0].models] == ["workbench-1.tar.gz"] * 2
    assert set(fakes[0].worker_auth) == {"Bearer metrics-token-abc"}
    fakes[0].connections.clear()  # the rollback meets the same skew
    resp = await client.post("/training/rollback", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert [Path(m).name for m in fakes[0].models] == ["cskh-prod.tar.gz"] * 2


async def test_a_worker_that_never_answers_fails_the_activation_and_restores(
    desk_factory, tmp_path: Path, project: Path, fake_env: Path, fake_rasas, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker the desk never meets (all connections land on the other one): activation fails with a
    message and the server gets its previous model back; nothing is left half-activated."""
    _known(monkeypatch, tmp_path)
    monkeypatch.setattr(activation, "WORKER_PROBES", 20)
    fakes, urls = await fake_rasas(1, workers=2, skew=10_000)
    client, csrf = await start_desk(desk_factory, training_settings(tmp_path, project, fake_env, urls))
    await _succeeded_run(client, csrf)
    resp = await client.post("/training/runs/1/activate", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 502
    assert "Kích hoạt thất bại" in await resp.text()
    assert [Path(m).name for m in fakes[0].models] == ["cskh-prod.tar.gz"] * 2
    engine = client.app[ENGINE]
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(activation.model_activations))).one()
    assert row.result == "failed" and "worker" in row.detail


async def test_failure_on_one_server_rolls_the_other_back(
    desk_factory, tmp_path: Path, project: Path, fake_env: Path, fake_rasas, monkeypatch: pytest.MonkeyPatch
) -> None:
    _known(monkeypatch, tmp_path)
    fakes, urls = await fake_rasas(2, fail_second=True)
    client, csrf = await start_desk(desk_factory, training_settings(tmp_path, project, fake_env, urls))
    await _succeeded_run(client, csrf)
    resp = await client.post("/training/runs/1/activate", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 502
    text = await resp.text()
    assert "Kích hoạt thất bại" in text and "đã nạp lại mô hình cũ" in text
    assert "secret-rasa-token" not in text
    first, second = fakes
    assert first.puts[0].endswith("workbench-1.tar.gz") and first.puts[1].endswith("cskh-prod.tar.gz")
    assert first.model.endswith("cskh-prod.tar.gz") and second.model.endswith("cskh-prod.tar.gz")
    async with client.app[ENGINE].connect() as conn:
        row = (await conn.execute(sa.select(activation.model_activations))).one()
    assert row.result == "failed" and "mã 500" in row.detail
    # Nothing was activated: nothing to roll back.
    resp = await client.post("/training/rollback", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 409


# ---------------------------------------------------------------------- roles, CSRF, bounds
async def test_roles_csrf_and_bounds(
    desk_factory, tmp_path: Path, project: Path, fake_env: Path, fake_rasas
) -> None:
    _, urls = await fake_rasas(1)
    client = await desk_factory(training_settings(tmp_path, project, fake_env, urls))
    await add_account(client, "agent1", role="agent")
    csrf = await login(client, "agent1")
    for path in ("/training/runs", "/training/runs/1", "/training/runs/1/progress"):
        resp = await client.get(path)
        assert resp.status == 403, path
    resp = await client.post("/training/runs", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 403
    resp = await client.post("/training/rollback", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 403
    await client.post("/logout", data={"csrf_token": csrf})
    if "trainer" in accounts.ROLES:
        await add_account(client, "trainer1", role="trainer")
        csrf = await login(client, "trainer1")
        assert (await client.get("/training/runs")).status == 200
        await client.post("/logout", data={"csrf_token": csrf})
    await add_account(client, "sup1", role="supervisor")
    await login(client, "sup1")
    assert (await client.post("/training/runs", allow_redirects=False)).status == 403  # no CSRF token
    assert (await client.post("/training/rollback", allow_redirects=False)).status == 403
    assert await runs.open_run_id(client.app[ENGINE]) is None
    for path in ("/training/runs/99999", "/training/runs/0", "/training/runs/99999999999999999999"):
        assert (await client.get(path)).status == 404, path
    csrf = await csrf_of(client, "/training/runs")
    resp = await client.post("/training/runs/5/activate", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 404
    anonymous = await desk_factory(training_settings(tmp_path, project, fake_env, urls))
    resp = await anonymous.get("/training/runs", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/login")


async def test_production_unknown_when_rasa_is_down(
    desk_factory, tmp_path: Path, project: Path, fake_env: Path
) -> None:
    client, _ = await start_desk(
        desk_factory, training_settings(tmp_path, project, fake_env, ["http://127.0.0.1:9"])
    )
    resp = await client.get("/training/runs")
    assert resp.status == 200 and "Không liên lạc được Rasa http://127.0.0.1:9" in await resp.text()


# ---------------------------------------------------------------------- two desks, restarts
async def test_one_training_across_two_desks(
    desk_factory, tmp_path: Path, project: Path, fake_env: Path, fake_rasas, monkeypatch: pytest.MonkeyPatch
) -> None:
    _known(monkeypatch, tmp_path)
    monkeypatch.setenv("CSKH_TRAIN_FAKE_EPOCHS", "100")
    monkeypatch.setenv("CSKH_TRAIN_FAKE_DELAY", "0.05")
    _, urls = await fake_rasas(1)
    settings = training_settings(tmp_path, project, fake_env, urls)
    a, csrf_a = await start_desk(desk_factory, settings)
    b = await desk_factory(settings)
    csrf_b = await login(b, "lan")
    assert (await a.post("/training/runs", data={"csrf_token": csrf_a}, allow_redirects=False)).status == 303
    resp = await b.post("/training/runs", data={"csrf_token": csrf_b}, allow_redirects=False)
    assert resp.status == 409
    # The cancel reaches the training through the database, whichever desk got the click.
    resp = await b.post("/training/runs/1/cancel", data={"csrf_token": csrf_b}, allow_redirects=False)
    assert resp.status == 303
    assert (await wait_done(a, 1, 20))["status"] == "cancelled"


async def test_concurrent_creates_leave_one_open_run(tmp_path: Path, desk_factory) -> None:
    client = await desk_factory(desk_settings(tmp_path), background=False)
    engine = client.app[ENGINE]
    agent = await accounts.create(engine, "sup", "mat-khau-rat-dai-123", "supervisor", "Sup")
    results = await asyncio.gather(
        *(runs.create(engine, runs.new_owner(), agent.id, "Sup", None) for _ in range(5)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, int) for r in results) == 1
    assert all(isinstance(r, (int, runs.RunBusy)) for r in results)


@pytest.mark.postgres
async def test_concurrent_creates_on_two_desks_postgres(postgres_url, tmp_path: Path, desk_factory) -> None:
    # postgres_url first: the database outlives the desks using it.
    settings = desk_settings(tmp_path, env={"DESK_DATABASE_URL": postgres_url})
    one = (await desk_factory(settings, background=False)).app[ENGINE]
    two = (await desk_factory(settings, background=False)).app[ENGINE]
    agent = await accounts.create(one, "sup", "mat-khau-rat-dai-123", "supervisor", "Sup")
    for _ in range(5):
        results = await asyncio.gather(
            *(runs.create(e, runs.new_owner(), agent.id, "Sup", None) for e in (one, two) * 4),
            return_exceptions=True,
        )
        won = [r for r in results if isinstance(r, int)]
        assert len(won) == 1 and all(isinstance(r, (int, runs.RunBusy)) for r in results), results
        await runs.finish(one, won[0], "cancelled")
    assert await runs.open_run_id(two) is None


async def test_restart_marks_running_runs_failed(tmp_path: Path, desk_factory) -> None:
    settings = desk_settings(tmp_path)
    first = await desk_factory(settings, background=False)
    engine = first.app[ENGINE]
    agent = await accounts.create(engine, "sup", "mat-khau-rat-dai-123", "supervisor", "Sup")
    # A desk that died mid-training: its process is gone (an impossible pid), heartbeat recent.
    dead_owner = f"{runs.socket.gethostname()}:999999999:abcd"
    run_id = await runs.create(engine, dead_owner, agent.id, "Sup", None)
    await runs.update(engine, run_id, status="running")
    # Another desk elsewhere whose heartbeat stopped long ago.
    async with engine.begin() as conn:
        await conn.execute(
            runs.training_runs.insert().values(
                started_by=agent.id,
                started_by_name="Sup",
                started_at=time.time() - 600,
                status="running",
                active_slot=None,
                owner="other-host:1:ab",
                updated_at=time.time() - 600,
                progress="{}",
            )
        )
    await desk_factory(settings, background=False)  # the desk starts again
    failed = [r for r in await runs.recent(engine) if r.status == "failed"]
    assert len(failed) == 2 and all(r.error == runs.RESTARTED for r in failed)
    assert await runs.open_run_id(engine) is None


async def test_a_failed_finetune_is_not_retried_as_a_full_training(
    desk_factory, tmp_path: Path, project: Path, fake_env: Path, fake_rasas, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only Rasa's own refusal to continue from a model starts a full training; the command line
    (which says --finetune) written into the log is not taken for one."""
    _known(monkeypatch, tmp_path)
    monkeypatch.setenv("CSKH_TRAIN_FAKE_TRAIN_RC", "3")
    _, urls = await fake_rasas(1)
    settings = training_settings(tmp_path, project, fake_env, urls)
    client, csrf = await start_desk(desk_factory, settings)
    await client.post("/training/runs", data={"csrf_token": csrf}, allow_redirects=False)
    final = await wait_done(client, 1)
    assert final["status"] == "failed" and final["progress"]["mode"] == "finetune"
    log_text = runner.log_file(settings.training, 1).read_text(encoding="utf-8")
    assert log_text.count("\n$ ") == 1 and "--finetune" in log_text


def test_training_subprocesses_get_none_of_the_desks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DESK_SECRET_KEY",
        "RASA_AUTH_TOKEN",
        "DESK_API_TOKEN",
        "TELEGRAM_BOT_TOKEN",
        "DESK_DATABASE_URL",
    ):
        monkeypatch.setenv(name, "secret-value")
    env = runner.subprocess_env()
    assert "secret-value" not in env.values()
    assert env["RASA_TELEMETRY_ENABLED"] == "false" and env["PATH"] and env["PYTHONUNBUFFERED"] == "1"
