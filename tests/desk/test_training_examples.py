"""The examples browser (issue 19): search ignoring diacritics, edit and delete, each one commit by
the trainer; deleting below min_examples_per_intent is refused with a clear message."""

from __future__ import annotations

import html
import re
from pathlib import Path

from tests.desk.conftest import DeskFactory
from tests.desk.test_training_labelling import examples_in
from tests.desk.training_helpers import commits, git, project_copy, workbench

ROW = re.compile(
    r'name="file" value="([^"]+)">\s*<input type="hidden" name="line" value="(\d+)">\s*'
    r'<input type="hidden" name="old" value="([^"]*)">'
)


async def _row(client, intent: str, q: str) -> tuple[str, str, str]:
    resp = await client.get("/training/examples", params={"intent": intent, "q": q})
    assert resp.status == 200
    match = ROW.search(await resp.text())
    assert match, f"no example of {intent} matching {q!r}"
    return match.group(1), match.group(2), html.unescape(match.group(3))


async def test_search_ignores_diacritics(desk_factory: DeskFactory, tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    client, _ = await workbench(desk_factory, tmp_path, project)
    page = await (await client.get("/training/examples", params={"intent": "greet", "q": "BUOI SANG"})).text()
    assert "chào buổi sáng" in page
    assert "chào tổng đài" not in page
    page = await (await client.get("/training/examples", params={"q": "buổi chiều"})).text()
    assert "chào buổi chiều" in page


async def test_edit_and_delete_are_commits(desk_factory: DeskFactory, tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    client, token = await workbench(
        desk_factory, tmp_path, project, role="supervisor", username="chi", name="Chị Chi"
    )
    file_rel, line, old = await _row(client, "greet", "chào buổi chiều")
    target = project / file_rel
    resp = await client.post(
        "/training/examples/edit",
        data={
            "csrf_token": token,
            "file": file_rel,
            "line": line,
            "old": old,
            "text": "chào buổi chiều nha em",
        },
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    greet = examples_in(target, "greet")
    assert "chào buổi chiều nha em" in greet and "chào buổi chiều" not in greet
    assert commits(project)[0] == "Chị Chi <chi@workbench.local>|Huấn luyện: sửa 1 câu của ý định greet (chi)"
    # An edit into another intent's sentence is a conflict: refused, shown.
    file_rel, line, old = await _row(client, "greet", "chào tổng đài")
    resp = await client.post(
        "/training/examples/edit",
        data={"csrf_token": token, "file": file_rel, "line": line, "old": old, "text": "gặp nhân viên"},
    )
    assert resp.status == 409
    assert "Xung đột" in await resp.text()
    assert len(commits(project)) == 2
    # Delete.
    file_rel, line, old = await _row(client, "greet", "chào tổng đài")
    target = project / file_rel
    count = len(examples_in(target, "greet"))
    resp = await client.post(
        "/training/examples/delete",
        data={"csrf_token": token, "file": file_rel, "line": line, "old": old},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert len(examples_in(target, "greet")) == count - 1 and "chào tổng đài" not in examples_in(
        target, "greet"
    )
    assert commits(project)[0].endswith("Huấn luyện: xóa 1 câu khỏi ý định greet (chi)")
    assert git(project, "status", "--porcelain") == ""
    # A stale form (the line moved or the sentence changed) is refused, nothing deleted.
    resp = await client.post(
        "/training/examples/delete", data={"csrf_token": token, "file": file_rel, "line": line, "old": old}
    )
    assert resp.status == 400 and "tải lại trang" in await resp.text()
    assert len(commits(project)) == 3


async def test_delete_below_minimum_is_refused(desk_factory: DeskFactory, tmp_path: Path) -> None:
    project = project_copy(tmp_path, thresholds="min_examples_per_intent: 1000\n")
    client, token = await workbench(desk_factory, tmp_path, project)
    file_rel, line, old = await _row(client, "greet", "chào buổi sáng")
    resp = await client.post(
        "/training/examples/delete", data={"csrf_token": token, "file": file_rel, "line": line, "old": old}
    )
    assert resp.status == 409
    page = html.unescape(await resp.text())
    assert "Không xóa được: ý định 'greet' chỉ còn" in page and "cần ít nhất 1000" in page
    assert len(commits(project)) == 1


async def test_bad_edit_inputs(desk_factory: DeskFactory, tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    client, token = await workbench(desk_factory, tmp_path, project)
    file_rel, line, old = await _row(client, "greet", "chào buổi sáng")
    for data in (
        {"file": file_rel, "line": "abc", "old": old, "text": "x"},
        {"file": file_rel, "line": line, "old": old, "text": "a" * 501},
        {"file": file_rel, "line": line, "old": old, "text": "có [ngoặc](x)"},
        {"file": "../../etc/passwd", "line": line, "old": old, "text": "chào"},
    ):
        resp = await client.post("/training/examples/edit", data={"csrf_token": token, **data})
        assert resp.status == 400, data
    assert len(commits(project)) == 1
