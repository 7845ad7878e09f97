"""The desk's texts live in agent_desk/texts/*.yml and are checked when they are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_desk import canned_replies, demo, desk_texts, reports
from agent_desk.keys import DESK
from agent_desk.text_files import TextFileError, load_labels, load_texts
from tests.desk.conftest import csrf_of


def test_the_shipped_texts_load():
    assert desk_texts.TEXTS.get("text_too_long", limit=7) == "Nội dung quá dài (tối đa 7 ký tự)."
    assert list(desk_texts.CLOSE_TAGS) == list(desk_texts.CLOSE_TAG_KEYS)
    web_chat = load_texts(demo.TEXTS_FILE, demo.REQUIRED_TEXTS)
    assert web_chat.get("message_too_long", limit=500) == "Tin nhắn dài quá 500 ký tự."
    seed = canned_replies.load_seed()
    assert ("Xin chờ", "Anh/chị vui lòng chờ em một chút để em kiểm tra thông tin ạ.") in seed


def test_the_texts_moved_out_of_python_load():
    texts, report = desk_texts.TEXTS, desk_texts.REPORT_TEXTS
    assert all(name in texts for name in desk_texts.REQUIRED)
    assert all(name in report for name in desk_texts.REQUIRED_REPORTS)
    assert texts.get("transfer_agent_away", agent_name="Lan") == "Lan đang vắng, không nhận được hội thoại."
    assert texts.get("attachment_pdf_too_large", limit_mb=5) == "Tệp PDF quá lớn: tối đa 5 MB."
    assert texts.get("customer_file_too_large", limit_mb=20).startswith(
        "Tệp khách gửi quá lớn để mở trên bàn trực (tối đa 20 MB). "
    )
    assert texts.get("supervisors_only") == "Chức năng này chỉ dành cho giám sát viên."
    assert (
        report.get("no_such_date", what="Ngày bắt đầu", raw="2026-02-30")
        == "Ngày bắt đầu không có thật: 2026-02-30."
    )
    assert [reports.short_duration(s) for s in (45, 240, 250, 3600, 3900)] == [
        "45 giây",
        "4 phút",
        "4 phút 10 giây",
        "1 giờ",
        "1 giờ 05 phút",
    ]
    assert reports.CSV_HEADER[0] == "Phạm vi" and reports.CSV_HEADER[-1] == "Số khảo sát"
    assert len(reports.CSV_HEADER) == len(reports.CSV_COLUMNS) == 13


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "texts.yml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "content, problem",
    [
        ("a: 'x {n}'\n", "text 'b' is missing"),
        ("a: 'x {n}'\nb: '  '\n", "text 'b' is missing or empty"),
        ("a: 'x {who}'\nb: 'y'\n", "unknown placeholders ['who']"),
        ("a: 'x'\nb: 'y'\n", "text 'a' does not use its placeholders ['n']"),
        ("a: 'x {n}'\nb: 'y'\nc: 'z'\n", "unknown texts ['c']"),
        ("- a\n", "expected a mapping"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_a_bad_texts_file_is_refused_naming_the_text(tmp_path, content, problem):
    with pytest.raises(TextFileError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        load_texts(_write(tmp_path, content), {"a": ("n",), "b": ()})


def test_close_tags_must_keep_their_stored_keys(tmp_path):
    path = _write(tmp_path, "close_tags:\n  resolved: 'Xong'\n  done: 'Khác'\n")
    with pytest.raises(TextFileError, match="expected exactly the keys"):
        load_labels(path, "close_tags", ("resolved", "other"))


@pytest.mark.parametrize(
    "content, problem",
    [
        ("canned_replies: []\n", "non-empty list"),
        ("canned_replies:\n  - title: 'A'\n", "exactly `title` and `text`"),
        ("canned_replies:\n  - {title: '', text: 'x'}\n", "canned reply 1: Nội dung trống."),
        (f"canned_replies:\n  - {{title: '{'t' * 101}', text: 'x'}}\n", "tối đa 100 ký tự"),
    ],
)
def test_a_bad_canned_seed_is_refused(tmp_path, content, problem):
    with pytest.raises(TextFileError, match=problem):
        canned_replies.load_seed(_write(tmp_path, content))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(TextFileError, match="cannot be read"):
        canned_replies.load_seed(tmp_path / "nope.yml")


async def test_a_new_desk_starts_with_the_seeded_canned_replies(desk_factory):
    client = await desk_factory(background=False)
    replies = await client.app[DESK].canned()
    assert [(r["title"], r["text"]) for r in replies] == sorted(canned_replies.load_seed())


async def test_the_web_chat_tells_the_visitor_in_the_files_words(desk_factory):
    client = await desk_factory(background=False)
    headers = {"X-CSRF-Token": await csrf_of(client, "/login")}
    assert (await client.get("/demo")).status == 200  # the visitor's conversation cookie
    resp = await client.post("/demo/api/send", json={"message": "  "}, headers=headers)
    assert resp.status == 400
    assert (await resp.json())["message"] == "Tin nhắn trống."
    resp = await client.post("/demo/api/send", json={"message": "x" * 501}, headers=headers)
    assert (await resp.json())["message"] == "Tin nhắn dài quá 500 ký tự."
