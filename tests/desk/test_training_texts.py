"""The workbench's texts live in agent_desk/texts/training.yml and are checked when they are read."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import yaml

from agent_desk.text_files import TextFileError, load_texts
from agent_desk.training import inbox, nlu_edit, runner, runs, texts


def _shipped() -> dict:
    return yaml.safe_load(texts.TRAINING_TEXTS.read_text(encoding="utf-8"))


def test_the_shipped_workbench_texts_load():
    assert texts.TEXTS.get("text_too_long", length=9, limit=7) == "Câu dài 9 ký tự: tối đa 7 ký tự."
    assert texts.TEXTS.get("text_brackets").startswith("Câu có dấu ngoặc [ ] ( ) { }: ")
    assert (
        texts.TEXTS.get("below_threshold", name="vi", accuracy=91.234, limit=90)
        == "vi: 91.2 % < ngưỡng 90.0 %"
    )
    assert nlu_edit.commit_message("greet", "add", "lan") == "Huấn luyện: thêm 1 câu vào ý định greet (lan)"
    assert runs.RESTARTED.startswith("Bàn trực đã khởi động lại")
    assert list(inbox.REASON_LABELS) == list(inbox.REASONS)
    assert list(inbox.STATUS_LABELS) == list(inbox.STATUSES)
    assert list(runner.PHASES) == ["queued", "training", "evaluating", "done"]


def test_each_shipped_text_uses_exactly_its_placeholders():
    # load_texts checks this at start-up (both ways); here each is also filled once.
    messages = _shipped()["messages"]
    for key, allowed in texts.REQUIRED.items():
        used = {name for _, name, _, _ in string.Formatter().parse(messages[key]) if name}
        assert used == set(allowed), key
        texts.TEXTS.get(key, **dict.fromkeys(allowed, 1))


def _write(tmp_path: Path, messages: dict) -> Path:
    path = tmp_path / "training.yml"
    path.write_text(yaml.safe_dump({"messages": messages}, allow_unicode=True), encoding="utf-8")
    return path


def test_an_unknown_placeholder_is_refused(tmp_path):
    messages = dict(_shipped()["messages"])
    messages["text_too_long"] = "Câu dài {size} ký tự: tối đa {limit} ký tự."
    with pytest.raises(TextFileError, match=r"text 'text_too_long' uses unknown placeholders \['size'\]"):
        load_texts(_write(tmp_path, messages), texts.REQUIRED, section="messages")


def test_a_dropped_placeholder_is_refused(tmp_path):
    messages = dict(_shipped()["messages"])
    messages["text_too_long"] = "Câu dài {length} ký tự, quá dài."
    with pytest.raises(
        TextFileError, match=r"text 'text_too_long' does not use its placeholders \['limit'\]"
    ):
        load_texts(_write(tmp_path, messages), texts.REQUIRED, section="messages")


def test_a_missing_or_extra_text_is_refused(tmp_path):
    messages = dict(_shipped()["messages"])
    del messages["git_busy"]
    with pytest.raises(TextFileError, match="text 'git_busy' is missing or empty"):
        load_texts(_write(tmp_path, messages), texts.REQUIRED, section="messages")
    messages = {**_shipped()["messages"], "git_bussy": "Người khác đang lưu dữ liệu."}
    with pytest.raises(TextFileError, match=r"unknown texts \['git_bussy'\]"):
        load_texts(_write(tmp_path, messages), texts.REQUIRED, section="messages")
