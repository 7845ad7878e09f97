"""`make validate`: each check finds its problem and says file and line; clean data passes."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from tests.trainer.conftest import run_cli
from trainer import validate
from trainer.checks import Issue
from trainer.settings import Settings, SettingsError, load


def issues(settings: Settings) -> list[Issue]:
    return validate.run(settings, with_rasa=False).issues


def edit(project: Path, rel: str, old: str, new: str) -> None:
    p = project / rel
    text = p.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {rel}"
    p.write_text(text.replace(old, new, 1), encoding="utf-8")


def codes(found: list[Issue]) -> dict[str, list[Issue]]:
    out: dict[str, list[Issue]] = {}
    for i in found:
        out.setdefault(i.code, []).append(i)
    return out


def test_clean_fixture_has_no_issue(settings: Settings) -> None:
    assert issues(settings) == []


def test_conflict_across_intents_is_an_error_with_both_places(project: Path, settings: Settings) -> None:
    # Same sentence after normalisation (case, punctuation, spaces) in two intents.
    edit(project, "bot/data/nlu/general.yml", "    - tôi đi đây\n", "    - tôi đi đây\n    - Xin   chào!\n")
    found = codes(issues(settings))
    [err] = found["E-CONFLICT"]
    assert err.level == "error" and err.file == "bot/data/nlu/general.yml" and err.line == 21
    assert "greet" in err.message and "general.yml:6" in err.message
    assert str(err).startswith("bot/data/nlu/general.yml:21: LỖI [E-CONFLICT]")


def test_duplicate_in_same_intent_is_a_warning(project: Path, settings: Settings) -> None:
    edit(project, "bot/data/nlu/general.yml", "    - alo\n", "    - alo\n    - ALO\n")
    [w] = codes(issues(settings))["W-DUPLICATE"]
    assert w.level == "warning" and w.line == 10


def test_folded_collision_is_a_warning(project: Path, settings: Settings) -> None:
    # "chào nhé" (goodbye) vs "chao nhe" typed as greet: different with accents, equal without.
    edit(project, "bot/data/nlu/general.yml", "    - alo\n", "    - alo\n    - chao nhe\n")
    found = codes(issues(settings))
    assert "E-CONFLICT" not in found
    [w] = found["W-FOLD-CONFLICT"]
    assert w.level == "warning" and "goodbye" in w.message


def test_too_few_examples_uses_the_repo_threshold(project: Path) -> None:
    (project / "nlu_thresholds.yml").write_text("min_examples_per_intent: 6\n", encoding="utf-8")
    found = codes(issues(load(project)))
    few = {i.message.split("'")[1] for i in found["E-FEW"]}
    assert few == {"faq/hotline", "faq/processing_time"}  # 5 examples each; greet/goodbye/track have 6


def test_entities_unknown_and_inconsistent(project: Path, settings: Settings) -> None:
    edit(
        project,
        "bot/data/nlu/lookup.yml",
        "    - tra cứu yêu cầu ở [Tam Kỳ](power_unit)\n",
        "    - tra cứu yêu cầu ở [Tam Kỳ](power_unit)\n"
        "    - hồ sơ ở [tam kỳ](customer_name)\n"
        "    - hồ sơ ở [Hội An](unit)\n",
    )
    found = codes(issues(settings))
    [unknown_name] = [i for i in found["E-ENTITY"] if "'unit'" in i.message]
    assert unknown_name.line == 13 and "power_unit" in unknown_name.message  # suggestion
    [conflict] = found["E-ENTITY-CONFLICT"]
    assert "power_unit" in conflict.message and "customer_name" in conflict.message


def test_request_code_format(project: Path, settings: Settings) -> None:
    edit(
        project,
        "bot/data/nlu/lookup.yml",
        "    - kiểm tra tiến độ yêu cầu cấp điện\n",
        "    - kiểm tra tiến độ yêu cầu cấp điện\n"
        "    - mã [pc05-tk 0000789](request_code)\n"  # lower case and separators: fine
        "    - mã [PC05TK000012](request_code)\n"  # 6 digits: wrong
        '    - mã [PC5TK0000123]{"entity": "request_code", "value": "PC05TK0000123"}\n',  # value decides
    )
    found = codes(issues(settings))
    [bad] = found["E-CODE"]
    assert bad.line == 10 and "PC05TK000012" in bad.message and "PC05TK0000123" in bad.message


def test_non_nfc_text_is_an_error_with_its_line(project: Path, settings: Settings) -> None:
    nfd = unicodedata.normalize("NFD", "tạm biệt anh nha")
    edit(project, "bot/data/nlu/general.yml", "    - bye\n", f"    - bye\n    - {nfd}\n")
    [err] = codes(issues(settings))["E-NFC"]
    assert err.line == 19 and err.level == "error"


def test_invisible_characters_are_flagged(project: Path, settings: Settings) -> None:
    edit(project, "bot/data/nlu/general.yml", "    - chào bạn\n", "    - chào\u00a0bạn\n")
    [w] = codes(issues(settings))["W-CHAR"]
    assert w.line == 7 and "NBSP" in w.message


def test_wrong_intent_name_suggests_the_right_one(project: Path, settings: Settings) -> None:
    edit(project, "bot/data/nlu/general.yml", "- intent: goodbye", "- intent: goodbyee")
    found = codes(issues(settings))
    [err] = found["E-INTENT"]  # one message for the block, not one per example
    assert err.message.startswith("ý định 'goodbyee'") and "có phải: goodbye?" in err.message
    assert err.line == 15


def test_faq_without_response_is_an_error(project: Path, settings: Settings) -> None:
    edit(project, "bot/data/nlu/faq.yml", "- intent: faq/hotline", "- intent: faq/opening_hours")
    assert codes(issues(settings))["E-FAQ-RESPONSE"][0].line == 6


def test_test_set_sentence_in_training_data_is_leakage(project: Path, settings: Settings) -> None:
    edit(project, "tests/nlu/test.yml", "    - chào anh\n", "    - chào anh\n    - Chào bạn\n")
    [err] = codes(issues(settings))["E-LEAK"]
    # Reported at the training line to remove, naming the test line it repeats.
    assert err.file == "bot/data/nlu/general.yml" and err.line == 7 and "test.yml:8" in err.message
    assert "Chào bạn" in err.message


def test_a_leak_into_the_report_only_set_does_not_show_its_sentence(
    project: Path, settings: Settings
) -> None:
    (project / "tests/nlu/report_only.yml").write_text(
        'version: "3.1"\nnlu:\n  - intent: greet\n    examples: |\n      - chào bạn hiền\n',
        encoding="utf-8",
    )
    edit(
        project,
        "bot/data/nlu/general.yml",
        "    - chào em\n",
        "    - chào em\n    - Chào bạn hiền\n",
    )
    [err] = codes(issues(settings))["E-LEAK"]
    assert err.file == "bot/data/nlu/general.yml" and "report_only.yml:?" in err.message
    assert "hiền" not in err.message  # neither the hidden line nor the training line that repeats it


def test_broken_regex(project: Path, settings: Settings) -> None:
    edit(project, "bot/data/nlu/lookup.yml", "    - [Pp][Cc]", "    - ([Pp][Cc]")
    assert codes(issues(settings))["E-REGEX"][0].line == 15


def test_broken_yaml_stops_with_its_line(project: Path, settings: Settings) -> None:
    edit(
        project,
        "bot/data/nlu/faq.yml",
        "- intent: faq/processing_time\n",
        "- intent: faq/processing_time\n  x: [\n",
    )
    [err] = codes(issues(settings))["E-YAML"]
    assert err.file == "bot/data/nlu/faq.yml" and err.line is not None and err.line >= 11


def test_thresholds_file_is_checked(project: Path) -> None:
    (project / "nlu_thresholds.yml").write_text("min_accuracy: 85\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="min_accuracy"):
        load(project)
    (project / "nlu_thresholds.yml").write_text("min_acuracy: 0.8\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="min_acuracy"):
        load(project)


def test_cli_exit_status_and_messages(project: Path) -> None:
    ok = run_cli(project, "validate", "--no-rasa")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ĐẠT — 0 lỗi" in ok.stdout
    edit(project, "bot/data/nlu/general.yml", "    - bye\n", "    - bye\n    - xin chào\n")
    bad = run_cli(project, "validate", "--no-rasa")
    assert bad.returncode == 1
    assert "bot/data/nlu/general.yml:19: LỖI [E-CONFLICT]" in bad.stdout


@pytest.mark.slow
def test_with_rasa_data_validate(project: Path) -> None:
    """The full `make validate`: Rasa's validator runs too, and its failure fails the command."""
    ok = run_cli(project, "validate")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "rasa data validate: đạt" in ok.stdout
    # A rule using a response the domain lacks: only Rasa's validator sees it, and it fails the command.
    rules = project / "bot/data/rules/greet.yml"
    rules.parent.mkdir(parents=True)
    rules.write_text(
        'version: "3.1"\nrules:\n- rule: chào\n  steps:\n  - intent: greet\n  - action: utter_missing\n',
        encoding="utf-8",
    )
    bad = run_cli(project, "validate")
    assert bad.returncode == 1, bad.stdout
    assert "rasa data validate: KHÔNG ĐẠT" in bad.stdout and "utter_missing" in bad.stdout
    assert "Kiểm tra dữ liệu NLU: KHÔNG ĐẠT — 0 lỗi" in bad.stdout
