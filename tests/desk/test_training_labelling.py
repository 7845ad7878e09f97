"""Labelling from the inbox (issue 19): the example is checked like `make validate`, written into its
topic file and committed by the trainer; conflicts are refused in Vietnamese; a file a developer is
editing is never overwritten; the data still passes `python -m trainer validate` afterwards."""

from __future__ import annotations

import asyncio
import html
import subprocess
import unicodedata
from pathlib import Path

import yaml

from agent_desk.config import ROOT
from devstack import processes
from tests.desk.conftest import DeskFactory
from tests.desk.training_helpers import (
    NOW,
    commits,
    git,
    groups_on_page,
    project_copy,
    user_event,
    workbench,
    write_events,
)

NEW_TEXT = "cho em hỏi cái hồ sơ lắp điện nhà em đang tới đâu rồi ạ"
CODE_TEXT = "hồ sơ pc05tk0000777 của em tới đâu rồi"
CONFLICT_TEXT = "chào buổi sáng"  # a greet example


def examples_in(path: Path, intent: str) -> list[str]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        line[2:].strip()
        for item in data["nlu"]
        if item.get("intent") == intent
        for line in item["examples"].splitlines()
        if line.startswith("- ")
    ]


def intent_file(project: Path, intent: str) -> Path:
    for path in sorted((project / "bot" / "data" / "nlu").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if any(item.get("intent") == intent for item in data.get("nlu") or []):
            return path
    raise AssertionError(intent)


async def _setup(desk_factory: DeskFactory, tmp_path: Path, project: Path, **kw: object):
    write_events(
        tmp_path / "rasa_events.db",
        {"zalo-1": [user_event(NEW_TEXT, "track_request", 0.4, NOW - 30)]},
    )
    client, token = await workbench(desk_factory, tmp_path, project, **kw)  # type: ignore[arg-type]
    groups = await groups_on_page(client)
    assert len(groups) == 1
    return client, token, next(iter(groups.values()))


async def test_label_writes_yaml_and_one_commit(desk_factory: DeskFactory, tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    client, token, group = await _setup(desk_factory, tmp_path, project)
    page = await (await client.get(f"/training/groups/{group}")).text()
    assert "track_request" in page and "<details>" in page  # intents with their examples
    target = intent_file(project, "track_request")
    before_text = target.read_text(encoding="utf-8")
    resp = await client.post(
        f"/training/groups/{group}/label",
        data={"csrf_token": token, "action": "save", "intent": "track_request", "text": NEW_TEXT},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    assert NEW_TEXT in examples_in(target, "track_request")
    # Only the intent's block changed: every line of the file before is still there, in order.
    after = target.read_text(encoding="utf-8").splitlines()
    assert [line for line in after if line.strip() != f"- {NEW_TEXT}"] == before_text.splitlines()
    log = commits(project)
    assert len(log) == 2
    assert log[0] == "Lan <lan@workbench.local>|Huấn luyện: thêm 1 câu vào ý định track_request (lan)"
    assert git(project, "show", "--name-only", "--format=", "HEAD").split() == [
        str(target.relative_to(project))
    ]
    assert git(project, "status", "--porcelain") == ""
    # The group is labelled, and leaves the inbox of new messages.
    assert group not in (await groups_on_page(client)).values()
    assert group in (await groups_on_page(client, "?status=labelled")).values()
    # The data still passes `make validate` (the trainer's checks and `rasa data validate`).
    proc = await asyncio.to_thread(
        subprocess.run,
        [processes.rasa_python(), "-m", "trainer", "--root", str(project), "validate"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rasa data validate: đạt" in proc.stdout and "Kiểm tra dữ liệu NLU: ĐẠT" in proc.stdout


async def test_entity_span_and_code_check(desk_factory: DeskFactory, tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    client, token, group = await _setup(desk_factory, tmp_path, project)
    # A request code in the wrong format is refused (E-CODE), in Vietnamese.
    resp = await client.post(
        "/training/check",
        data={"csrf_token": token, "intent": "track_request", "text": "hồ sơ pc05tk077 tới đâu",
              "entity_1": "request_code", "value_1": "pc05tk077"},
        headers={"Accept": "application/json"},
    )  # fmt: skip
    body = await resp.json()
    assert resp.status == 200 and not body["ok"]
    assert any("sai định dạng" in m for m in body["errors"])
    # Letters typed with separate accents (not NFC): a warning, the example is stored in NFC.
    resp = await client.post(
        "/training/check",
        data={"csrf_token": token, "intent": "track_request",
              "text": unicodedata.normalize("NFD", "hồ sơ lắp công tơ mới của tôi sao rồi")},
        headers={"Accept": "application/json"},
    )  # fmt: skip
    body = await resp.json()
    assert body["ok"] and any("NFC" in m for m in body["warnings"])
    assert unicodedata.is_normalized("NFC", body["example"])
    # A good one is saved annotated.
    resp = await client.post(
        f"/training/groups/{group}/label",
        data={"csrf_token": token, "action": "save", "intent": "track_request", "text": CODE_TEXT,
              "entity_1": "request_code", "value_1": "PC05TK0000777"},
        allow_redirects=False,
    )  # fmt: skip
    assert resp.status == 303, await resp.text()
    assert "hồ sơ [pc05tk0000777](request_code) của em tới đâu rồi" in examples_in(
        intent_file(project, "track_request"), "track_request"
    )


async def test_conflict_is_shown_and_refused(desk_factory: DeskFactory, tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    client, token, group = await _setup(desk_factory, tmp_path, project)
    data = {"csrf_token": token, "intent": "track_request", "text": CONFLICT_TEXT}
    resp = await client.post("/training/check", data=data, headers={"Accept": "application/json"})
    body = await resp.json()
    assert not body["ok"]
    assert any("Xung đột" in m and "'greet'" in m for m in body["errors"])
    # The form's own check shows it on the page.
    resp = await client.post(f"/training/groups/{group}/label", data={**data, "action": "check"})
    page = await resp.text()
    assert resp.status == 200 and "Xung đột" in page and "Chưa lưu được câu này" in page
    # Saving is refused, nothing written, no commit.
    before = {p: p.read_bytes() for p in (project / "bot" / "data" / "nlu").glob("*.yml")}
    resp = await client.post(f"/training/groups/{group}/label", data={**data, "action": "save"})
    assert resp.status == 409
    assert "Xung đột" in await resp.text()
    assert {p: p.read_bytes() for p in before} == before
    assert len(commits(project)) == 1
    # The same sentence in the same intent: a duplicate, refused too.
    resp = await client.post(
        "/training/check",
        data={**data, "intent": "greet"},
        headers={"Accept": "application/json"},
    )
    assert any("đã có trong ý định 'greet'" in m for m in (await resp.json())["errors"])


async def test_a_test_sentence_is_refused_without_saying_which_set(
    desk_factory: DeskFactory, tmp_path: Path
) -> None:
    """Held-out sentences must not become training data, and the page must not tell a trainer which
    hidden set (or which line) a tried sentence is in."""
    import yaml as _yaml

    from agent_desk.training.nlu_edit import LEAK_MESSAGE

    project = project_copy(tmp_path)
    client, token, _group = await _setup(desk_factory, tmp_path, project)
    hidden = _yaml.safe_load((project / "tests" / "nlu" / "report_only.yml").read_text(encoding="utf-8"))
    block = next(b for b in hidden["nlu"] if b.get("intent") == "greet")
    sentence = block["examples"].splitlines()[0].lstrip("- ").strip()
    data = {"csrf_token": token, "intent": "greet", "text": sentence}
    body = await (
        await client.post("/training/check", data=data, headers={"Accept": "application/json"})
    ).json()
    assert not body["ok"] and body["errors"] == [LEAK_MESSAGE]
    assert "report_only" not in str(body) and "heldout" not in str(body)


async def test_warning_needs_confirmation(desk_factory: DeskFactory, tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    client, token, group = await _setup(desk_factory, tmp_path, project)
    text = "số của em là 0905****456 sao chưa thấy tin nhắn"
    data = {"csrf_token": token, "intent": "track_request", "text": text, "action": "save"}
    resp = await client.post(f"/training/groups/{group}/label", data=data)
    assert resp.status == 409
    page = await resp.text()
    assert "Cảnh báo" in page and "giá trị mẫu" in page and 'name="confirm"' in page
    assert len(commits(project)) == 1
    resp = await client.post(
        f"/training/groups/{group}/label", data={**data, "confirm": "1"}, allow_redirects=False
    )
    assert resp.status == 303
    assert len(commits(project)) == 2


async def test_uncommitted_edits_are_never_overwritten(desk_factory: DeskFactory, tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    client, token, group = await _setup(desk_factory, tmp_path, project)
    target = intent_file(project, "track_request")
    developer = target.read_text(encoding="utf-8") + "# a developer is editing this file\n"
    target.write_text(developer, encoding="utf-8")
    resp = await client.post(
        f"/training/groups/{group}/label",
        data={"csrf_token": token, "action": "save", "intent": "track_request", "text": NEW_TEXT},
    )
    assert resp.status == 409
    assert "thay đổi chưa commit" in await resp.text()
    assert target.read_text(encoding="utf-8") == developer
    assert len(commits(project)) == 1


async def test_wrong_branch_and_not_a_repo(desk_factory: DeskFactory, tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    client, token, group = await _setup(
        desk_factory, tmp_path, project, env={"TRAINING_GIT_BRANCH": "trainers"}
    )
    data = {"csrf_token": token, "action": "save", "intent": "track_request", "text": NEW_TEXT}
    resp = await client.post(f"/training/groups/{group}/label", data=data)
    assert resp.status == 409 and "nhánh 'trainers'" in html.unescape(await resp.text())
    assert len(commits(project)) == 1
    git(project, "checkout", "-q", "-b", "trainers")
    resp = await client.post(f"/training/groups/{group}/label", data=data, allow_redirects=False)
    assert resp.status == 303
    assert commits(project)[0].startswith("Lan <lan@workbench.local>|")
    # Not a git repository: said so, nothing written.
    import shutil

    shutil.rmtree(project / ".git")
    resp = await client.post(
        f"/training/groups/{group}/label", data={**data, "text": "em muốn hỏi tiến độ hồ sơ cấp điện"}
    )
    assert resp.status == 409 and "không phải kho git" in await resp.text()


async def test_button_only_intents_cannot_be_picked(desk_factory: DeskFactory, tmp_path: Path) -> None:
    """`csat` (a typed text is never a satisfaction score) and `share_contact` have no examples by
    design: not offered, and refused if posted."""
    project = project_copy(tmp_path)
    client, token, group = await _setup(desk_factory, tmp_path, project)
    page = await (await client.get(f"/training/groups/{group}")).text()
    assert 'value="csat"' not in page and 'value="share_contact"' not in page
    assert 'value="goodbye"' in page
    data = {"csrf_token": token, "intent": "csat", "text": "5 sao nha"}
    resp = await client.post("/training/check", data=data, headers={"X-Requested-With": "fetch"})
    assert resp.status == 400 and "'csat'" in (await resp.json())["message"]
