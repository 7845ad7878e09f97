"""CSV export / import: lossless round trip, labelled review rows into the right topic file, and bad input
refused with the row number and nothing overwritten."""

from __future__ import annotations

import csv
import io
import unicodedata
from pathlib import Path

import pytest

from tests.trainer.conftest import run_cli, snapshot
from trainer import nlucsv, nludata
from trainer.settings import Settings

REVIEW_HEADER = "text,predicted_intent,confidence,conversation,timestamp,label,entities,reason\r\n"


def read_rows(path: Path) -> list[list[str]]:
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf"), "Excel needs the UTF-8 BOM to show Vietnamese"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def review_rows(*rows: tuple[str, str, str]) -> list[list[str]]:
    """(text, label, entities) → rows of a review CSV."""
    header = REVIEW_HEADER.strip().split(",")
    return [header] + [
        [t, "greet", "0.31", "u1", "2026-11-25 10:00:00", lab, ents, "low_confidence"]
        for t, lab, ents in rows
    ]


def examples(settings: Settings, intent: str) -> list[tuple[str, str]]:
    nf_all = nludata.read_dir(settings.path(settings.nlu_dir))
    return [(settings.rel(e.file), e.text) for nf in nf_all for e in nf.examples() if e.name == intent]


# ------------------------------------------------------------------------------------------ export


def test_export_has_every_example_with_annotations_and_file(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "all.csv"
    assert nlucsv.export(settings, out) == 28
    rows = read_rows(out)
    assert rows[0] == ["intent", "text", "file"]
    assert ["track_request", "tra cứu hồ sơ [PC05TK0000123](request_code)", "bot/data/nlu/lookup.yml"] in rows
    assert ["faq/hotline", "cho xin số hotline", "bot/data/nlu/faq.yml"] in rows
    assert not any(r[0] == "request_code" for r in rows)  # regex blocks are not examples


def test_round_trip_is_byte_identical(project: Path, settings: Settings, tmp_path: Path) -> None:
    # Variants that are equal for the model (tone placement, case, punctuation) are kept as written.
    general = project / "bot/data/nlu/general.yml"
    text = general.read_text(encoding="utf-8")
    general.write_text(
        text.replace("    - alo\n", "    - alo\n    - ALO\n    - alo!\n    - hoà nhé\n    - hòa nhé\n")
    )
    out = tmp_path / "all.csv"
    nlucsv.export(settings, out)
    before = snapshot(project)
    summary = nlucsv.import_csv(settings, out, with_rasa=False)
    assert (summary.added, summary.removed, summary.files) == (0, 0, [])
    assert snapshot(project) == before


def test_edited_export_changes_moves_and_deletes(project: Path, settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "all.csv"
    nlucsv.export(settings, out)
    rows = read_rows(out)
    edited = []
    for r in rows:
        if r[1] == "hello":
            continue  # deleted
        if r[1] == "thôi chào em":
            r = ["greet", "chào em nhé", r[2]]  # changed text and intent; file stays general.yml
        edited.append(r)
    edited.append(["goodbye", "bái bai", ""])  # no file: goes where goodbye lives
    path = write_csv(tmp_path / "edited.csv", edited)
    before = snapshot(project)
    summary = nlucsv.import_csv(settings, path, with_rasa=False)
    assert (summary.added, summary.removed) == (2, 2)
    assert summary.files == ["bot/data/nlu/general.yml"]
    greet = [t for _, t in examples(settings, "greet")]
    goodbye = [t for _, t in examples(settings, "goodbye")]
    assert greet == ["xin chào", "chào bạn", "chào em", "alo", "chào buổi sáng", "chào em nhé"]
    assert goodbye == ["tạm biệt", "chào nhé", "hẹn gặp lại", "bye", "tôi đi đây", "bái bai"]
    after = snapshot(project)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {"bot/data/nlu/general.yml"}
    # Exporting again gives exactly what was imported (semantic round trip).
    again = tmp_path / "again.csv"
    nlucsv.export(settings, again)
    key = lambda r: (r[0], r[1])  # noqa: E731
    expected = sorted([r if r[2] else [r[0], r[1], "bot/data/nlu/general.yml"] for r in edited[1:]], key=key)
    assert sorted(read_rows(again)[1:], key=key) == expected


def test_export_import_normalises_to_nfc(project: Path, settings: Settings, tmp_path: Path) -> None:
    rows = [["intent", "text", "file"], ["greet", unicodedata.normalize("NFD", "chào   buổi tối"), ""]]
    rows += [
        ["greet", t, "bot/data/nlu/general.yml"] for t in ("xin chào", "chào bạn", "chào em", "alo", "hello")
    ]
    nlucsv.import_csv(settings, write_csv(tmp_path / "x.csv", rows), with_rasa=False)
    texts = [t for _, t in examples(settings, "greet")]
    assert texts[0] == "chào buổi tối" and unicodedata.is_normalized("NFC", texts[0])
    assert "chào buổi sáng" not in texts  # the export shape is the whole content of the intent


# ------------------------------------------------------------------------------------------ review


def test_labelled_rows_go_to_the_topic_file_normalised_and_deduplicated(
    project: Path, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "review.csv",
        review_rows(
            (unicodedata.normalize("NFD", "cho hỏi  hồ sơ đến đâu rồi"), "track_request", ""),
            ("ho so PC05TK0000999 toi dau roi", "track_request", "request_code=PC05TK0000999"),
            ("tổng đài bao nhiêu vậy", "faq/hotline", ""),
            ("Xin chào!", "greet", ""),  # already in the data
            ("tổng đài bao nhiêu vậy", "faq/hotline", ""),  # twice in the CSV
            ("ừm", "", ""),  # not labelled: skipped
        ),
    )
    summary = nlucsv.import_csv(settings, path, with_rasa=False)
    assert (summary.added, summary.skipped_duplicates, summary.skipped_unlabelled) == (3, 2, 1)
    assert summary.files == ["bot/data/nlu/faq.yml", "bot/data/nlu/lookup.yml"]
    assert examples(settings, "track_request")[-2:] == [
        ("bot/data/nlu/lookup.yml", "cho hỏi hồ sơ đến đâu rồi"),
        ("bot/data/nlu/lookup.yml", "ho so [PC05TK0000999](request_code) toi dau roi"),
    ]
    assert examples(settings, "faq/hotline")[-1] == ("bot/data/nlu/faq.yml", "tổng đài bao nhiêu vậy")
    # The regex block after the intent in lookup.yml is still there, untouched.
    assert "- regex: request_code" in (project / "bot/data/nlu/lookup.yml").read_text(encoding="utf-8")


def test_cli_import_validates_and_reports(project: Path, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "review.csv", review_rows(("cảm ơn, chào nhé", "goodbye", "")))
    done = run_cli(project, "import", str(path))  # with `rasa data validate` on the staged copy
    assert done.returncode == 0, done.stdout + done.stderr
    assert "thêm 1" in done.stdout and "bot/data/nlu/general.yml" in done.stdout
    assert "    - cảm ơn, chào nhé\n" in (project / "bot/data/nlu/general.yml").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------ refused input


def refused(project: Path, settings: Settings, path: Path) -> nlucsv.ImportFailed:
    before = snapshot(project)
    with pytest.raises(nlucsv.ImportFailed) as info:
        nlucsv.import_csv(settings, path, with_rasa=False)
    assert snapshot(project) == before, "a refused import must not change any file"
    assert not list(project.rglob("*.tmp")), "no temporary file left behind"
    return info.value


def test_wrong_intent_name_names_the_row_and_suggests(
    project: Path, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "r.csv",
        review_rows(
            ("được rồi", "greet", ""), ("tra hồ sơ giúp", "track_requst", ""), ("số tổng đài", "faq", "")
        ),
    )
    err = refused(project, settings, path)
    assert any(p.startswith("dòng 3: ý định 'track_requst'") and "track_request?" in p for p in err.problems)
    assert any(p.startswith("dòng 4: 'faq' là nhóm") for p in err.problems)


@pytest.mark.parametrize("encoding", ["cp1258", "latin-1"])
def test_legacy_encoding_is_refused_with_the_line(
    project: Path, settings: Settings, tmp_path: Path, encoding: str
) -> None:
    # Text each legacy code page can hold (cp1258: đ ơ ă ý; latin-1: accented Western letters).
    typed = {"cp1258": "đơn đăng đâu", "latin-1": "café à côté"}[encoding]
    rows = review_rows(("xin chao", "greet", ""), (typed, "goodbye", ""))
    text = "".join(",".join(r) + "\r\n" for r in rows)
    path = tmp_path / "r.csv"
    path.write_bytes(text.encode(encoding))
    err = refused(project, settings, path)
    assert (
        "dòng 3" in err.problems[0]
        and "không phải UTF-8" in err.problems[0]
        and "CSV UTF-8" in err.problems[0]
    )


def test_mojibake_is_refused(project: Path, settings: Settings, tmp_path: Path) -> None:
    garbled = "tạm biệt nha".encode().decode("cp1252", errors="replace")  # "táº¡m biá»‡t nha"
    path = write_csv(tmp_path / "r.csv", review_rows(("xin chao", "greet", ""), (garbled, "goodbye", "")))
    err = refused(project, settings, path)
    assert err.problems[0].split(": ", 1)[1].startswith("dòng 3, cột 'text': chữ bị lỗi mã hóa")


def test_missing_columns(project: Path, settings: Settings, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [["text", "nhãn"], ["xin chào", "greet"]])
    err = refused(project, settings, path)
    assert "thiếu cột" in err.problems[0] and "text, nhãn" in err.problems[0]


def test_broken_topic_file_blocks_import(project: Path, settings: Settings, tmp_path: Path) -> None:
    p = project / "bot/data/nlu/faq.yml"
    p.write_text(p.read_text(encoding="utf-8").replace("  examples: |", "  examples: [", 1), encoding="utf-8")
    path = write_csv(tmp_path / "r.csv", review_rows(("chào chị", "greet", "")))
    err = refused(project, settings, path)
    assert "bot/data/nlu/faq.yml:" in err.problems[0] and "YAML" in err.problems[0]


def test_conflict_with_existing_example_and_within_csv(
    project: Path, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "r.csv",
        review_rows(("BYE", "greet", ""), ("chào cả nhà", "greet", ""), ("chào cả nhà", "goodbye", "")),
    )
    err = refused(project, settings, path)
    assert err.problems[0].startswith(
        "dòng 2: câu 'bye' đã có trong ý định 'goodbye' (bot/data/nlu/general.yml:18)"
    )
    assert err.problems[1] == "dòng 4: cùng câu với dòng 3 nhưng khác nhãn ('greet' và 'goodbye')"


def test_bad_entities(project: Path, settings: Settings, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "r.csv",
        review_rows(
            ("hồ sơ PC05TK00001 đâu", "track_request", "request_code=PC05TK00001"),
            ("hồ sơ ở Hội An", "track_request", "don_vi=Hội An"),
            ("hồ sơ ở Hội An", "track_request", "power_unit=Đà Nẵng"),
            ("tra cứu [Hội An](power_unit", "track_request", ""),
        ),
    )
    err = refused(project, settings, path)
    text = "\n".join(err.problems)
    assert "dòng 2: mã yêu cầu 'PC05TK00001' sai định dạng" in text
    assert "dòng 3: thực thể 'don_vi' không có trong domain.yml" in text
    assert "dòng 4: không thấy 'Đà Nẵng'" in text


def test_export_csv_with_file_outside_data_dir(project: Path, settings: Settings, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "x.csv", [["intent", "text", "file"], ["greet", "chào", "../../etc/passwd.yml"]]
    )
    err = refused(project, settings, path)
    assert err.problems == ["dòng 2: tệp '../../etc/passwd.yml' phải là một tệp .yml trong bot/data/nlu/"]


def test_import_that_would_create_an_error_is_refused(
    project: Path, settings: Settings, tmp_path: Path
) -> None:
    # The export shape leaves greet with 2 examples: under min_examples_per_intent (5).
    path = write_csv(
        tmp_path / "x.csv", [["intent", "text", "file"], ["greet", "xin chào", ""], ["greet", "alo", ""]]
    )
    err = refused(project, settings, path)
    assert err.problems[0].startswith("sau khi nhập sẽ có lỗi: bot/data/nlu/general.yml:")
    assert "[E-FEW]" in err.problems[0]


def test_cli_refusal_exit_code_and_message(project: Path, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(REVIEW_HEADER.encode() + "chào,greet,0.3,u,t,greet,,\r\n".encode("utf-16"))
    before = snapshot(project)
    done = run_cli(project, "import", str(path), "--no-rasa")
    assert done.returncode == 2
    assert "KHÔNG NHẬP (không tệp nào bị thay đổi)" in done.stderr and "dòng 2" in done.stderr
    assert snapshot(project) == before
