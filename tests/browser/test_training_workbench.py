"""Issue 19 end to end in Debian's chromium: a customer's message falls back in /demo, a trainer labels
it on the workbench, trains (a finetune of the production model), activates the new model, and the
same message is understood in a new conversation; the rollback brings the old answer back.

Everything is real and private to this module: a git copy of the project's data (the workbench commits
into it), a Rasa server of its own on the current model (activating a model in the session's shared
Rasa would change the other tests' bot; it uses the shared stack's action server and signing service),
and the desk as a process. Screenshots (training-*.png) land in a temporary directory, or in docs/img/
with UPDATE_SCREENSHOTS=1.

Slow: the finetune and the scoring of both models take most of the time (the copy keeps only the
held-out set of tests/nlu; `pytest -m slow tests/browser/test_training_workbench.py -s` prints the
timings).
DESK_TEST_RASA_MODEL=<model> starts Rasa on that model instead of the current data's (as in
test_desk_e2e.py); TRAINING_EPOCH_FRACTION overrides the finetune's fraction of the epochs.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from devstack import processes
from tests.browser.support import PASSWORD, add_desk_accounts
from tests.desk.training_helpers import git, project_copy

ROOT = processes.ROOT
pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(2400)]

# Found by experiment with the model of the current data (cskh-fc83bb2c7d1f27de): NLU fallback (goodbye
# 0.45 under the 0.5 threshold), answered "em chưa hiểu"; one goodbye example and a finetune at 10 % of
# the epochs make it a goodbye. (With the model of the data before, "yo ad" did the same for greet.)
MESSAGE = "good night ad"
INTENT = "goodbye"
ANSWER = "utter_goodbye"
EPOCH_FRACTION = os.environ.get("TRAINING_EPOCH_FRACTION", "0.1")
TRAINER, TRAINER_NAME = "thu", "Thu Trang"
# action_nlu_fallback's first answer: "which of these did you mean" or "please say it differently".
FALLBACK = re.compile(r"^(Em chưa chắc đã hiểu đúng|Xin lỗi, em chưa hiểu ý anh/chị)")


def response_text(name: str) -> str:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    return str(domain["responses"][name][0]["text"])


def processes_mentioning(*needles: str) -> list[str]:
    """Command lines of running processes that contain one of `needles` (the orphan check)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if any(n in line for n in needles)]


def parse(rasa_url: str, token: str, text: str) -> dict:
    import requests

    resp = requests.post(f"{rasa_url}/model/parse", params={"token": token}, json={"text": text}, timeout=120)
    resp.raise_for_status()
    return resp.json()


@dataclass
class Workbench:
    desk: str
    rasa: str
    token: str
    project: Path
    models: Path
    base_model: Path


@pytest.fixture(scope="module")
def workbench(request: pytest.FixtureRequest, stack, tmp_path_factory) -> Iterator[Workbench]:
    """A Rasa server of this module's own on the production model, and the desk (a process) whose
    workbench edits a git copy of the project, trains into a temporary directory and activates there."""
    override = os.environ.get("DESK_TEST_RASA_MODEL")
    base_model = Path(override) if override else request.getfixturevalue("trained_model")
    root = tmp_path_factory.mktemp("workbench")
    # Scored on the held-out set only: the other sets add 2 x 4,400 parses (150 s of the run's 350)
    # and nothing this journey checks (tests/desk/test_training_runs_e2e.py scores every set).
    project = project_copy(root, test_sets=("heldout.yml",))
    models = root / "models"
    ports = processes.Ports(
        rasa=processes.free_port(),
        actions=stack.ports.actions,
        signing=stack.ports.signing,
        desk=processes.free_port(),
    )
    rasa_url = f"http://127.0.0.1:{ports.rasa}"
    env = {
        **stack.env,
        "RASA_URL": rasa_url,
        "RASA_EVENTS_DB": str(root / "rasa_events.db"),
        "RASA_LOCKS_DB": str(root / "rasa_locks.db"),
        "BOT_FAILURES_URL": f"sqlite:///{root / 'bot_failures.db'}",
        "CHANNEL_DEDUPE_DB": str(root / "channel_dedupe.db"),
    }
    # One Sanic worker: PUT /model swaps the model of the worker that answers it (docs/agent-desk.md).
    rasa = processes.rasa_server(ports, env, root / "log", base_model, workers=1)
    desk_env = {
        **env,
        "DESK_DATABASE_URL": f"sqlite:///{root / 'desk.db'}",
        "DESK_SWEEP_INTERVAL": "1",
        "DESK_BROKER_POLL_INTERVAL": "0.2",
        "TRAINING_PROJECT_DIR": str(project),
        "TRAINING_MODELS_DIR": str(models),
        "TRAINING_RASA_URLS": rasa_url,
        "TRAINING_EPOCH_FRACTION": EPOCH_FRACTION,
    }
    add_desk_accounts(desk_env, (TRAINER, "trainer", TRAINER_NAME))
    desk = processes.agent_desk(ports, desk_env, root / "log")
    try:
        t0 = time.monotonic()
        rasa.start()
        rasa.wait_healthy(900)
        print(f"\n>> Rasa up in {time.monotonic() - t0:.0f} s on {base_model.name}")
        desk.start()
        desk.wait_healthy(60)
        yield Workbench(
            f"http://127.0.0.1:{ports.desk}", rasa_url, env["RASA_AUTH_TOKEN"], project, models, base_model
        )
    finally:
        desk.stop(30)  # its training subprocesses run in their own process groups: stopped below too
        rasa.stop(30)
        stray = processes_mentioning(str(models))  # a training or scoring the desk left behind
        for line in stray:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line.split()[0]), signal.SIGKILL)
        assert not stray, f"the desk left its training processes running: {stray}"
        left = processes_mentioning(f"--port {ports.rasa}", f"--port {ports.desk}", str(models))
        assert not left, f"processes left running: {left}"


def login_trainer(page, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", TRAINER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/training")  # trainers land on their workbench


def bot_answer(page, text: str) -> str:
    """Send `text` in /demo; the first bot line that answers it."""
    bot_lines = page.locator("#demo-log li.msg-bot")
    before = bot_lines.count()
    page.fill("#demo-input", text)
    page.click("#demo-send")
    bot_lines.nth(before).wait_for(timeout=90_000)
    return bot_lines.nth(before).inner_text().strip()


def new_conversation(page) -> None:
    page.click("#demo-reset")
    page.locator("#demo-log li").first.wait_for(state="detached", timeout=10_000)


def production_model(page, base: str) -> str:
    page.goto(f"{base}/training/runs")
    return page.locator("#production-model strong").inner_text().strip()


def wait_for_the_report(page, run_url: str, started: float, timeout: float = 1800) -> float:
    """Follow the run's progress JSON until the page (reloaded by its script) shows the report;
    returns when the scoring began (seconds after `started`)."""
    scoring_at = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = page.context.request.get(f"{run_url}/progress").json()
        if data["progress"].get("phase") == "evaluating" and scoring_at is None:
            scoring_at = time.monotonic() - started
        if not data["open"]:
            assert data["status"] == "succeeded", data
            assert data["progress"].get("mode") == "finetune", data
            page.locator("#activate-box").wait_for(timeout=60_000)
            return scoring_at if scoring_at is not None else time.monotonic() - started
        time.sleep(2)
    raise AssertionError(f"the training run did not end within {timeout:.0f} s")


def test_a_trainer_teaches_the_bot_a_message_and_can_roll_back(workbench: Workbench, browser, shots):
    from playwright.sync_api import expect

    wb = workbench
    understood = response_text(ANSWER)[:40]
    before = parse(wb.rasa, wb.token, MESSAGE)["intent"]
    assert before["name"] != INTENT, f"the production model already understands {MESSAGE!r}: {before}"

    # 1. The customer's message falls back.
    customer = browser.new_context(viewport={"width": 520, "height": 860}, locale="vi-VN").new_page()
    customer.goto(f"{wb.desk}/demo")
    first = bot_answer(customer, MESSAGE)
    assert FALLBACK.search(first), first

    # 2. The trainer finds it in the inbox and labels it.
    trainer = browser.new_context(viewport={"width": 1366, "height": 900}, locale="vi-VN").new_page()
    login_trainer(trainer, wb.desk)
    row = trainer.locator("#inbox-groups tbody tr", has_text=MESSAGE)
    for _ in range(30):  # the inbox reads Rasa's events on each visit
        if row.count():
            break
        time.sleep(1)
        trainer.reload()
    expect(row).to_contain_text("Bot không hiểu")
    trainer.screenshot(path=str(shots / "training-inbox.png"), full_page=True)
    row.get_by_role("link", name=MESSAGE).click()
    trainer.wait_for_url(re.compile(r"/training/groups/\d+$"))
    expect(trainer.locator("#group-text")).to_have_text(MESSAGE)
    trainer.select_option("#label-intent", INTENT)
    trainer.get_by_role("button", name="Kiểm tra").click()
    expect(trainer.locator("#findings")).to_contain_text("Câu hợp lệ")
    trainer.locator("#intent-examples summary", has_text=re.compile(f"^{INTENT}$")).click()
    trainer.screenshot(path=str(shots / "training-label.png"), full_page=True)
    commits_before = git(wb.project, "rev-list", "--count", "HEAD").strip()
    trainer.get_by_role("button", name="Lưu vào dữ liệu học").click()
    trainer.wait_for_url(re.compile(r"/training\?saved=[0-9a-f]+"))
    expect(trainer.locator("#saved")).to_contain_text("Đã lưu câu ví dụ")
    assert int(git(wb.project, "rev-list", "--count", "HEAD")) == int(commits_before) + 1
    author, subject = git(wb.project, "log", "-1", "--format=%an <%ae>|%s").strip().split("|", 1)
    assert author == f"{TRAINER_NAME} <{TRAINER}@workbench.local>", author
    assert INTENT in subject and TRAINER in subject, subject
    assert f"- {MESSAGE}\n" in git(wb.project, "show", "HEAD")
    assert not git(wb.project, "status", "--porcelain").strip()

    # 3. Training: the progress moves, then the report.
    assert production_model(trainer, wb.desk) == wb.base_model.name
    started = time.monotonic()
    trainer.get_by_role("button", name="Huấn luyện mô hình mới").click()
    trainer.wait_for_url(re.compile(r"/training/runs/\d+$"))
    run_url = trainer.url
    run_id = run_url.rsplit("/", 1)[-1]
    epoch = trainer.locator("#run-epoch")
    expect(epoch).to_have_text(re.compile(r"vòng \d+/\d+"), timeout=900_000)
    first_epoch = epoch.inner_text()
    expect(epoch).not_to_have_text(first_epoch, timeout=600_000)
    print(f">> epochs shown after {time.monotonic() - started:.0f} s ({first_epoch} → {epoch.inner_text()})")
    expect(trainer.locator("#run-bar")).to_have_attribute("value", re.compile(r"\d"))
    trainer.screenshot(path=str(shots / "training-progress.png"), full_page=True)
    trained = wait_for_the_report(trainer, run_url, started)
    total = time.monotonic() - started
    print(f">> finetune {trained:.0f} s, scoring {total - trained:.0f} s, run {total:.0f} s")
    expect(trainer.locator("#run-status")).to_have_text("Xong")
    expect(trainer.locator("#sets")).to_contain_text("heldout")
    expect(trainer.locator("#changed-summary")).to_be_visible()
    # The top of the report (activation, accuracy per set, F1 per intent): the whole page is metres long.
    trainer.set_viewport_size({"width": 1366, "height": 1500})
    trainer.screenshot(path=str(shots / "training-report.png"))
    if trainer.locator("#below-threshold").count():
        # Below nlu_thresholds.yml: no activation button. The activation is then exercised with the
        # thresholds of the copy lowered (as in tests/desk/test_training_runs_e2e.py).
        expect(trainer.get_by_role("button", name="Kích hoạt mô hình này")).to_have_count(0)
        print(">> below the thresholds:", trainer.locator("#below-threshold").inner_text())
        (wb.project / "nlu_thresholds.yml").write_text(
            "min_accuracy: 0.5\nmin_accuracy_no_diacritics: 0.5\nmin_examples_per_intent: 8\n",
            encoding="utf-8",
        )
        trainer.reload()

    # 4. Activation (PUT /model: about half a minute, the click waits for the redirect): a new
    # conversation understands the message.
    t0 = time.monotonic()
    trainer.get_by_role("button", name="Kích hoạt mô hình này").click(timeout=300_000)
    trainer.wait_for_url(f"{wb.desk}/training/runs", timeout=300_000)
    print(f">> activation {time.monotonic() - t0:.0f} s")
    expect(trainer.locator("#production-model")).to_contain_text(f"workbench-{run_id}.tar.gz")
    expect(trainer.locator("#activations")).to_contain_text("thành công")
    assert parse(wb.rasa, wb.token, MESSAGE)["intent"]["name"] == INTENT
    new_conversation(customer)
    assert bot_answer(customer, MESSAGE).startswith(understood)

    # 5. Rollback: the old model, and the old answer, are back.
    t0 = time.monotonic()
    trainer.get_by_role("button", name="Khôi phục mô hình trước").click(timeout=300_000)
    trainer.wait_for_url(f"{wb.desk}/training/runs", timeout=300_000)
    print(f">> rollback {time.monotonic() - t0:.0f} s")
    expect(trainer.locator("#production-model")).to_contain_text(wb.base_model.name)
    expect(trainer.locator("#activations")).to_contain_text("khôi phục")
    new_conversation(customer)
    again = bot_answer(customer, MESSAGE)
    assert FALLBACK.search(again), again
    assert again.split("\n")[0] == first.split("\n")[0]
