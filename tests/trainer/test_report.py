"""`make nlu-report` and `make crossval` on the tiny project with a few-epoch config (real Rasa training).

Training runs in the test process through the same entry point as the Makefile, so TensorFlow is
imported once; the model cache is private to the test module.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.trainer.conftest import run_cli, write_project
from trainer import nlumodel
from trainer.__main__ import main
from trainer.settings import load

pytestmark = pytest.mark.slow


class Trained:
    def __init__(self, root: Path, cache: Path, exit_code: int, output: str) -> None:
        self.root, self.cache, self.exit_code, self.output = root, cache, exit_code, output

    @property
    def out(self) -> Path:
        return self.root / "reports" / "nlu"

    def results(self) -> dict:
        return json.loads((self.out / "results.json").read_text(encoding="utf-8"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def report(root: Path, cache: Path, *extra: str) -> int:
    return main(["--root", str(root), "report", "--cache", str(cache), *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    base = tmp_path_factory.mktemp("report")
    root, cache = write_project(base / "proj"), base / "cache"
    capture = pytest.MonkeyPatch()
    import io
    import sys

    buf = io.StringIO()
    capture.setattr(sys, "stdout", buf)
    try:
        code = report(root, cache)
    finally:
        capture.undo()
    yield Trained(root, cache, code, buf.getvalue())
    shutil.rmtree(base, ignore_errors=True)


def test_report_files_and_figures(trained: Trained) -> None:
    assert trained.exit_code == 0, trained.output
    res = trained.results()
    main_run, plain_run = res["runs"]
    assert main_run["examples"] == plain_run["examples"] == 8
    # The tiny model learns the accented set; the figures in the files are the computed ones.
    assert main_run["accuracy"] >= 0.75
    correct = main_run["examples"] - len(main_run["errors"])
    assert main_run["accuracy"] == pytest.approx(correct / main_run["examples"])
    labels = {"greet", "goodbye", "track_request", "faq/hotline", "faq/processing_time"}
    assert set(main_run["per_intent"]) == labels
    assert sum(map(sum, main_run["confusion"])) == 8
    assert main_run["entities"]["request_code"]["support"] == 1
    md = (trained.out / "report.md").read_text(encoding="utf-8")
    html = (trained.out / "report.html").read_text(encoding="utf-8")
    pct = f"{100 * main_run['accuracy']:.1f} %"
    assert pct in md and pct in html and "Kết quả: **ĐẠT**" in md
    for png in ("confusion_0.png", "confusion_1.png", "intent_f1.png"):
        data = (trained.out / png).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000
        assert png in md and png in html
    assert res["meta"]["how"] == "học mới"
    # The reference row: Rasa's default pipeline trained on the same data, per set.
    assert set(res["meta"]["reference"]) == {"test · có dấu", "test · không dấu"}
    ref = res["meta"]["reference"]["test · có dấu"]
    assert 0.0 <= ref["accuracy"] <= 1.0 and ref["examples"] == 8
    assert f"{100 * ref['accuracy']:.1f} %" in md and "Rasa mặc định" in md


def test_the_report_only_set_is_reported_but_never_listed(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj")
    (root / "tests/nlu/report_only.yml").write_text(
        'version: "3.1"\nnlu:\n  - intent: greet\n    examples: |\n      - tạm biệt nhưng là chào\n',
        encoding="utf-8",
    )
    edit(root / "nlu_thresholds.yml", "min_accuracy: 0.5", "min_accuracy: 1.0")
    (root / "trainer").mkdir(exist_ok=True)
    code = report(root, tmp_path / "cache", "--no-reference")
    res = json.loads((root / "reports/nlu/results.json").read_text(encoding="utf-8"))
    names = [r["name"] for r in res["runs"]]
    assert "report_only · có dấu" in names and res["meta"]["report_only"]
    only = next(r for r in res["runs"] if r["name"] == "report_only · có dấu")
    assert "errors" not in only and only["examples"] == 1
    md = (root / "reports/nlu/report.md").read_text(encoding="utf-8")
    assert "tạm biệt nhưng là chào" not in md and "chỉ báo cáo" in md
    stripped = (root / "reports/nlu/test_no_diacritics.yml").read_text(encoding="utf-8")
    assert "tam biet nhung la chao" not in stripped
    # Gates apply to the other sets only.
    assert not any("report_only" in f for f in res["meta"]["failures"])
    assert code in (0, 1)


def test_stripped_copy_is_generated_without_diacritics(trained: Trained) -> None:
    text = (trained.out / "test_no_diacritics.yml").read_text(encoding="utf-8")
    assert "    - tra cuu tien do ho so [PC05HA0000789](request_code)\n" in text
    assert "    - bao lau thi duoc cap dien\n" in text
    body = text.split("nlu:", 1)[1]
    assert all(ord(c) < 128 for c in body)


def test_unchanged_data_reuses_the_model_and_threshold_fails(
    trained: Trained, capsys: pytest.CaptureFixture
) -> None:
    root = trained.root
    models_before = sorted(trained.cache.glob("nlu-*.tar.gz"))
    # A held-out example labelled against its obvious meaning cannot be right, and the threshold is 100 %.
    test_file = root / "tests/nlu/test.yml"
    edit(test_file, "    - chào anh\n", "    - chào anh\n    - tạm biệt, hẹn gặp lại\n")
    edit(root / "nlu_thresholds.yml", "min_accuracy: 0.5", "min_accuracy: 1.0")
    code = report(root, trained.cache)
    out = capsys.readouterr()
    assert code == 1
    assert "dùng lại bản đã học" in out.out
    assert sorted(trained.cache.glob("nlu-*.tar.gz")) == models_before  # nothing retrained
    assert "KHÔNG ĐẠT: độ chính xác test · có dấu" in out.err and "< ngưỡng 100.0 %" in out.err
    res = json.loads((root / "reports/nlu/results.json").read_text(encoding="utf-8"))
    wrong = [e for e in res["runs"][0]["errors"] if e["text"] == "tạm biệt, hẹn gặp lại"]
    assert wrong and wrong[0]["expected"] == "greet" and wrong[0]["where"] == "tests/nlu/test.yml:8"
    assert "KHÔNG ĐẠT" in (root / "reports/nlu/report.html").read_text(encoding="utf-8")


def test_finetune_after_adding_examples(trained: Trained, capsys: pytest.CaptureFixture) -> None:
    root = trained.root
    edit(root / "bot/data/nlu/general.yml", "    - alo\n", "    - alo\n    - chào chị\n")
    settings = load(root)
    new_name = nlumodel.model_name(settings, "config.yml")
    assert not (trained.cache / f"{new_name}.tar.gz").exists()
    report(root, trained.cache, "--finetune")
    out = capsys.readouterr().out
    assert "học tiếp (finetune) từ nlu-" in out
    assert (trained.cache / f"{new_name}.tar.gz").exists()
    assert json.loads((root / "reports/nlu/results.json").read_text(encoding="utf-8"))["meta"]["how"] == (
        "học tiếp (finetune)"
    )


def test_report_refuses_broken_data(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj")
    (root / "tests/nlu/test.yml").write_text("nlu:\n- intent: greet\n  examples: [\n", encoding="utf-8")
    done = run_cli(root, "report", "--cache", str(tmp_path / "cache"))
    assert done.returncode == 2
    assert "tests/nlu/test.yml:" in done.stderr and "make validate" in done.stderr
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").glob("*.tar.gz"))


def test_crossval(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj")
    done = run_cli(root, "crossval", "--folds", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    md = (root / "reports/nlu/crossval/crossval.md").read_text(encoding="utf-8")
    assert md.startswith("# Kiểm tra chéo 2 phần")
    assert "| greet |" in md and "Độ chính xác" in md
